"""Map gz3d masks onto the spaxel grid of the galaxy's MaNGA cube, through the two WCSs.

The stored ``segmentation_array`` keeps the 525x525 grid (0.099"/px) of the colour cutout the
volunteers drew on (stored on the survey's own grid, not resampled). To use a mask with
the MaNGA cube of the same MANGAID (0.5" spaxels, 34-74 across), resample it:

1. Rebuild the mask WCS: :func:`gz3d_wcs_from_row` from the stored ``wcs_*`` columns (or
   ``astropy.wcs.WCS(hdul[1].header)`` from the raw file).
2. Get the cube WCS: ``astropy.wcs.WCS(cube_header)`` (3-D is fine, its celestial part is
   used), or :func:`manga_cube_wcs` from the IFU centre (drpall ``ifura``/``ifudec``), the
   cube size and 0.5"/spaxel when only those are known.
3. :func:`masks_to_spaxels` splits every spaxel into ``oversample`` x ``oversample``
   sub-points, takes each to the sky with the cube WCS and back to a cutout pixel with the
   gz3d WCS, reads the nearest mask pixel and averages: the result is the mean vote count
   over the spaxel's area (``statistic="max"``: the largest), NaN where the spaxel lies
   wholly outside the cutout.

Pixel convention: array index ``[j, i]`` is FITS pixel ``(i + 1, j + 1)`` in both grids, as
the header WCSs define them. (The GZ3D cluster tables' ``ra``/``dec`` were computed by the
production code with ``wcs_pix2world(x, y, 1)`` on 0-based click positions, so they sit one
cutout pixel, 0.1", from where the header WCS places the same point; that is far below a
0.5" spaxel.)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from mmu_gz3d import datamodel as dm


def manga_cube_wcs(ra: float, dec: float, size: int | tuple[int, int],
                   scale: float = dm.SPAXEL_SCALE) -> WCS:
    """A MaNGA-like cube WCS: TAN, centred on (ra, dec) at the middle of a ``size`` grid
    (CRPIX = (n + 1) / 2), ``scale`` arcsec per spaxel, north up (CD2_2 > 0), east left."""
    ny, nx = (size, size) if np.isscalar(size) else size
    w = WCS(naxis=2)
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    w.wcs.crval = [float(ra), float(dec)]
    w.wcs.cd = np.array([[-scale, 0.0], [0.0, scale]]) / 3600.0
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.pixel_shape = (nx, ny)
    return w


def gz3d_wcs_from_row(row: Mapping[str, Any], index: int | None = None) -> WCS:
    """The mask WCS from a stored row's ``wcs_*`` columns (``index`` picks a row when the
    values are arrays over rows, as :meth:`Dataset.get` returns them)."""

    def value(name: str) -> Any:
        v = row[name]
        return v[index] if index is not None else v

    def text(name: str) -> str:
        v = value(name)
        return v.decode() if isinstance(v, (bytes, np.bytes_)) else str(v)

    w = WCS(naxis=2)
    w.wcs.ctype = [text("wcs_ctype1"), text("wcs_ctype2")]
    w.wcs.crval = [float(value("wcs_crval1")), float(value("wcs_crval2"))]
    w.wcs.crpix = [float(value("wcs_crpix1")), float(value("wcs_crpix2"))]
    w.wcs.cd = np.asarray(value("wcs_cd"), dtype=np.float64)
    w.wcs.cunit = ["deg", "deg"]
    w.pixel_shape = (dm.IMAGE_SHAPE[1], dm.IMAGE_SHAPE[0])
    return w


def masks_to_spaxels(
    masks: np.ndarray,
    gz3d_wcs: WCS | fits.Header,
    cube_wcs: WCS | fits.Header | None = None,
    *,
    shape: tuple[int, int] | None = None,
    center: tuple[float, float] | None = None,
    scale: float = dm.SPAXEL_SCALE,
    oversample: int = 5,
    statistic: str = "mean",
) -> np.ndarray:
    """Resample gz3d masks onto a MaNGA spaxel grid (see the module docstring).

    :param masks: (H, W) or (C, H, W) mask(s) on the cutout grid.
    :param gz3d_wcs: the masks' WCS (or the header of HDU 1).
    :param cube_wcs: the cube's WCS or header; its celestial axes are used. Without it, give
        ``center`` = (ra, dec) of the IFU and ``shape``; :func:`manga_cube_wcs` is used.
    :param shape: (ny, nx) spaxels; defaults to the cube WCS's pixel shape.
    :param oversample: sub-points per spaxel side (0.5"/0.099" ~ 5 cutout pixels per side).
    :param statistic: ``"mean"`` (mean count over the spaxel) or ``"max"``.
    :returns: float64 array (ny, nx) or (C, ny, nx); NaN where a spaxel misses the cutout.
    """
    if statistic not in ("mean", "max"):
        raise ValueError(f"statistic must be 'mean' or 'max', got {statistic!r}")
    masks = np.asarray(masks)
    single = masks.ndim == 2
    stack = masks[None] if single else masks
    if stack.ndim != 3:
        raise ValueError(f"masks must be (H, W) or (C, H, W), got shape {masks.shape}")
    source = _celestial(gz3d_wcs)
    if cube_wcs is None:
        if center is None or shape is None:
            raise ValueError("give cube_wcs, or center=(ra, dec) and shape=(ny, nx)")
        target = manga_cube_wcs(center[0], center[1], shape, scale)
    else:
        target = _celestial(cube_wcs)
    if shape is None:
        if target.pixel_shape is None:
            raise ValueError("the cube WCS has no NAXIS1/NAXIS2: pass shape=(ny, nx)")
        shape = (int(target.pixel_shape[1]), int(target.pixel_shape[0]))
    ny, nx = shape

    offsets = (np.arange(oversample) + 0.5) / oversample - 0.5
    sub_x = (np.arange(nx)[:, None] + offsets).ravel()
    sub_y = (np.arange(ny)[:, None] + offsets).ravel()
    grid_x, grid_y = np.meshgrid(sub_x, sub_y)
    ra, dec = target.all_pix2world(grid_x, grid_y, 0)
    px, py = source.all_world2pix(ra, dec, 0)
    h, w = stack.shape[1:]
    ix, iy = np.rint(px), np.rint(py)
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    ix = np.where(inside, ix, 0).astype(np.intp)
    iy = np.where(inside, iy, 0).astype(np.intp)

    samples = stack[:, iy, ix].astype(np.float64)
    samples[:, ~inside] = np.nan
    samples = samples.reshape(len(stack), ny, oversample, nx, oversample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN spaxels -> NaN, on purpose
        reduce = np.nanmean if statistic == "mean" else np.nanmax
        out = reduce(samples, axis=(2, 4))
    return out[0] if single else out


def _celestial(wcs_or_header: WCS | fits.Header) -> WCS:
    w = wcs_or_header if isinstance(wcs_or_header, WCS) else WCS(wcs_or_header)
    if not w.has_celestial:
        raise ValueError("the WCS has no celestial (RA/Dec) axes")
    return w.celestial
