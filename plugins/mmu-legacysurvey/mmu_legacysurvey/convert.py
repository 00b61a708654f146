"""Convert one brick of DR10 south into batches of g, r, i, z stamps (config dr10_south_21);
the units come from :mod:`mmu_legacysurvey.discover`, Stein et al. rows from
:mod:`mmu_legacysurvey.stein`.

Per selected object (:func:`mmu_legacysurvey.tractor.selection`) and band: the 160 x 160
stamp of the coadd image, its inverse variance and a good-pixel mask, cut as astropy's
``Cutout2D(data, (x, y), 160, mode='partial')`` at the object's WCS position; pixels outside
the brick's images are 0, ivar 0 and masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import ConvertContext, WorkUnit
from mmu_legacysurvey import datamodel as dm
from mmu_legacysurvey import reader, stein, tractor
from mmu_legacysurvey.reader import Plane

BATCH_BYTES = 128 * 2**20  # one batch of stamps stays well under the core's 256 MB advice
MISSING_COLUMNS = ("Tractor catalogs without these stored columns have them filled (NaN, -1, "
                   "empty, False)")


def convert(unit: WorkUnit, context: ConvertContext) -> Iterator[dict[str, np.ndarray]]:
    """Batches of one unit: a brick's stamps, or a block of Stein et al. rows."""
    if unit.config == "stein_et_al":
        return stein.convert(unit, context)
    return convert_brick(unit, context)


def _planes_needed() -> list[tuple[str, str, str | None]]:
    """(meta key, kind, band) of the nine coadd files a brick's stamps need."""
    out = [(f"{kind}-{b}", kind, b) for b in dm.BANDS for kind in ("image", "invvar")]
    return out + [("maskbits", "maskbits", None)]


def _open_planes(unit: WorkUnit, ids: np.ndarray, stack: ExitStack) -> dict[str, Plane]:
    """Open the brick's nine coadd files; a missing or unreadable one is an InputError naming
    the file and the first object that needs it."""
    brick = unit.meta["brick"]
    planes = {}
    for key, kind, band in _planes_needed():
        path = unit.meta["coadd"].get(key)
        first = ids[0].decode()
        if path is None:
            raise InputError(
                f"brick {brick}: no {reader.KIND_WHAT[kind]}{f' for band {band}' if band else ''}"
                f" ({dm.coadd_name(brick, kind, band)}), needed by the stamps of {len(ids)} "
                "selected object(s)", file=unit.meta["expected"][key], object=first)
        try:
            plane = reader.open_plane(Path(path), kind, band, brick)
        except InputError as exc:
            raise InputError(f"brick {brick}: {exc.message}", file=exc.file, object=first) from exc
        stack.callback(plane.close)
        planes[key] = plane
    shapes = {p.path.name: p.shape for p in planes.values()}
    if len(set(shapes.values())) != 1:
        raise InputError(f"brick {brick}: coadd files differ in shape: {shapes}",
                         file=str(planes["image-g"].path))
    return planes


