"""The plugin passes the core's conformance check and describes itself."""

import mmu_manga.hooks
from mmu_core import testing


def test_conformance():
    registry = testing.check_plugin(mmu_manga.hooks)
    assert "manga" in registry.surveys
