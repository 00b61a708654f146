"""Opening HSC coadd ``calexp`` files and cutting stamps from them.

A calexp holds HDU 1 IMAGE (float32, zero point 27 AB), HDU 2 MASK (int32 bit planes named
by ``MP_*`` header keywords) and HDU 3 VARIANCE (float32), with a TAN WCS in HDU 1's header.
Files are memory-mapped: a stamp reads only its own pixels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from mmu_core.errors import InputError
from mmu_core.fits import fits_errors, open_fits, pixel_positions
from mmu_hsc.datamodel import BAD_PLANES, MASK_PLANES

_PLANES = (("IMAGE", 1), ("MASK", 2), ("VARIANCE", 3))
WHAT = "HSC calexp"


@dataclass
class Calexp:
    """One band of one patch, memory-mapped; close it when done."""

    path: Path
    image: np.ndarray
    mask: np.ndarray
    variance: np.ndarray
    wcs: WCS
    bad_bits: int  # OR of the bits that make a pixel bad
    scale: float  # arcsec per pixel, from the WCS
    hdul: fits.HDUList

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape

    def close(self) -> None:
        self.hdul.close()

    def pixel_positions(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel coordinates (x, y) of sky positions, NaN where not computable."""
        return pixel_positions(self.wcs, ra, dec)


def _hdu(hdul: fits.HDUList, name: str, index: int) -> fits.ImageHDU:
    for hdu in hdul:
        if hdu.name == name:
            return hdu
    return hdul[index]


def _bad_bits(header: fits.Header) -> int:
    bits = 0
    for plane in BAD_PLANES:
        # The header names the bit of each plane; fall back to the HSC numbering.
        bit = header.get(f"MP_{plane}", MASK_PLANES[plane])
        bits |= 1 << int(bit)
    return bits


def open_calexp(path: Path) -> Calexp:
    """Open a calexp memory-mapped and check its planes and WCS.

    :raises InputError: naming the file, when it is unreadable, truncated, lacks a plane or
        a celestial WCS, or its planes differ in shape.
    """
    path = Path(path)
    hdul = open_fits(path, WHAT, memmap=True)
    try:
        # astropy raises many types for bad files (and the WCS its own): any is bad input
        with fits_errors(path, WHAT, errors=(Exception,)), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            planes = {}
            for name, index in _PLANES:
                hdu = _hdu(hdul, name, index)
                data = hdu.data
                if data is None or data.ndim != 2:
                    raise InputError(f"HDU {name} is not a 2-D image", file=path)
                planes[name] = (hdu, data)
            header = planes["IMAGE"][0].header
            wcs = WCS(header, naxis=2)
            if not wcs.has_celestial:
                raise InputError("IMAGE header has no celestial WCS", file=path)
            scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600.0)
            shapes = {name: data.shape for name, (_, data) in planes.items()}
            if len(set(shapes.values())) != 1:
                raise InputError(f"IMAGE, MASK and VARIANCE shapes differ: {shapes}", file=path)
            if planes["MASK"][1].dtype.kind not in "iu":
                raise InputError(f"MASK plane is {planes['MASK'][1].dtype}, not integer",
                                 file=path)
            # Touch the last pixel of each plane: a truncated file fails here, not mid-build.
            for _, data in planes.values():
                data[-1, -1]
            bad_bits = _bad_bits(planes["MASK"][0].header)
    except BaseException:
        hdul.close()
        raise
    return Calexp(
        path=path,
        image=planes["IMAGE"][1],
        mask=planes["MASK"][1],
        variance=planes["VARIANCE"][1],
        wcs=wcs,
        bad_bits=bad_bits,
        scale=scale,
        hdul=hdul,
    )


def stamp_slices(
    x: float, y: float, size: int, shape: tuple[int, int]
) -> tuple[slice, slice, slice, slice] | None:
    """Where a ``size`` x ``size`` stamp centred on pixel (x, y) meets an image.

    The pixel nearest to (x, y) lands on stamp index ``size // 2`` on both axes, so the
    object is within half a pixel of the stamp centre pixel; near the image edge the stamp
    keeps that centre and only the overlapping part is filled (never shifted).

    :returns: ``(stamp_y, stamp_x, image_y, image_x)`` slices, or None without overlap.
    """
    height, width = shape
    x0 = int(np.floor(x + 0.5)) - size // 2
    y0 = int(np.floor(y + 0.5)) - size // 2
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + size, width), min(y0 + size, height)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    return (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0),
            slice(iy0, iy1), slice(ix0, ix1))


def centre_inside(x: float, y: float, shape: tuple[int, int]) -> bool:
    """Is the pixel nearest to (x, y) inside an image of this shape?"""
    if not (np.isfinite(x) and np.isfinite(y)):
        return False
    px, py = np.floor(x + 0.5), np.floor(y + 0.5)
    return bool(0 <= px < shape[1] and 0 <= py < shape[0])