def convert_brick(unit: WorkUnit, context: ConvertContext) -> Iterator[dict[str, np.ndarray]]:
    """Stamps of every selected object of one brick, in batches."""
    brick = unit.meta["brick"]
    path = unit.meta["tractor"]
    if path is None:
        raise InputError(f"brick {brick} has coadd files but no Tractor catalog "
                         f"tractor-{brick}.fits: its objects are unknown",
                         file=unit.meta["expected"]["tractor"], object=f"brick {brick}")
    cat = tractor.read_catalog(Path(path))
    if cat.missing:
        context.warn(f"{MISSING_COLUMNS}: {', '.join(cat.missing)}")
    cols = cat.columns
    names = np.char.strip(cols["brickname"])
    wrong = np.flatnonzero(names != brick.encode())
    if len(wrong):
        r = wrong[0]
        raise InputError(f"catalog row {r} has brickname {names[r].decode()!r}, not {brick}",
                         file=path, object=dm.object_id(names[r].decode(), cols["objid"][r]).decode())
    keep = tractor.selection(cat, unit.config)
    ids = np.array([dm.object_id(brick, o) for o in cols["objid"]], dtype=dm.OBJECT_ID_DTYPE)
    ra, dec = cols["ra"], cols["dec"]
    with np.errstate(invalid="ignore"):
        bad_pos = keep & ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
    for r in np.flatnonzero(bad_pos):
        context.skip(f"invalid position ra={ra[r]} dec={dec[r]}", file=path,
                     object=ids[r].decode())
    rows = np.flatnonzero(keep & ~bad_pos)
    if len(rows) == 0:
        return
    unique, counts = np.unique(ids[rows], return_counts=True)
    if (counts > 1).any():
        raise InputError("the catalog lists this brick_primary object twice (objid repeats)",
                         file=path, object=unique[counts > 1][0].decode())
    with ExitStack() as stack:
        planes = _open_planes(unit, ids[rows], stack)
        positions = {k: p.pixel_positions(ra[rows], dec[rows]) for k, p in planes.items()}
        inside = np.ones(len(rows), bool)
        for key, plane in planes.items():
            x, y = positions[key]
            for j in np.flatnonzero(inside):
                if not reader.centre_inside(x[j], y[j], plane.shape):
                    context.skip(f"object at ra={ra[rows[j]]:.6f} dec={dec[rows[j]]:.6f} falls "
                                 f"outside the {plane.shape[1]}x{plane.shape[0]} image of brick "
                                 f"{brick} (pixel x={x[j]:.1f} y={y[j]:.1f})",
                                 file=str(plane.path), object=ids[rows[j]].decode())
                    inside[j] = False
        order = np.flatnonzero(inside)
        # top to bottom, so that a batch's stamps share few image rows (one region read each)
        order = order[np.argsort(positions["image-g"][1][order], kind="stable")]
        per_object = len(dm.BANDS) * dm.STAMP_SIZE**2 * (4 + 4 + 4 + 1)
        batch = max(1, BATCH_BYTES // per_object)
        for start in range(0, len(order), batch):
            sel = order[start:start + batch]
            out = _batch(unit, context, cat, rows[sel], ids[rows[sel]],
                         {k: (x[sel], y[sel]) for k, (x, y) in positions.items()}, planes)
            if out is not None:
                yield out


def _batch(unit: WorkUnit, context: ConvertContext, cat: tractor.Catalog, rows: np.ndarray,
           ids: np.ndarray, positions: dict[str, tuple[np.ndarray, np.ndarray]],
           planes: dict[str, Plane]) -> dict[str, np.ndarray] | None:
    n, nb, size = len(rows), len(dm.BANDS), dm.STAMP_SIZE
    image = np.zeros((n, nb, size, size), np.float32)
    ivar = np.zeros((n, nb, size, size), np.float32)
    inside = np.zeros((n, size, size), bool)
    bits = np.zeros((n, size, size), np.int64)
    damaged: dict[int, tuple[Plane, str]] = {}

    def cut(key: str, out: np.ndarray) -> list:
        plane = planes[key]
        x, y = positions[key]
        where = [reader.stamp_slices(x[j], y[j], size, plane.shape) for j in range(n)]
        for j, why in reader.cut_stamps(plane, where, out).items():
            damaged.setdefault(j, (plane, why))
        return where

    for k, band in enumerate(dm.BANDS):
        where_image = cut(f"image-{band}", image[:, k])
        if k == 0:
            # stamp pixel (0, 0) is image pixel (x0, y0) (negative off the image's edge)
            x0 = np.array([w[0][1].start - w[1][1].start for w in where_image], np.float64)
            y0 = np.array([w[0][0].start - w[1][0].start for w in where_image], np.float64)
        cut(f"invvar-{band}", ivar[:, k])
    mask_plane = planes["maskbits"]
    where = cut("maskbits", bits)
    for j, w in enumerate(where):
        if w is not None:
            inside[j][w[1]] = True
    if damaged:
        for j, (plane, why) in sorted(damaged.items()):
            oid = ids[j].decode()
            if not context.option("skip_bad", False):
                raise InputError(f"brick {unit.meta['brick']}: cannot read the stamp of this "
                                 f"object from the {plane.what}: {why}", file=str(plane.path),
                                 object=oid)
            context.skip(f"brick {unit.meta['brick']}: {plane.what}: {why}; object left out",
                         file=str(plane.path), object=oid)
        good_rows = np.array([j not in damaged for j in range(n)])
        if not good_rows.any():
            return None
        image, ivar, inside, bits, x0, y0 = (a[good_rows] for a in (image, ivar, inside, bits,
                                                                    x0, y0))
        rows, ids = rows[good_rows], ids[good_rows]
        n = len(rows)

    clean = (bits & tractor.bits_value(dm.BAD_MASKBITS, mask_plane.maskbits)) == 0
    finite = np.isfinite(image)
    np.copyto(image, 0.0, where=~finite)
    usable = np.isfinite(ivar) & (ivar >= 0)
    np.copyto(ivar, 0.0, where=~usable)
    mask = (inside & clean)[:, None, :, :] & finite

    out = {name: col[rows] for name, col in cat.columns.items()}
    out.update(tractor.derived_columns(out))
    out["object_id"] = ids.astype(dm.OBJECT_ID_DTYPE)
    out["image_array"] = image
    out["image_ivar"] = ivar
    out["image_mask"] = mask
    out["image_band"] = np.tile(np.array(dm.BAND_NAMES, dtype="S5"), (n, 1))
    out["image_psf_fwhm"] = np.stack([out[f"psfsize_{b}"] for b in dm.BANDS],
                                     axis=1).astype(np.float32)
    out["image_scale"] = np.tile(np.array([planes[f"image-{b}"].scale for b in dm.BANDS],
                                          np.float32), (n, 1))
    out["image_extinction"] = np.stack([out[f"mw_extinction_{b}"] for b in dm.BANDS],
                                       axis=1).astype(np.float32)
    units = [planes[f"image-{b}"].unit or dm.FLUX_UNIT for b in dm.BANDS]
    out["image_units"] = np.tile(np.array(units, dtype="S16"), (n, 1))
    out.update(stamp_wcs(planes["image-g"], x0, y0))
    return out


def stamp_wcs(plane: Plane, x0: np.ndarray, y0: np.ndarray) -> dict[str, np.ndarray]:
    """Each stamp's WCS (the brick's, its reference pixel moved by the stamp's origin, as
    ``Cutout2D.wcs``): ``wcs_ctype1/2``, ``wcs_crval1/2``, ``wcs_crpix1/2`` (FITS, 1-based),
    ``wcs_cd`` (2 x 2, deg/pixel)."""
    w = plane.wcs.celestial
    n = len(x0)
    return {
        "wcs_ctype1": np.full(n, w.wcs.ctype[0].encode(), "S8"),
        "wcs_ctype2": np.full(n, w.wcs.ctype[1].encode(), "S8"),
        "wcs_crval1": np.full(n, w.wcs.crval[0], np.float64),
        "wcs_crval2": np.full(n, w.wcs.crval[1], np.float64),
        "wcs_crpix1": w.wcs.crpix[0] - x0,
        "wcs_crpix2": w.wcs.crpix[1] - y0,
        "wcs_cd": np.broadcast_to(np.asarray(w.pixel_scale_matrix, np.float64), (n, 2, 2)).copy(),
    }
