"""Opening a brick's fpack-compressed coadd images and cutting stamps from them.

Each coadd file holds one image in HDU 1, a tile-compressed image HDU (fpack); astropy reads
a region through the HDU's ``section``, decompressing only the tiles it touches, so a stamp
costs its own tiles and a damaged tile is met by the stamps that use it, which are then named.
Stamps follow astropy's ``Cutout2D`` in ``mode='partial'``: the same
:func:`astropy.nddata.utils.overlap_slices`, pixels outside the image given a fill value.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata.utils import NoOverlapError, overlap_slices
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from mmu_core.errors import InputError
from mmu_core.fits import fits_errors, get_hdu, open_fits, pixel_positions
from mmu_legacysurvey.tractor import maskbit_numbers

KIND_WHAT = {"image": "coadd image", "invvar": "coadd inverse variance",
             "maskbits": "coadd maskbits"}


@dataclass
class Plane:
    """One coadd file of a brick, opened lazily; close it when done."""

    path: Path
    kind: str  # image, invvar or maskbits
    band: str | None
    hdu: fits.ImageHDU | fits.CompImageHDU
    shape: tuple[int, int]
    wcs: WCS
    scale: float  # arcsec per pixel, from the WCS
    unit: str | None  # BUNIT
    maskbits: dict[str, int]  # bit numbers (maskbits files)
    hdul: fits.HDUList

    @property
    def what(self) -> str:
        return KIND_WHAT[self.kind] + (f" ({self.band})" if self.band else "")

    def close(self) -> None:
        self.hdul.close()

    def pixel_positions(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel coordinates (x, y) of sky positions, NaN where not computable."""
        return pixel_positions(self.wcs, ra, dec)

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """Pixels ``[rows, cols]`` (decompressing only the tiles they touch); raises whatever
        astropy raises on a damaged tile."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.hdu.section[rows, cols])


def open_plane(path: Path, kind: str, band: str | None, brick: str) -> Plane:
    """Open one coadd file and check its image and WCS.

    :raises InputError: naming the file, when it cannot be opened, has no 2-D image in HDU 1,
        or no celestial WCS.
    """
    path = Path(path)
    what = KIND_WHAT[kind]
    hdul = open_fits(path, what)
    try:
        hdu = get_hdu(hdul, 1, path, what)
        with fits_errors(path, what, hdu=1, errors=(Exception,)), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not isinstance(hdu, fits.ImageHDU | fits.CompImageHDU):
                raise InputError(f"HDU 1 is a {type(hdu).__name__}, not a (compressed) image",
                                 file=str(path))
            header = hdu.header
            shape = tuple(int(s) for s in hdu.shape)
            if len(shape) != 2:
                raise InputError(f"HDU 1 image has shape {shape}, expected 2-D", file=str(path))
            wcs = WCS(header, naxis=2)
            if not wcs.has_celestial:
                raise InputError("HDU 1 header has no celestial WCS", file=str(path))
            scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600.0)
            unit = header.get("BUNIT")
            bits = maskbit_numbers(header, hdul[0].header) if kind == "maskbits" else {}
            if kind == "maskbits" and hdu.header.get("BITPIX", 32) not in (8, 16, 32, 64):
                raise InputError(f"maskbits image has BITPIX {hdu.header['BITPIX']}, expected "
                                 "integers", file=str(path))
    except BaseException:
        hdul.close()
        raise
    return Plane(path=path, kind=kind, band=band, hdu=hdu, shape=shape, wcs=wcs, scale=scale,
                 unit=str(unit).strip() if unit is not None else None, maskbits=bits,
                 hdul=hdul)


def stamp_slices(x: float, y: float, size: int,
                 shape: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Where a ``size`` x ``size`` stamp centred on pixel (x, y) meets an image, as astropy's
    ``Cutout2D(..., mode='partial')`` places it: ``(image slices, stamp slices)``, both in
    (row, column) order; None without overlap."""
    try:
        return overlap_slices(shape, (size, size), (y, x), mode="partial")
    except NoOverlapError:
        return None


def centre_inside(x: float, y: float, shape: tuple[int, int]) -> bool:
    """Is the pixel nearest (x, y) inside an image of this shape?"""
    if not (np.isfinite(x) and np.isfinite(y)):
        return False
    px, py = np.floor(x + 0.5), np.floor(y + 0.5)
    return bool(0 <= px < shape[1] and 0 <= py < shape[0])


def cut_stamps(plane: Plane, where: list, out: np.ndarray) -> dict[int, str]:
    """Fill ``out[j]`` (pre-filled with the outside value) with the stamp ``where[j]`` of
    :func:`stamp_slices` for every j, reading one region of the plane for all of them.

    :returns: ``{j: error}`` for the stamps whose pixels could not be read (a damaged tile):
        when the region read fails, each stamp is read alone to find which.
    """
    inside = [j for j, w in enumerate(where) if w is not None]
    if not inside:
        return {}
    r0 = min(where[j][0][0].start for j in inside)
    r1 = max(where[j][0][0].stop for j in inside)
    c0 = min(where[j][0][1].start for j in inside)
    c1 = max(where[j][0][1].stop for j in inside)
    try:
        region = plane.read(slice(r0, r1), slice(c0, c1))
    except Exception:  # noqa: BLE001 - any decompression failure: locate it stamp by stamp
        region = None
    failed: dict[int, str] = {}
    for j in inside:
        (ry, rx), (sy, sx) = where[j]
        if region is not None:
            out[j][sy, sx] = region[ry.start - r0:ry.stop - r0, rx.start - c0:rx.stop - c0]
            continue
        try:
            out[j][sy, sx] = plane.read(ry, rx)
        except Exception as exc:  # noqa: BLE001 - astropy raises its own types here
            failed[j] = (f"damaged compressed tile in pixels y {ry.start}:{ry.stop}, "
                         f"x {rx.start}:{rx.stop}: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())}")
    return failed

