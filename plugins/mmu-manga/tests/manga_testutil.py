"""Helpers shared by the mmu-manga tests, imported by this unique name (a module named
conftest would clash with other packages' under --import-mode=importlib).

Small means few galaxies, small bundles and a coarse wavelength grid (``nwave``): the padded
96x96 grid makes one full-size galaxy 673 MB once converted, too much for a fast suite.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from mmu_core.models import ConvertContext, SampleRequest
from mmu_manga import convert, discover, samples

SMALL = {"nwave": 200, "bundles": "19,37,61"}


def write(out: Path, n: int = 3, seed: int = 7, **options) -> Path:
    samples.write_sample(SampleRequest(out_dir=out, n=n, seed=seed, ra=150.0, dec=2.0,
                                       radius=0.5, options={**SMALL, **options}))
    return out


@pytest.fixture(scope="session")
def small_raw(tmp_path_factory) -> Path:
    """3 galaxies, SAS layout (read-only: copy it before damaging files)."""
    return write(tmp_path_factory.mktemp("manga") / "raw")


@pytest.fixture
def raw_copy(small_raw: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "raw"
    shutil.copytree(small_raw, dst)
    return dst


def units_of(raw: Path, **options) -> list:
    return discover.discover_units("dr17", raw, options)


def run(unit, raw: Path, **options) -> tuple[list[dict], ConvertContext]:
    ctx = ConvertContext(raw_dir=raw, options=options)
    return list(convert.convert_unit(unit, ctx)), ctx


def find(raw: Path, pattern: str) -> list[Path]:
    return sorted(raw.rglob(pattern))


def channel_index(header: fits.Header, name: str) -> int:
    """Index of the channel called ``name`` in a DAP header (C01 = 0), found independently."""
    hits = [int(k[1:]) - 1 for k, v in header.items()
            if k.startswith("C") and k[1:].isdigit() and str(v).strip() == name]
    assert len(hits) == 1, f"channel {name} in {hits}"
    return hits[0]


def rewrite_gz(path: Path, hdul: fits.HDUList) -> None:
    """Write ``hdul`` over the gzipped file ``path`` (astropy gzips by the .gz suffix)."""
    path.unlink()
    hdul.writeto(path)


def float_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))
