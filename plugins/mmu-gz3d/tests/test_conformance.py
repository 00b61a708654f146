"""The plugin passes the core's conformance check and describes itself."""

import mmu_gz3d.hooks
from mmu_core import testing


def test_conformance():
    registry = testing.check_plugin(mmu_gz3d.hooks)
    assert "gz3d" in registry.surveys
