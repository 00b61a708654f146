"""Drawing helpers the modalities' previews share. Each ``preview`` (and these helpers)
imports matplotlib and astropy inside the function, and :mod:`mmu_core.previews` chooses the
backend and the figure's layout.

Conventions every preview follows, so that a figure can be shown as it is:

- images are drawn on the sky: with RA/Dec axes when the row carries a celestial WCS
  (``wcs_*`` columns, :func:`celestial_wcs`), otherwise in arcsec offsets from the stamp's
  central pixel, the pixel scale named in the axis label;
- every image has a colour bar naming its quantity and unit, every plotted flux its unit
  (:func:`unit_of`), wavelengths are in Å and times in MJD;
- masked or padded pixels are said so in a legend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmu_core.schemas.common import decode

UNKNOWN_UNIT = "unit not recorded"
MASKED_COLOR = "tab:blue"  # masked image pixels
WCS_KEYS = ("wcs_ctype1", "wcs_ctype2", "wcs_crval1", "wcs_crval2", "wcs_crpix1", "wcs_crpix2",
            "wcs_cd")


def composite_channels(n_bands: int, display: bool = False) -> list[int]:
    """The bands a colour composite puts in red, green and blue.

    Display channels (uint8 images, already an RGB picture) are taken as they are; calibrated
    bands ordered blue to red give the third, second and first (i, r, g of g r i z y; z, r, g
    of g r z), so the reddest of the three is red.
    """
    if display:
        return [min(k, n_bands - 1) for k in range(3)]
    return [min(2, n_bands - 1), min(1, n_bands - 1), 0]


def composite(bands: np.ndarray, channels: list[int] | None = None,
              mask: np.ndarray | None = None) -> np.ndarray:
    """(B, H, W) -> (H, W, 3) in [0, 1] (uint8 display channels as they are); ``channels``:
    the bands in red, green, blue (default :func:`composite_channels`); ``mask`` (B, H, W),
    True = good: other pixels are black.

    Each band is measured in units of its own background noise (median and MAD-based sigma)
    so sky noise sits near black in every colour, and the three share one asinh stretch up to
    the 99.5th percentile of the pixels above the noise, which keeps the colours of sources.
    """
    display = bands.dtype == np.uint8
    pick = channels if channels is not None else composite_channels(len(bands), display)
    if display:
        return np.stack([bands[j] for j in pick], axis=-1)
    planes = []
    for j in pick:
        band = np.asarray(bands[j], dtype=float)
        good = np.isfinite(band) if mask is None else np.isfinite(band) & np.asarray(mask[j], bool)
        if not good.any():
            planes.append(np.zeros(band.shape))
            continue
        med = float(np.median(band[good]))
        sigma = 1.4826 * float(np.median(np.abs(band[good] - med))) or float(np.std(band[good])) or 1.0
        planes.append(np.where(good, np.clip((band - med) / sigma - 1.0, 0, None), 0.0))
    x = np.stack(planes, axis=-1)
    lit = x[x > 0]
    hi = float(np.percentile(lit, 99.5)) if lit.size else 1.0
    soft = 2.0  # sigma: linear below, logarithmic above
    return np.clip(np.arcsinh(x / soft) / np.arcsinh(max(hi, soft) / soft), 0, 1)


def sigma_from_ivar(ivar: np.ndarray) -> np.ndarray:
    """1-sigma errors from inverse variances; NaN where the ivar is 0 (no information)."""
    return np.where(ivar > 0, 1 / np.sqrt(np.where(ivar > 0, ivar, 1)), np.nan)


def smoothed(flux: np.ndarray, weight: np.ndarray, width: int = 15) -> np.ndarray:
    """Inverse-variance weighted running mean, so features show through the noise."""
    kernel = np.ones(width)
    w = np.convolve(weight, kernel, mode="same")
    fw = np.convolve(np.where(weight > 0, flux * weight, 0.0), kernel, mode="same")
    return np.where(w > 0, fw / np.where(w > 0, w, 1), np.nan)


def unit_of(column: str, units: dict[str, str] | None, stored: Any = None,
            default: str | None = None) -> str:
    """The unit to print for ``column``: the dataset's column metadata (``units``, what
    :mod:`mmu_core.previews` found recorded for the dataset), else a unit stored in the row
    (``stored``: e.g. ``image_units[b]``), else the modality's documented ``default``, else
    :data:`UNKNOWN_UNIT`."""
    for value in ((units or {}).get(column), stored, default):
        text = decode(value) if value is not None else ""
        if text and str(text).strip():
            return readable_unit(str(text).strip())
    return UNKNOWN_UNIT


def readable_unit(text: str) -> str:
    """A unit as astropy spells it (``1e-17 erg / (s cm2 Angstrom)``) in print
    (``10⁻¹⁷ erg Å⁻¹ s⁻¹ cm⁻²``); text astropy does not parse is shown as it is."""
    try:
        from astropy import units as u

        shown = u.Unit(text).to_string("unicode")
    except (ValueError, TypeError):
        return text
    return shown[2:] if shown.startswith("1×10") else shown


def label_with_unit(quantity: str, unit: str) -> str:
    return f"{quantity} [{unit}]"


def celestial_wcs(row: dict[str, Any]) -> Any:
    """An astropy WCS from a row's ``wcs_ctype1/2``, ``wcs_crval1/2``, ``wcs_crpix1/2`` (FITS,
    1-based) and ``wcs_cd`` (2 x 2, degrees per pixel) columns; ``None`` when the row has
    none or they do not describe RA/Dec."""
    if not all(k in row for k in WCS_KEYS):
        return None
    from astropy.wcs import WCS

    ctype = [decode(row["wcs_ctype1"]).strip(), decode(row["wcs_ctype2"]).strip()]
    if not (ctype[0].startswith("RA") and ctype[1].startswith("DEC")):
        return None
    cd = np.asarray(row["wcs_cd"], dtype=float).reshape(2, 2)
    if not np.all(np.isfinite(cd)) or abs(np.linalg.det(cd)) == 0:
        return None
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ctype
    wcs.wcs.crval = [float(row["wcs_crval1"]), float(row["wcs_crval2"])]
    wcs.wcs.crpix = [float(row["wcs_crpix1"]), float(row["wcs_crpix2"])]
    wcs.wcs.cd = cd
    return wcs


def pixel_scale(row: dict[str, Any], key: str) -> float | None:
    """The first positive, finite value of a row's per-band arcsec-per-pixel column (or
    scalar), ``None`` when there is none."""
    if key not in row:
        return None
    values = np.atleast_1d(np.asarray(row[key], dtype=float))
    good = values[np.isfinite(values) & (values > 0)]
    return float(good[0]) if good.size else None


class SkyAxes:
    """An image panel placed on the sky: :meth:`show` draws an (H, W[, 3]) array with
    ``origin="lower"`` (array row 0 at the bottom).

    With a WCS the axes are astropy ``WCSAxes`` with RA/Dec ticks, turned so north is up and
    east left; without one, arcsec offsets from the central pixel (``W // 2``, ``H // 2``,
    where stamps put their object) if the pixel scale is known, pixel numbers otherwise.
    """

    def __init__(self, fig: Any, position: tuple[int, int, int] | Any, shape: tuple[int, int],
                 scale: float | None = None, wcs: Any = None, label_y: bool = True):
        self.shape = (int(shape[0]), int(shape[1]))
        self.scale = scale
        self.wcs = wcs
        h, w = self.shape
        args = position if isinstance(position, tuple) else (position,)
        if wcs is not None:
            self.ax = fig.add_subplot(*args, projection=wcs)
            self.extent = None
            ra, dec = self.ax.coords[0], self.ax.coords[1]
            ra.set_axislabel("RA")
            dec.set_axislabel("Dec" if label_y else "")
            ra.set_major_formatter("hh:mm:ss")
            dec.set_major_formatter("dd:mm:ss")
            ra.set_ticks(number=3)
            dec.set_ticks(number=4)
        else:
            self.ax = fig.add_subplot(*args)
            if scale:
                cx, cy = w // 2, h // 2
                self.extent = ((-0.5 - cx) * scale, (w - 0.5 - cx) * scale,
                               (-0.5 - cy) * scale, (h - 0.5 - cy) * scale)
                self.ax.set_xlabel(f"Δx [arcsec] ({scale:.3g}″/pixel)")
                if label_y:
                    self.ax.set_ylabel("Δy [arcsec]")
            else:
                self.extent = None
                self.ax.set_xlabel("x [pixel]")
                if label_y:
                    self.ax.set_ylabel("y [pixel]")

    def show(self, image: np.ndarray, **kwargs: Any) -> Any:
        im = self.ax.imshow(image, origin="lower", extent=self.extent, **kwargs)
        if self.wcs is not None:
            self._north_up()
        return im

    def to_axes(self, x: float, y: float) -> tuple[float, float]:
        """Array indices (x = column, y = row) -> the panel's data coordinates."""
        if self.extent is None:
            return float(x), float(y)
        h, w = self.shape
        return (float((x - w // 2) * self.scale), float((y - h // 2) * self.scale))

    def contour(self, mask: np.ndarray, **kwargs: Any) -> Any:
        if self.extent is None:
            return self.ax.contour(mask, **kwargs)
        return self.ax.contour(mask, extent=self.extent, origin="lower", **kwargs)

    def _north_up(self) -> None:
        h, w = self.shape
        cx, cy = (w - 1) / 2, (h - 1) / 2
        (ra0, dec0), (ra_x, _), (_, dec_y) = self.wcs.wcs_pix2world(
            [[cx, cy], [cx + 1, cy], [cx, cy + 1]], 0)
        if dec_y < dec0:  # north is down: turn the y axis
            self.ax.set_ylim(h - 0.5, -0.5)
        east_right = ((ra_x - ra0 + 180) % 360 - 180) > 0
        if east_right:
            self.ax.set_xlim(w - 0.5, -0.5)
