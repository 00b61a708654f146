"""The plugin passes the core's conformance check and describes itself."""

import mmu_hsc.hooks
from mmu_core import testing


def test_conformance():
    registry = testing.check_plugin(mmu_hsc.hooks)
    assert "hsc" in registry.surveys
