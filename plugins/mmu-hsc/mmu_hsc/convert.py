"""Convert one (tract, patch) unit of HSC into batches of stamps; the units come from
:mod:`mmu_hsc.discover`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import ConvertContext, WorkUnit
from mmu_hsc import catalogs as cat
from mmu_hsc.datamodel import BAND_NAMES, BANDS, FILTERS, PIXEL_SCALE
from mmu_hsc.reader import Calexp, centre_inside, open_calexp, stamp_slices

DEFAULT_STAMP_SIZE = 160
BATCH_BYTES = 128 * 2**20  # keeps one batch of stamps well under the core's 256 MB advice
FWHM_PER_SIGMA = 2.355


def psf_fwhm(m11: np.ndarray, m22: np.ndarray, m12: np.ndarray,
             scale: float = PIXEL_SCALE) -> np.ndarray:
    """PSF FWHM in arcsec from second moments in pixels²: 2.355·(Mxx·Myy − Mxy²)^¼·scale.

    NaN where the moments are missing or their determinant is not positive.
    """
    det = np.asarray(m11, float) * np.asarray(m22, float) - np.asarray(m12, float) ** 2
    with np.errstate(invalid="ignore"):
        return np.where(det > 0, FWHM_PER_SIGMA * np.abs(det) ** 0.25 * scale, np.nan)


def _open_bands(unit: WorkUnit, context: ConvertContext,
                stack: ExitStack) -> dict[str, Calexp | None]:
    """Open each band's calexp once for the whole patch; None for a missing band, and for an
    unreadable one under ``--skip-bad`` (listed through ``context.skip``)."""
    opened: dict[str, Calexp | None] = {}
    label = f"tract {unit.meta['tract']} patch {unit.meta['patch']}"
    for band in BANDS:
        path = unit.meta["bands"].get(band)
        opened[band] = None
        if path is None:
            continue
        try:
            calexp = open_calexp(Path(path))
        except InputError as exc:
            if not context.option("skip_bad", False):
                raise
            context.skip(f"{exc.message}; band {band} of {label} treated as missing", file=path)
            continue
        stack.callback(calexp.close)
        opened[band] = calexp
    return opened


def convert(unit: WorkUnit, context: ConvertContext) -> Iterator[dict[str, np.ndarray]]:
    """Stamps of every selected catalog object of one patch, in batches.

    Per object and band: ``image_array`` (the calexp pixels, 0 outside the image),
    ``image_ivar`` (1/variance; 0 where the variance is not finite or not positive, or
    outside), ``image_mask`` (True = good: BAD, SAT and NO_DATA unset, inside the image and
    finite), ``image_band``, ``image_psf_fwhm`` (arcsec, from the catalog's psf moments),
    ``image_scale`` (arcsec/pixel), ``image_extinction`` (the catalog's ``a_b``); plus every
    catalog column under its native name.
    """
    size = int(context.option("stamp_size", DEFAULT_STAMP_SIZE))
    require_all = bool(context.option("require_all_bands", False))
    index = cat.load_index(unit.meta["catalogs"], unit.config)
    rows = index.rows(unit.meta["tract"], unit.meta["patch"])
    n = len(rows["object_id"])
    if unit.meta.get("n_duplicates"):
        context.warn(f"catalog lists {unit.meta['n_duplicates']} object_id(s) twice; "
                     "the first row of each was kept")
    if n == 0:
        return
    with ExitStack() as stack:
        bands = _open_bands(unit, context, stack)
        positions = {b: c.pixel_positions(rows["ra"], rows["dec"]) for b, c in bands.items()
                     if c is not None}
        keep = _usable_objects(unit, context, rows, bands, positions, require_all)
        rows = {name: col[keep] for name, col in rows.items()}
        positions = {b: (x[keep], y[keep]) for b, (x, y) in positions.items()}
        n = len(rows["object_id"])
        if n == 0:
            return
        for band in (b for b in BANDS if bands[b] is None):
            context.warn(f"tract {unit.meta['tract']} patch {unit.meta['patch']}: no readable "
                         f"{FILTERS[band]} calexp; band {band} of its {n} object(s) fully masked")
        # image, variance, ivar, mask bits (float32/int32) and a few boolean temporaries
        per_object = len(BANDS) * size * size * (4 * 4 + 3)
        batch = max(1, BATCH_BYTES // per_object)
        for start in range(0, n, batch):
            sl = slice(start, min(start + batch, n))
            yield _batch(rows, sl, bands, positions, size)


def _usable_objects(unit: WorkUnit, context: ConvertContext, rows: cat.Catalog,
                    bands: dict[str, Calexp | None],
                    positions: dict[str, tuple[np.ndarray, np.ndarray]],
                    require_all: bool) -> np.ndarray:
    """Objects to convert; the others are reported through ``context.skip``."""
    ids, ra, dec = rows["object_id"], rows["ra"], rows["dec"]
    label = f"tract {unit.meta['tract']} patch {unit.meta['patch']}"
    present = [b for b in BANDS if bands[b] is not None]
    missing = [b for b in BANDS if bands[b] is None]
    if not present or (require_all and missing):
        files = ", ".join(FILTERS[b] for b in missing)
        why = ("no calexp file in any band" if not present
               else f"missing band(s) {files} (--require-all-bands)")
        for oid in ids:
            context.skip(f"{label}: {why}", object=str(oid))
        return np.zeros(len(ids), bool)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra < 360) & (np.abs(dec) <= 90)
    for i in np.flatnonzero(~keep):
        context.skip(f"invalid position ra={ra[i]} dec={dec[i]} in the catalog",
                     file=unit.meta["catalogs"][0], object=str(ids[i]))
    for band in present:
        calexp = bands[band]
        x, y = positions[band]
        for i in np.flatnonzero(keep):
            if not centre_inside(x[i], y[i], calexp.shape):
                context.skip(
                    f"object at ra={ra[i]:.6f} dec={dec[i]:.6f} falls outside the "
                    f"{calexp.shape[1]}x{calexp.shape[0]} image of {label} "
                    f"(pixel x={x[i]:.1f} y={y[i]:.1f})",
                    file=str(calexp.path), object=str(ids[i]))
                keep[i] = False
    return keep


def _batch(rows: cat.Catalog, sl: slice, bands: dict[str, Calexp | None],
           positions: dict[str, tuple[np.ndarray, np.ndarray]], size: int
           ) -> dict[str, np.ndarray]:
    n = sl.stop - sl.start
    nb = len(BANDS)
    image = np.zeros((n, nb, size, size), np.float32)
    variance = np.full((n, nb, size, size), np.nan, np.float32)
    # Mask bits, all set outside the image (and in a missing band): such pixels are bad.
    bits = np.full((n, nb, size, size), -1, np.int32)
    bad_bits = np.zeros((1, nb, 1, 1), np.int32)
    scale = np.full((n, nb), PIXEL_SCALE, np.float32)
    for k, band in enumerate(BANDS):
        calexp = bands[band]
        if calexp is None:
            bad_bits[0, k] = -1
            continue
        scale[:, k] = calexp.scale
        bad_bits[0, k] = calexp.bad_bits
        xs, ys = positions[band]
        for j, i in enumerate(range(sl.start, sl.stop)):
            where = stamp_slices(xs[i], ys[i], size, calexp.shape)
            if where is None:
                continue
            sy, sx, iy, ix = where
            image[j, k, sy, sx] = calexp.image[iy, ix]
            variance[j, k, sy, sx] = calexp.variance[iy, ix]
            bits[j, k, sy, sx] = calexp.mask[iy, ix]
    good = (bits & bad_bits) == 0
    del bits
    not_finite = ~np.isfinite(image)
    good &= ~not_finite
    # Non-finite pixels (NO_DATA regions hold NaN) become 0 so the arrays stay usable; the
    # mask and ivar say they carry no information.
    np.copyto(image, 0.0, where=not_finite)
    ivar = np.zeros_like(variance)
    usable = np.isfinite(variance)
    usable &= variance > 0
    usable &= ~not_finite
    np.divide(1.0, variance, out=ivar, where=usable)

    out = {name: col[sl] for name, col in rows.items()}
    m = len(out["object_id"])
    out["object_id"] = out["object_id"].astype(np.int64)
    out["ra"] = out["ra"].astype(np.float64)
    out["dec"] = out["dec"].astype(np.float64)
    out["image_array"] = image
    out["image_ivar"] = ivar
    out["image_mask"] = good
    out["image_band"] = np.tile(np.array(BAND_NAMES, dtype="S5"), (m, 1))
    out["image_psf_fwhm"] = np.stack([
        psf_fwhm(*(cat.band_column(out, f"{b}_sdssshape_psf_shape{s}", m) for s in ("11", "22", "12")))
        for b in BANDS], axis=1).astype(np.float32)
    out["image_scale"] = scale
    out["image_extinction"] = np.stack(
        [cat.band_column(out, f"a_{b}", m) for b in BANDS], axis=1).astype(np.float32)
    return out
