"""Shared fixtures: the toy plugin registry and small built datasets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# pytest's importlib mode names test modules ``tests.test_x``: spawned worker processes (which
# unpickle test functions by that name) must find ``tests`` too, however pytest was started
# (``python -m pytest`` puts the repository on sys.path, the ``pytest`` script does not)
sys.path.insert(1, str(Path(__file__).parent.parent))

from toy_plugin import ToyPlugin, write_units  # noqa: E402

from mmu_core import testing  # noqa: E402
from mmu_core.build import build  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Caches the core keeps (the v1 positions sidecars) go to a temporary folder, never to the
    user's cache directory."""
    import os

    old = os.environ.get("MMU_CACHE")
    os.environ["MMU_CACHE"] = str(tmp_path_factory.mktemp("mmu_cache"))
    yield
    if old is None:
        os.environ.pop("MMU_CACHE", None)
    else:
        os.environ["MMU_CACHE"] = old


@pytest.fixture
def toy_registry():
    registry = testing.plugin_registry(ToyPlugin())
    with testing.use_registry(registry):
        yield registry


@pytest.fixture(scope="session")
def toy_image_dataset(tmp_path_factory):
    """1,800 image rows in 6 units around a pixel corner, pixels split into several files."""
    root = tmp_path_factory.mktemp("toyimg")
    units = write_units(root / "raw", n_units=6, n=300, ra=45.0, dec=0.0, radius=5.0)
    registry = testing.plugin_registry(ToyPlugin())
    summary = build("toyimg", root / "raw", root / "out", registry=registry,
                    max_file_bytes=300_000)
    return summary.path, units
