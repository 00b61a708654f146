"""Fixtures: a small gz3d sample (written once) and its converted rows, a fresh registry, file
editing helpers and a MaNGA drpall writer in the official layout (HDU ``MANGA``); helpers
live in ``gz3d_testutil``."""

from __future__ import annotations

import gzip
import io
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).parent))

from gz3d_testutil import convert_all  # noqa: E402

import mmu_gz3d.hooks  # noqa: E402
from mmu_core import testing  # noqa: E402
from mmu_core.models import SampleRequest  # noqa: E402
from mmu_gz3d import samples  # noqa: E402

SAMPLE_N = 3
SAMPLE_SEED = 7


@pytest.fixture(scope="session")
def sample_raw(tmp_path_factory) -> Path:
    """A read-only sample of three galaxies (the first heavily classified)."""
    out = tmp_path_factory.mktemp("gz3d_sample") / "raw"
    samples.write_sample(SampleRequest(out_dir=out, n=SAMPLE_N, seed=SAMPLE_SEED,
                                       ra=150.0, dec=2.0, radius=0.5))
    return out


@pytest.fixture(scope="session")
def sample_rows(sample_raw) -> dict[str, np.ndarray]:
    """The session sample converted once (read-only tests share it)."""
    rows, _ = convert_all(testing.plugin_registry(mmu_gz3d.hooks), sample_raw)
    return rows


@pytest.fixture
def raw_copy(sample_raw, tmp_path) -> Path:
    """A private copy of the sample that a test may damage."""
    dest = tmp_path / "raw"
    shutil.copytree(sample_raw, dest)
    return dest


@pytest.fixture
def registry():
    """A registry holding only this plugin, made the process-wide one for the test."""
    reg = testing.plugin_registry(mmu_gz3d.hooks)
    with testing.use_registry(reg):
        yield reg


def galaxy_files(raw: Path) -> list[Path]:
    return sorted(raw.rglob("gz3d_*-*_*_*.fits.gz"))


@pytest.fixture
def files_of() -> Callable[[Path], list[Path]]:
    """The galaxy files below a folder, sorted."""
    return galaxy_files


@pytest.fixture
def rewrite() -> Callable:
    """``rewrite(path, edit)``: open a .fits.gz, let ``edit(hdul)`` return a new HDUList,
    write it back gzipped under the same name."""

    def _rewrite(path: Path, edit: Callable[[fits.HDUList], fits.HDUList]) -> None:
        with fits.open(path) as hdul:
            hdul = fits.HDUList([h.copy() for h in hdul])
        new = edit(hdul)
        buffer = io.BytesIO()
        new.writeto(buffer)
        path.write_bytes(gzip.compress(buffer.getvalue()))

    return _rewrite


@pytest.fixture
def write_drpall() -> Callable:
    """``write_drpall(path, rows)``: a drpall-v3_1_1-like file, HDU ``MANGA``; rows are
    (plateifu, mangaid, objra, objdec, ifura, ifudec, ifudesignsize, nsa_z, nsa_nsaid)."""

    def _write(path: Path, rows: list[tuple]) -> Path:
        plateifu = [r[0] for r in rows]
        cols = [
            fits.Column("plate", "J", array=np.array([int(p.split("-")[0]) for p in plateifu])),
            fits.Column("ifudsgn", "6A", array=np.array([p.split("-")[1] for p in plateifu])),
            fits.Column("plateifu", "11A", array=np.array(plateifu)),
            fits.Column("mangaid", "9A", array=np.array([r[1] for r in rows])),
            fits.Column("objra", "D", array=np.array([r[2] for r in rows])),
            fits.Column("objdec", "D", array=np.array([r[3] for r in rows])),
            fits.Column("ifura", "D", array=np.array([r[4] for r in rows])),
            fits.Column("ifudec", "D", array=np.array([r[5] for r in rows])),
            fits.Column("ifudesignsize", "J", array=np.array([r[6] for r in rows])),
            fits.Column("nsa_z", "E", array=np.array([r[7] for r in rows])),
            fits.Column("nsa_nsaid", "K", array=np.array([r[8] for r in rows])),
        ]
        table = fits.BinTableHDU.from_columns(cols, name="MANGA")
        fits.HDUList([fits.PrimaryHDU(), table]).writeto(path, overwrite=True)
        return path

    return _write
