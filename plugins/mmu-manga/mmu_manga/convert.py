"""MaNGA convert: one galaxy (one LOGCUBE, its MAPS file, its catalog rows) per unit of work
(:mod:`mmu_manga.discover`), converted into one row of flat ``ifu_`` columns.

Stored columns (see ``mmu_core.schemas.ifu``; G = 96, L = 4563, K = 8 + the DAP channels):

- ``ifu_flux``, ``ifu_ivar``, ``ifu_lsf_sigma`` (G, G, L) float32 and ``ifu_mask`` (G, G, L)
  int32 MANGA_DRP3PIXMASK: the LOGCUBE ``FLUX``, ``IVAR``, ``LSFPOST`` and ``MASK`` extensions
  transposed from FITS (L, ny, nx) to (y, x, L) and centred in the grid. Padding: flux, ivar,
  lsf 0, mask DONOTUSE (bit 10).
- ``ifu_lambda`` (L,) float32 from ``WAVE`` (vacuum Angstrom); ``ifu_spaxel_size`` arcsec from
  the FLUX header's celestial WCS (0.5); ``ifu_offset`` = (y0, x0) = ((G - ny) // 2, (G - nx) // 2) and
  ``ifu_size`` = (ny, nx): spaxel (x, y) of the original cube is grid cell [y0 + y, x0 + x].
- ``ifu_image_data``/``ifu_image_ivar`` (K, G, G) float32, ``ifu_image_mask`` (K, G, G) int32
  in MANGA_DAPPIXMASK bits (padding DONOTUSE = bit 30), ``ifu_image_label``/``_filter``/
  ``_units`` (K,): the 8 DRP reconstructed g, r, i, z images and PSFs, then every channel of
  the maps of ``datamodel.MAP_EXTENSIONS`` as the build's MAPS headers list them (discover fixes
  the list, ``meta["dap_channels"]``). The DRP gives no uncertainty for its images: their ivar is NaN
  ("not provided"; 0 would claim "no information"), and a spaxel the cube does not cover
  (every pixel NOCOV) is flagged NOCOV|DONOTUSE in the reconstructed images. A galaxy without
  a MAPS file has its map channels data 0, ivar 0, mask DONOTUSE.
- ``object_id`` = drpall ``mangaid``; ``ra``/``dec`` = drpall ``ifura``/``ifudec``; every
  drpall column under its native name except ``z`` (the standard ``z`` is ``nsa_z`` through an
  alias, so drpall's targeting ``z`` would shadow it); every dapall column whose name is not
  already a drpall column (case-insensitive), under its native name.

Repeat observations (several plate-IFUs of one mangaid) are one object: the best cube is kept
(not DRP3QUAL CRITICAL, has a MAPS file, longest exposure, then lowest plate-IFU) and the
others are listed as skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import ConvertContext, WorkUnit
from mmu_manga import datamodel as dm
from mmu_manga.reader import Catalog, Cube, load_catalog, read_cube, read_maps

SPAXEL_TOLERANCE = 0.01  # relative: MAPS and cube spaxel sizes must agree this well

STANDARD = ("object_id", "ra", "dec", "healpix")
DROPPED_DRPALL = ("z",)  # see the module docstring


def _catalog_row(cat: Catalog, i: int, skip: set[str]) -> dict[str, np.ndarray]:
    return {name: col[i : i + 1] for name, col in cat.columns.items() if name not in skip}


def _missing_row(cat: Catalog, skip: set[str]) -> dict[str, np.ndarray]:
    """A row of fill values in each column's dtype: NaN, -999 (MaNGA's missing), '' or False."""
    out = {}
    for name, col in cat.columns.items():
        if name in skip:
            continue
        kind = col.dtype.kind
        fill = {"f": np.nan, "c": np.nan, "i": -999, "u": 0, "b": False}.get(kind, b"")
        out[name] = np.full((1, *col.shape[1:]), fill, dtype=col.dtype)
    return out


def convert_unit(unit: WorkUnit, context: ConvertContext) -> Iterator[dict[str, np.ndarray]]:
    """Convert one galaxy into one row (a batch of length 1)."""
    meta = unit.meta
    for entry in meta.get("report", []):  # files discover did not use (one unit has them)
        context.skip(entry["message"], file=entry["file"])
    plateifu = meta["plateifu"]
    cube_path = meta["cube"]
    daptype = meta.get("daptype") or dm.DAPTYPE
    if meta.get("repeat_of"):
        context.skip(f"repeat observation of mangaid {meta['mangaid']}; plate-IFU "
                     f"{meta['repeat_of']} is kept", file=cube_path, object=meta["mangaid"])
        return
    drpall = load_catalog(meta["drpall"], dm.DRPALL_HDU, "plateifu")
    i = drpall.row(plateifu)
    if i is None:
        raise InputError(f"plate-IFU {plateifu} is not in drpall", file=meta["drpall"],
                         object=plateifu)
    mangaid = drpall.value("mangaid", i)
    maps_path = meta.get("maps")
    expected_maps = dm.expected_maps_path(cube_path, plateifu, daptype)
    if maps_path is None and context.option("require_maps", False):
        context.skip(f"no MAPS-{daptype} file; skipped (--require-maps)",
                     file=str(expected_maps), object=mangaid)
        return

    cube = read_cube(cube_path, object=mangaid)
    hdr_plateifu = str(cube.header.get("PLATEIFU", plateifu)).strip()
    if hdr_plateifu != plateifu:
        raise InputError(f"header PLATEIFU {hdr_plateifu!r} disagrees with the file name",
                         file=cube_path, object=mangaid)

    image_data, image_ivar, image_mask, image_units = _drp_images(cube)
    absent = [c.hdu for c in dm.DRP_CHANNELS if c.hdu not in cube.image_units]
    if absent:
        context.warn(f"{Path(cube_path).name} has no {', '.join(absent)} extension(s): "
                     "those image channels are masked DONOTUSE")
    dap = tuple(dm.Channel(**c) for c in meta.get("dap_channels", []))
    if maps_path is not None:
        maps = read_maps(maps_path, dap, cube.size, object=mangaid)
        for problem in maps.problems:
            context.warn(f"{Path(maps_path).name}: {problem}; a missing channel is masked "
                         "DONOTUSE")
        scale = maps.spaxel_size
        if scale is not None and abs(scale - cube.spaxel_size) > SPAXEL_TOLERANCE * cube.spaxel_size:
            raise InputError(f"MAPS spaxels are {scale:.4g} arcsec, the cube's "
                             f"{cube.spaxel_size:.4g}: the maps do not lie on the cube's grid",
                             file=maps_path, object=mangaid)
        map_data, map_ivar, map_mask, map_units = maps.data, maps.ivar, maps.mask, maps.units
    else:
        context.warn(f"plate-IFU {plateifu} ({mangaid}) has no MAPS file ({expected_maps}): "
                     "converted without DAP maps (map channels masked DONOTUSE)")
        g = cube.flux.shape[0]
        map_data = np.zeros((len(dap), g, g), np.float32)
        map_ivar = np.zeros((len(dap), g, g), np.float32)
        map_mask = np.full((len(dap), g, g), dm.DAP_DONOTUSE, np.int32)
        map_units = [c.units for c in dap]
    channels = dm.DRP_CHANNELS + dap

    ra = float(drpall.value("ifura", i))
    dec = float(drpall.value("ifudec", i))
    if not (np.isfinite(ra) and np.isfinite(dec) and 0 <= ra < 360 and -90 <= dec <= 90):
        raise InputError(f"drpall ifura/ifudec = ({ra}, {dec}) is not a sky position",
                         file=meta["drpall"], object=mangaid)
    batch: dict[str, np.ndarray] = {
        "object_id": np.array([mangaid.encode()]),
        "ra": np.array([ra], np.float64),
        "dec": np.array([dec], np.float64),
    }
    drp_skip = set(DROPPED_DRPALL) | set(STANDARD)
    batch.update(_catalog_row(drpall, i, drp_skip))
    if meta.get("dapall"):
        dapall = load_catalog(meta["dapall"], meta["dapall_hdu"], "plateifu",
                              meta.get("dapall_where"))
        taken = {n.lower() for n in drpall.columns} | set(STANDARD)
        dap_skip = {n for n in dapall.columns if n.lower() in taken}
        j = dapall.row(plateifu)
        if j is None:
            context.warn(f"plate-IFU {plateifu} is not in dapall: its dapall columns are fill "
                         "values (NaN, -999, '')")
            batch.update(_missing_row(dapall, dap_skip))
        else:
            batch.update(_catalog_row(dapall, j, dap_skip))

    labels = [c.label for c in channels]
    batch.update({
        "ifu_flux": cube.flux[None],
        "ifu_ivar": cube.ivar[None],
        "ifu_mask": cube.mask[None],
        "ifu_lsf_sigma": cube.lsf_sigma[None],
        "ifu_lambda": cube.wave[None],
        "ifu_spaxel_size": np.array([cube.spaxel_size], np.float32),
        "ifu_offset": np.array([cube.offset], np.int32),
        "ifu_size": np.array([cube.size], np.int32),
        "ifu_image_data": np.concatenate([image_data, map_data])[None],
        "ifu_image_ivar": np.concatenate([image_ivar, map_ivar])[None],
        "ifu_image_mask": np.concatenate([image_mask, map_mask])[None],
        "ifu_image_label": _strings(labels),
        "ifu_image_filter": _strings([c.filter for c in channels]),
        "ifu_image_units": _strings(image_units + list(map_units)),
    })
    del cube
    yield batch


def _strings(values: list[str]) -> np.ndarray:
    """(1, K) fixed-width bytes, as wide as the longest value (the core widens across rows)."""
    return np.array([[v.encode("utf-8") for v in values]], dtype=np.bytes_)


def _drp_images(cube: Cube) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The 8 reconstructed images and PSFs: data, ivar (NaN: not provided), DAP-style mask."""
    drp = dm.DRP_CHANNELS
    g = cube.flux.shape[0]
    y0, x0 = cube.offset
    ny, nx = cube.size
    data = np.stack([cube.images[c.hdu] for c in drp])
    ivar = np.full_like(data, np.nan)
    mask = np.full((len(drp), g, g), dm.DAP_DONOTUSE, np.int32)
    inside = np.where(cube.no_coverage, dm.DAP_NOCOV | dm.DAP_DONOTUSE, 0).astype(np.int32)
    for k, c in enumerate(drp):
        if c.hdu not in cube.image_units:  # extension absent from the LOGCUBE
            continue
        # A PSF is a model: defined everywhere inside the cube, whatever the fibre coverage.
        mask[k, y0 : y0 + ny, x0 : x0 + nx] = 0 if "PSF" in c.hdu else inside
    units = [cube.image_units.get(c.hdu) or c.units for c in drp]
    return data, ivar, mask, units
