"""Convert a block of rows of a Stein et al. (2021) HDF5 file (config stein_et_al).

A file holds, one row per object, the dataset ``images`` (N, 3, 152, 152) float32 — g, r, z
cutouts centred on the object, band first, as MMU v1 read them — and DR9 catalog datasets:
scalars (``inds``, ``ra``, ``dec``, ``release``, ``brickid``, ``objid``, ``z_spec``, ``ebv``
...) and per-band ones of shape (N, 3) (``flux``, ``fiberflux``, ``psfdepth``, ``psfsize``
...), listed in :data:`mmu_legacysurvey.datamodel.STEIN_FIELDS`. Rows are read in blocks
(never a whole file): one batch per block.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import ConvertContext, WorkUnit
from mmu_legacysurvey import datamodel as dm
from mmu_legacysurvey import tractor

BATCH_BYTES = 128 * 2**20
IMAGE_SHAPE = (len(dm.STEIN_BANDS), dm.STEIN_NPIX, dm.STEIN_NPIX)
MISSING = ("Stein et al. files without these datasets have the columns filled (NaN, -1, "
           "empty)")


def _kind_ok(dtype: np.dtype, stored: str) -> bool:
    want = np.dtype(stored).kind
    if want == "S":
        return dtype.kind in "SUO"
    if want in "iu":
        return dtype.kind in "iu"
    return dtype.kind in "fiu"


def check_layout(f: h5py.File, path: Path) -> tuple[dict[str, h5py.Dataset], list[str]]:
    """The file's datasets by field name, and the optional fields it lacks.

    :raises InputError: naming the file and dataset, when a required dataset is missing or a
        dataset has the wrong shape or kind of values.
    """
    if dm.STEIN_IMAGE not in f:
        raise InputError(f"Stein et al. file has no {dm.STEIN_IMAGE!r} dataset", file=str(path))
    images = f[dm.STEIN_IMAGE]
    if not isinstance(images, h5py.Dataset) or images.ndim != 4 \
            or tuple(images.shape[1:]) != IMAGE_SHAPE or images.dtype.kind not in "fiu":
        raise InputError(f"dataset {dm.STEIN_IMAGE!r} is {getattr(images, 'dtype', '?')} "
                         f"{getattr(images, 'shape', '?')}, expected (N, 3, 152, 152) numbers",
                         file=str(path))
    n = images.shape[0]
    found, missing = {dm.STEIN_IMAGE: images}, []
    for field in dm.STEIN_FIELDS:
        ds = f.get(field.name)
        if ds is None:
            if field.required:
                raise InputError(f"Stein et al. file has no {field.name!r} dataset (MMU v1 "
                                 "reads it)", file=str(path))
            missing.append(field.name)
            continue
        shape = (n, len(dm.STEIN_BANDS)) if field.per_band else (n,)
        if not isinstance(ds, h5py.Dataset) or tuple(ds.shape) != shape \
                or not _kind_ok(ds.dtype, field.dtype):
            raise InputError(f"dataset {field.name!r} is {getattr(ds, 'dtype', '?')} "
                             f"{getattr(ds, 'shape', '?')}, expected {np.dtype(field.dtype)} "
                             f"{shape}", file=str(path))
        found[field.name] = ds
    return found, missing


def _stored(values: np.ndarray, stored: str) -> np.ndarray:
    if np.dtype(stored).kind == "S":
        if values.dtype.kind == "O":
            values = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
        if values.dtype.kind == "U":
            values = np.char.encode(values, "ascii")
        return np.char.rstrip(values).astype(stored)
    return values.astype(stored)


def read_block(found: dict[str, h5py.Dataset], path: Path, rows: slice
               ) -> dict[str, np.ndarray]:
    """Rows ``rows`` of every dataset, as stored columns (per-band fields split by band);
    ``images`` as float32 (n, 3, 152, 152)."""
    out: dict[str, np.ndarray] = {}
    for name, ds in found.items():
        try:
            values = ds[rows]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise InputError(f"cannot read rows {rows.start}:{rows.stop} of dataset {name!r}: "
                             f"{type(exc).__name__}: {exc}", file=str(path)) from exc
        if name == dm.STEIN_IMAGE:
            out[name] = np.asarray(values, np.float32)
            continue
        field = next(f for f in dm.STEIN_FIELDS if f.name == name)
        if field.per_band:
            for k, band in enumerate(dm.STEIN_BANDS):
                out[f"{name}_{band}"] = _stored(np.asarray(values[:, k]), field.dtype)
        else:
            out[name] = _stored(np.asarray(values), field.dtype)
    return out


def convert(unit: WorkUnit, context: ConvertContext) -> Iterator[dict[str, np.ndarray]]:
    """Batches of rows ``start`` .. ``stop`` of one Stein et al. file."""
    path = Path(unit.meta["path"])
    region = unit.meta["region"]
    offset = dm.STEIN_REGION_OFFSET[region]
    repeats = {int(r): v for r, v in unit.meta["repeats"].items()}
    for row, (value, first_file, first_row) in sorted(repeats.items()):
        context.skip(f"row {row}: inds {value} repeats row {first_row} of {first_file}, "
                     "which is kept", file=str(path), object=str(offset + value))
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"cannot open Stein et al. HDF5 file: {exc}", file=str(path)) from exc
    with f:
        found, missing = check_layout(f, path)
        if missing:
            context.warn(f"{MISSING}: {', '.join(missing)}")
        start, stop = int(unit.meta["start"]), int(unit.meta["stop"])
        if stop > found[dm.STEIN_IMAGE].shape[0]:
            raise InputError(f"file has {found[dm.STEIN_IMAGE].shape[0]} rows, fewer than when "
                             "the build started; build again", file=str(path))
        block = max(1, BATCH_BYTES // (4 * int(np.prod(IMAGE_SHAPE))))
        for a in range(start, stop, block):
            b = min(a + block, stop)
            batch = _batch(read_block(found, path, slice(a, b)), missing, region, offset,
                           np.arange(a, b), repeats, context, path)
            if batch is not None:
                yield batch


def _batch(cols: dict[str, np.ndarray], missing: list[str], region: str, offset: int,
           rows: np.ndarray, repeats: dict[int, list], context: ConvertContext,
           path: Path) -> dict[str, np.ndarray] | None:
    n = len(rows)
    for field in dm.STEIN_FIELDS:
        if field.name in missing:
            for col in field.columns():
                cols[col.name] = col.empty(n)
    ids = cols["inds"].astype(np.int64) + offset
    ra, dec = cols["ra"], cols["dec"]
    with np.errstate(invalid="ignore"):
        good_pos = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    for j in np.flatnonzero(~good_pos):
        context.skip(f"row {rows[j]}: invalid position ra={ra[j]} dec={dec[j]}",
                     file=str(path), object=str(ids[j]))
    keep = good_pos & ~np.isin(rows, list(repeats))
    if not keep.any():
        return None
    images = cols.pop(dm.STEIN_IMAGE)[keep]
    out = {name: col[keep] for name, col in cols.items()}
    m = len(images)
    for b in dm.STEIN_BANDS:
        out[f"model_mag_{b}"] = tractor.magnitude(out[f"flux_{b}"]).astype(np.float32)
        out[f"mw_extinction_{b}"] = tractor.extinction(out[f"transmission_{b}"]).astype(np.float32)
    out["region"] = np.full(m, region.encode(), dtype="S5")
    out["object_id"] = ids[keep]
    out["image_array"] = images
    out["image_band"] = np.tile(np.array(dm.STEIN_BAND_NAMES, dtype="S5"), (m, 1))
    out["image_psf_fwhm"] = np.stack([out[f"psfsize_{b}"] for b in dm.STEIN_BANDS],
                                     axis=1).astype(np.float32)
    out["image_scale"] = np.full((m, len(dm.STEIN_BANDS)), dm.PIXEL_SCALE, np.float32)
    out["image_extinction"] = np.stack([out[f"mw_extinction_{b}"] for b in dm.STEIN_BANDS],
                                       axis=1).astype(np.float32)
    return out
