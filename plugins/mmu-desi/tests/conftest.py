"""Shared fixtures for the DESI plugin tests; helpers live in ``desi_fitsmaker``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import mmu_desi.hooks as hooks  # noqa: E402
from mmu_core import testing  # noqa: E402


@pytest.fixture
def desi_registry():
    """A registry holding only this plugin, made the process-wide one for the test."""
    registry = testing.plugin_registry(hooks)
    with testing.use_registry(registry):
        yield registry
