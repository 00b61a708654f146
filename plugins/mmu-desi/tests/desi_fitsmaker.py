"""Hand-made DESI coadd and catalog files for the tests, written with astropy directly.

Independent of the plugin's own sample writer, so reader tests do not depend on it. Layout
per the DESI data model: empty primary HDU with keywords (a healpix coadd's SURVEY, PROGRAM,
SPGRP, HPX*; a tile coadd's SPGRP, SPGRPVAL, NIGHT, TILEID, SPECTRO, PETAL and no survey
keyword in any HDU), FIBERMAP, EXP_FIBERMAP, B/R/Z _WAVELENGTH (f8), _FLUX, _IVAR (f4), _MASK
(uint32 -> int32 + BZERO), _RESOLUTION (f4, 11 diagonals), SCORES. astropy writes FITS
big-endian. Also the release's tiles table (HDU TILE_COMPLETENESS).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

import mmu_desi.hooks as hooks
from mmu_core.models import ConvertContext

CAMERA_GRIDS = {
    "B": 3600.0 + 0.8 * np.arange(2751),
    "R": 5760.0 + 0.8 * np.arange(2326),
    "Z": 7520.0 + 0.8 * np.arange(2881),
}
CAMERA_OFFSETS = {"B": 0, "R": 2700, "Z": 4900}
MERGED = 3600.0 + 0.8 * np.arange(7781)


def gaussian_diagonals(sigma: np.ndarray, ndiag: int = 11) -> np.ndarray:
    """(n, ndiag, L) unit-sum Gaussian kernels of width ``sigma`` (n, L) pixels."""
    d = np.arange(ndiag) - ndiag // 2
    k = np.exp(-0.5 * (d[None, :, None] / sigma[:, None, :]) ** 2)
    return k / k.sum(axis=1, keepdims=True)


def random_cameras(rng: np.random.Generator, n: int, sigma=None) -> dict[str, dict[str, np.ndarray]]:
    """Random camera arrays with masked pixels (some with positive ivar), zero-ivar pixels,
    and Gaussian resolution kernels; ``sigma(camera, wave) -> (n, L)`` sets their widths."""
    cams = {}
    for cam, wave in CAMERA_GRIDS.items():
        length = len(wave)
        flux = rng.normal(5.0, 2.0, (n, length))
        ivar = rng.uniform(0.5, 4.0, (n, length))
        mask = np.zeros((n, length), np.uint32)
        hit = rng.random((n, length)) < 0.02
        mask[hit] = 8
        flux[hit] = 1e4  # a masked pixel must never leak into the merge
        ivar[rng.random((n, length)) < 0.02] = 0.0
        sig = sigma(cam, wave) if sigma else np.full((n, length), 1.0)
        cams[cam] = {"wave": wave, "flux": flux, "ivar": ivar, "mask": mask,
                     "res": gaussian_diagonals(np.broadcast_to(sig, (n, length)))}
    return cams


def fibermap_table(targetid, ra, dec, fiberstatus=None, objtype=None, exptime=None,
                   extra: dict | None = None, order: list[str] | None = None) -> fits.BinTableHDU:
    """A FIBERMAP with the given columns (plus ``extra``), optionally in another order."""
    n = len(targetid)
    cols = {
        "TARGETID": ("K", np.asarray(targetid, "i8")),
        "COADD_FIBERSTATUS": ("J", np.zeros(n, "i4") if fiberstatus is None else np.asarray(fiberstatus, "i4")),
        "TARGET_RA": ("D", np.asarray(ra, "f8")),
        "TARGET_DEC": ("D", np.asarray(dec, "f8")),
        "OBJTYPE": ("3A", np.full(n, "TGT") if objtype is None else np.asarray(objtype)),
        "FLUX_R": ("E", np.linspace(1, 10, n).astype("f4")),
        "COADD_EXPTIME": ("E", np.full(n, 1000.0, "f4") if exptime is None else np.asarray(exptime, "f4")),
        "DESI_TARGET": ("K", np.ones(n, "i8")),
    }
    for name, (fmt, arr) in (extra or {}).items():
        cols[name] = (fmt, arr)
    names = order or list(cols)
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name=k, format=cols[k][0], array=cols[k][1]) for k in names], name="FIBERMAP")
    return hdu


def write_coadd(path: Path, fibermap: fits.BinTableHDU, cameras: dict, survey="main",
                program="dark", healpix=100, drop: tuple[str, ...] = (), scores: bool = True,
                header: dict | None = None) -> Path:
    """Write a healpix coadd (or, with ``header``, one with exactly those primary keywords);
    HDUs named in ``drop`` are left out."""
    primary = fits.PrimaryHDU()
    if header is None:
        header = {"SPGRP": "healpix", "SPGRPVAL": healpix, "HPXPIXEL": healpix, "HPXNSIDE": 64,
                  "HPXNEST": True, "SURVEY": survey, "PROGRAM": program}
    primary.header.update(header)
    n = len(fibermap.data)
    hdus = [primary, fibermap,
            fits.BinTableHDU.from_columns([fits.Column(name="TARGETID", format="K",
                                                       array=fibermap.data["TARGETID"])],
                                          name="EXP_FIBERMAP")]
    for cam, arr in cameras.items():
        hdus += [
            fits.ImageHDU(np.asarray(arr["wave"], "f8"), name=f"{cam}_WAVELENGTH"),
            fits.ImageHDU(np.asarray(arr["flux"], "f4"), name=f"{cam}_FLUX"),
            fits.ImageHDU(np.asarray(arr["ivar"], "f4"), name=f"{cam}_IVAR"),
            fits.ImageHDU(np.asarray(arr["mask"], np.uint32), name=f"{cam}_MASK"),
            fits.ImageHDU(np.asarray(arr["res"], "f4"), name=f"{cam}_RESOLUTION"),
        ]
    if scores:
        hdus.append(fits.BinTableHDU.from_columns(
            [fits.Column(name="TARGETID", format="K", array=fibermap.data["TARGETID"]),
             fits.Column(name="TSNR2_LRG", format="E", array=np.arange(n, dtype="f4"))],
            name="SCORES"))
    hdus = [h for h in hdus if h.name not in drop]
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def write_tile_coadd(raw: Path, fibermap: fits.BinTableHDU, cameras: dict, tileid=80605,
                     spectro=3, night=20210205) -> Path:
    """``tiles/cumulative/{tileid}/{night}/coadd-{spectro}-{tileid}-thru{night}.fits`` as the
    EDR serves it: its primary header has no SURVEY, PROGRAM or FAPRGRM (nor has any HDU)."""
    path = raw / f"tiles/cumulative/{tileid}/{night}/coadd-{spectro}-{tileid}-thru{night}.fits"
    header = {"SPGRP": "cumulative", "SPGRPVAL": night, "NIGHT": night, "TILEID": tileid,
              "SPECTRO": spectro, "PETAL": spectro, "FIBERMIN": 500 * spectro,
              "INFIL000": f"spectra-{spectro}-{tileid}-thru{night}.fits", "LONGSTRN": "OGIP 1.0"}
    return write_coadd(path, fibermap, cameras, header=header)


def tile_fibermap(targetid, rng: np.random.Generator, tileid=80605,
                  targeting: dict[str, int] | None = None) -> fits.BinTableHDU:
    """A tile coadd FIBERMAP: the data model's required unprefixed DESI/BGS/MWS_TARGET, a
    TILEID column, no MJD columns (as in fuji), and ``targeting`` columns (name -> bit;
    ``None`` leaves out every targeting column)."""
    n = len(targetid)
    extra = {"TILEID": ("J", np.full(n, tileid, "i4"))}
    order = None
    if targeting is None:
        order = ["TARGETID", "COADD_FIBERSTATUS", "TARGET_RA", "TARGET_DEC", "OBJTYPE", "FLUX_R",
                 "COADD_EXPTIME", "TILEID"]
    else:
        for name, bit in {"DESI_TARGET": 0, "BGS_TARGET": 0, "MWS_TARGET": 0, **targeting}.items():
            extra[name] = ("K", np.full(n, bit, "i8"))
    return fibermap_table(targetid, rng.uniform(150, 151, n), rng.uniform(2, 3, n), extra=extra,
                          order=order)


def write_tiles(path: Path, rows: list[tuple[int, str, str]]) -> Path:
    """A ``tiles-{specprod}.fits``: HDU TILE_COMPLETENESS with (TILEID, SURVEY, PROGRAM) rows."""
    hdu = fits.BinTableHDU.from_columns([
        fits.Column(name="TILEID", format="J", array=np.array([r[0] for r in rows], "i4")),
        fits.Column(name="SURVEY", format="20A", array=np.array([r[1] for r in rows])),
        fits.Column(name="PROGRAM", format="6A", array=np.array([r[2] for r in rows])),
        fits.Column(name="FAPRGRM", format="20A", array=np.array([r[2] for r in rows])),
        fits.Column(name="EFFTIME_SPEC", format="D", array=np.full(len(rows), 1000.0)),
    ], name="TILE_COMPLETENESS")
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return path


def write_zall(path: Path, rows: dict[str, np.ndarray], formats: dict[str, str]) -> Path:
    """A zall-pix catalog: HDU ZCATALOG with the given columns."""
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name=k, format=formats[k], array=v) for k, v in rows.items()], name="ZCATALOG")
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return path


def read_cameras(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """The camera arrays of a coadd, read back with astropy (memmap off: masks are scaled)."""
    out = {}
    with fits.open(path, memmap=False) as h:
        for cam in "BRZ":
            out[cam] = {part: np.asarray(h[f"{cam}_{part.upper()}"].data)
                        for part in ("wavelength", "flux", "ivar", "mask", "resolution")}
        out["targetid"] = np.asarray(h["FIBERMAP"].data["TARGETID"])
    return out


def run_convert(raw: Path, config: str = "dr1_main", options: dict | None = None,
                context: ConvertContext | None = None) -> tuple[dict[str, np.ndarray], ConvertContext]:
    """discover + convert every unit through the hooks; batches concatenated."""
    context = context or ConvertContext(raw_dir=raw, options=options or {})
    units = hooks.mmu_discover("desi", config, raw, options or {})
    batches = [b for u in units for b in hooks.mmu_convert(u, context)]
    if not batches:
        return {}, context
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}, context
