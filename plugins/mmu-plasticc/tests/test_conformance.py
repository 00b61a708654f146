"""The plugin passes the core's conformance check and describes itself."""

import mmu_plasticc.hooks
from mmu_core import testing


def test_conformance():
    registry = testing.check_plugin(mmu_plasticc.hooks)
    assert "plasticc" in registry.surveys
