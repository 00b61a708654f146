"""Helpers shared by the mmu-manga tests, imported by this unique name (a module named
conftest would clash with other packages' under --import-mode=importlib).

Small means few galaxies, small bundles and a coarse wavelength grid (``nwave``): the padded
96x96 grid makes one full-size galaxy 673 MB once converted, too much for a fast suite.
"""

from __future__ import annotations

import re
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


def channel_key(header: fits.Header, name: str) -> str:
    """The key (``C01``, ``C1`` ...) naming the channel ``name`` in a DAP header."""
    hits = [k for k, v in header.items()
            if k.startswith("C") and k[1:].isdigit() and str(v).strip() == name]
    assert len(hits) == 1, f"channel {name} in {hits}"
    return hits[0]


def channel_index(header: fits.Header, name: str) -> int:
    """Index of the channel called ``name`` in a DAP header (C01 = 0), found independently."""
    return int(channel_key(header, name)[1:]) - 1


DRP_LABELS = [f"reconstructed_{b}" for b in "griz"] + [f"reconstructed_psf_{b}" for b in "griz"]
MAP_EXTENSIONS = ("STELLAR_VEL", "STELLAR_SIGMA", "EMLINE_GFLUX", "EMLINE_GEW", "EMLINE_GVEL",
                  "EMLINE_GSIGMA", "SPECINDEX")


def expected_labels(maps: Path) -> list[str]:
    """The stored channel labels for a build whose MAPS files look like ``maps``: the 8 DRP
    images, then every channel of the stored map extensions, read here with astropy."""
    labels = list(DRP_LABELS)
    with fits.open(maps) as h:
        for ext in MAP_EXTENSIONS:
            hdr = h[ext].header
            if hdr["NAXIS"] == 2:
                labels.append(ext.lower())
                continue
            for n in range(1, hdr["NAXIS3"] + 1):
                name = next(str(v) for k, v in hdr.items()
                            if k.startswith("C") and k[1:].isdigit() and int(k[1:]) == n)
                labels.append(re.sub(r"[^a-z0-9]+", "_", f"{ext}_{name}".lower()).strip("_"))
    return labels


def rewrite_gz(path: Path, hdul: fits.HDUList) -> None:
    """Write ``hdul`` over the gzipped file ``path`` (astropy gzips by the .gz suffix)."""
    path.unlink()
    hdul.writeto(path)


def float_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))
