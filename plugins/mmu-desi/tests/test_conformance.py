"""The plugin passes the core's conformance check and describes itself."""

import mmu_desi.hooks
from mmu_core import testing


def test_conformance():
    registry = testing.check_plugin(mmu_desi.hooks)
    assert "desi" in registry.surveys
