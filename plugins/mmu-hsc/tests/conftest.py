"""Shared fixtures: small synthetic HSC raw folders and helpers that read them back
independently of the plugin (plain astropy + numpy), to compute expected values."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

import mmu_hsc.hooks
from mmu_core import testing
from mmu_core.models import ConvertContext, SampleRequest

BANDS = "grizy"
STAMP = 160


def write_sample(out: Path, n: int, seed: int = 0, ra: float = 150.0, dec: float = 2.0,
                 radius: float = 0.5, **options) -> Path:
    """Write a synthetic raw folder through the plugin's sample hook."""
    registry = testing.plugin_registry(mmu_hsc.hooks)
    result = registry.sample("hsc", SampleRequest(out_dir=out, n=n, seed=seed, ra=ra, dec=dec,
                                                  radius=radius, options=options))
    assert result.n_objects == n, result.notes
    return out


def convert_all(raw: Path, config: str = "pdr3_wide", **options):
    """Discover + convert every unit through the registry; concatenated columns + context."""
    registry = testing.plugin_registry(mmu_hsc.hooks)
    options.setdefault("skip_bad", False)
    units = registry.discover("hsc", config, raw, options)
    context = ConvertContext(raw_dir=raw, options=options)
    batches = [b for u in units for b in registry.convert(u, context)]
    if not batches:
        return {}, context
    columns = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    return columns, context


def catalog_path(raw: Path) -> Path:
    return raw / "pdr3_dud_22.5.fits"


def read_catalog(raw: Path) -> Table:
    return Table.read(catalog_path(raw))


def calexp_path(raw: Path, band: str, tract: int, patch: int) -> Path:
    """Expected archive path of a calexp, from the catalog's integer patch (100*x + y)."""
    label = f"{patch // 100},{patch % 100}"
    return raw / f"HSC-{band.upper()}" / str(tract) / label / (
        f"calexp-HSC-{band.upper()}-{tract}-{label}.fits")


def raw_planes(path: Path):
    """IMAGE, MASK, VARIANCE (native numpy arrays) and the WCS of a calexp."""
    with fits.open(path) as hdul:
        return (hdul["IMAGE"].data.astype(np.float32), hdul["MASK"].data.astype(np.int64),
                hdul["VARIANCE"].data.astype(np.float32), WCS(hdul["IMAGE"].header))


def nearest_pixel(wcs: WCS, ra: float, dec: float) -> tuple[int, int]:
    x, y = wcs.world_to_pixel_values(ra, dec)
    return int(np.floor(x + 0.5)), int(np.floor(y + 0.5))


def padded_cut(array: np.ndarray, px: int, py: int, fill, size: int = STAMP) -> np.ndarray:
    """size x size window with pixel (px, py) at index size//2, ``fill`` outside the array.

    Written with np.pad, independently of the plugin's slicing."""
    padded = np.pad(array, size, constant_values=fill)
    y0, x0 = py - size // 2 + size, px - size // 2 + size
    return padded[y0:y0 + size, x0:x0 + size]


@pytest.fixture(scope="session")
def hsc() -> SimpleNamespace:
    """The helpers above. Tests get them through this fixture: under the repository's
    ``--import-mode=importlib`` a ``from conftest import ...`` would find another plugin's
    conftest."""
    return SimpleNamespace(
        write_sample=write_sample, convert_all=convert_all, catalog_path=catalog_path,
        read_catalog=read_catalog, calexp_path=calexp_path, raw_planes=raw_planes,
        nearest_pixel=nearest_pixel, padded_cut=padded_cut)


@pytest.fixture(scope="session")
def noiseless_raw(tmp_path_factory) -> Path:
    """Isolated objects on noiseless images: each stamp holds only its own source."""
    out = tmp_path_factory.mktemp("noiseless") / "raw"
    return write_sample(out, n=24, seed=3, patch_size=500, objects_per_patch=6,
                        min_separation=22.0, edge_fraction=0.25, noise=0.0)


@pytest.fixture(scope="session")
def noisy_raw(tmp_path_factory) -> Path:
    """A denser sample with noise, artefacts, the catalog in FITS and CSV."""
    out = tmp_path_factory.mktemp("noisy") / "raw"
    return write_sample(out, n=40, seed=7, patch_size=400, objects_per_patch=20,
                        catalog_format="both", edge_fraction=0.2, faint_fraction=0.25)


@pytest.fixture
def raw_copy(tmp_path, noisy_raw) -> Path:
    """A private copy of the noisy sample that a test may damage."""
    dst = tmp_path / "raw"
    shutil.copytree(noisy_raw, dst)
    (dst / "pdr3_dud_22.5.csv").unlink()  # one catalog to edit
    return dst
