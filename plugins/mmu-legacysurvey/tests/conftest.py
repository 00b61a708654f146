"""Shared fixtures: small synthetic Legacy Surveys raw folders, and helpers that read them
back independently of the plugin (astropy ``Cutout2D``, ``Table``, h5py) for expected values."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.table import Table
from astropy.wcs import WCS

import mmu_legacysurvey.hooks
from mmu_core import testing
from mmu_core.models import ConvertContext, SampleRequest

BANDS = "griz"
STAMP = 160
# MMU v1's bad maskbits: 0-7, 11, 14, 15
BAD_BITS = sum(1 << b for b in (0, 1, 2, 3, 4, 5, 6, 7, 11, 14, 15))
SMALL = {"brick_size": 400, "objects_per_brick": 20, "stein_rows_per_file": 12}


def registry():
    return testing.plugin_registry(mmu_legacysurvey.hooks)


def write_sample(out: Path, n: int, seed: int = 0, ra: float = 150.0, dec: float = 2.125,
                 radius: float = 0.16, positions=None, **options) -> Path:
    """A synthetic raw folder through the plugin's sample hook: small bricks by default, the
    cone between two brick rows (so the 400-pixel images of two bricks meet it)."""
    result = registry().sample("legacysurvey", SampleRequest(
        out_dir=out, n=n, seed=seed, ra=ra, dec=dec, radius=radius, positions=positions,
        options={**SMALL, **options}))
    assert result.n_objects == n, result.notes
    return out


def convert_all(raw: Path, config: str = "dr10_south_21", **options):
    """Discover + convert every unit; (concatenated columns, context)."""
    reg = registry()
    options.setdefault("skip_bad", False)
    units = reg.discover("legacysurvey", config, raw, options)
    context = ConvertContext(raw_dir=raw, options=options)
    batches = [b for u in units for b in reg.convert(u, context)]
    if not batches:
        return {}, context
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}, context


def bricks(raw: Path) -> list[str]:
    return sorted(p.name.removeprefix("tractor-").removesuffix(".fits")
                  for p in (raw / "tractor").rglob("tractor-*.fits"))


def tractor_path(raw: Path, brick: str) -> Path:
    return raw / "tractor" / brick[:3] / f"tractor-{brick}.fits"


def coadd_path(raw: Path, brick: str, kind: str, band: str | None = None) -> Path:
    name = f"legacysurvey-{brick}-maskbits.fits.fz" if kind == "maskbits" else \
        f"legacysurvey-{brick}-{kind}-{band}.fits.fz"
    return raw / "coadd" / brick[:3] / brick / name


def read_plane(path: Path):
    """The whole decompressed image of HDU 1, its header and WCS."""
    with fits.open(path) as hdul:
        return np.asarray(hdul[1].data), hdul[1].header.copy(), WCS(hdul[1].header)


def cutout(data: np.ndarray, wcs: WCS, ra: float, dec: float, fill) -> np.ndarray:
    """astropy's own 160 x 160 partial cutout at the object's WCS position."""
    x, y = wcs.world_to_pixel_values(ra, dec)
    return Cutout2D(data, (float(x), float(y)), STAMP, wcs=wcs, mode="partial",
                    fill_value=fill).data


def catalog(raw: Path, brick: str) -> Table:
    """The Tractor table as stored (no masking of empty strings, no unit parsing)."""
    return Table(fits.getdata(tractor_path(raw, brick), 1))


def edit_catalog(raw: Path, brick: str, column: str, row: int, value) -> None:
    """Change one value of a Tractor catalog in place."""
    with fits.open(tractor_path(raw, brick), mode="update") as hdul:
        hdul[1].data[column][row] = value


def object_ids(cat: Table) -> np.ndarray:
    return np.array([f"{b.strip()}-{o}".encode() for b, o in zip(cat["brickname"], cat["objid"],
                                                                  strict=True)])


def selected(cat: Table) -> np.ndarray:
    """MMU v1's dr10_south_21 cut, computed here from the table."""
    flux = np.asarray(cat["flux_z"], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = 22.5 - 2.5 * np.log10(flux / np.asarray(cat["mw_transmission_z"], float))
    keep = np.asarray(cat["brick_primary"], bool) & (flux > 0) & (mag < 21)
    for b in BANDS:
        keep &= np.asarray(cat[f"nobs_{b}"]) > 0
    keep &= np.char.strip(np.asarray(cat["type"]).astype(str)) != "PSF"
    keep &= (np.asarray(cat["maskbits"]).astype(np.int64) & BAD_BITS) == 0
    return keep


def rewrite_plane(path: Path, data: np.ndarray) -> None:
    """Write new pixels into a coadd file, keeping its header and compression."""
    with fits.open(path) as hdul:
        old = hdul[1]
        hdu = fits.CompImageHDU(data, header=old.header, name=old.name,
                                compression_type=old.compression_type,
                                tile_shape=old.tile_shape)
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


@pytest.fixture(scope="session")
def ls() -> SimpleNamespace:
    """The helpers above (under ``--import-mode=importlib`` a ``from conftest import`` would
    find another plugin's conftest)."""
    return SimpleNamespace(
        write_sample=write_sample, convert_all=convert_all, bricks=bricks,
        tractor_path=tractor_path, coadd_path=coadd_path, read_plane=read_plane, cutout=cutout,
        catalog=catalog, edit_catalog=edit_catalog, object_ids=object_ids, selected=selected, rewrite_plane=rewrite_plane,
        registry=registry, BAD_BITS=BAD_BITS, BANDS=BANDS, STAMP=STAMP, SMALL=SMALL)


@pytest.fixture(scope="session")
def raw(tmp_path_factory) -> Path:
    """Two small bricks (400 px), a quarter of the objects near an image edge, and the Stein
    et al. files of the same objects (12 rows per file)."""
    return write_sample(tmp_path_factory.mktemp("ls") / "raw", n=40, seed=3, edge_fraction=0.25)


@pytest.fixture
def raw_copy(tmp_path, raw) -> Path:
    """A private copy of the sample that a test may damage."""
    dst = tmp_path / "raw"
    shutil.copytree(raw, dst)
    return dst
