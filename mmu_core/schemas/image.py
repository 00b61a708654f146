"""Multiband images: one stamp per band with its metadata.

Stored columns (docs/format.md): ``image_array`` (N,B,H,W) float32, ``image_ivar`` (N,B,H,W),
``image_mask`` (N,B,H,W) bool (True = good pixel, as MMU v1), ``image_band`` (N,B) strings,
``image_psf_fwhm`` (N,B) arcsec, ``image_scale`` (N,B) arcsec/pixel; optional
``image_extinction`` (N,B) mag and ``image_units`` (N,B).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from mmu_core.schemas.common import Array, CommonFields, decode
from mmu_core.schemas.plotting import (
    MASKED_COLOR,
    SkyAxes,
    celestial_wcs,
    composite,
    composite_channels,
    label_with_unit,
    pixel_scale,
    unit_of,
)
from mmu_core.schemas.spec import ModalitySpec

PREFIX = "image_"
REQUIRED = ("array",)  # suffixes after the prefix; the rest may be absent (MMU v1 folders)
PER_BAND = ("psf_fwhm", "scale", "extinction", "units", "noise_std")


class ImageBand(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="allow")
    array: Array
    ivar: Array | None = None
    mask: Array | None = None
    filter: str | None = None
    psf_fwhm: float | None = None
    pixel_size: float | None = None
    extinction: float | None = None
    units: str | None = None

    @model_validator(mode="after")
    def _shapes(self) -> ImageBand:
        if self.array.ndim != 2:
            raise ValueError(f"image array must be 2-D, got shape {self.array.shape}")
        for name in ("ivar", "mask"):
            other = getattr(self, name)
            if other is not None and other.shape != self.array.shape:
                raise ValueError(
                    f"image {name} shape {other.shape} differs from array shape {self.array.shape}"
                )
        return self


class ImageExample(CommonFields):
    image: list[ImageBand]

    @model_validator(mode="after")
    def _bands_same_shape(self) -> ImageExample:
        shapes = {b.filter: b.array.shape for b in self.image}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"image arrays of all bands must have the same shape, got {shapes}")
        return self


def example_from_row(row: dict[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    """The ``image`` list (one record per band, docs/examples.md) from one stored row's
    ``image_*`` columns."""
    arr = row[prefix + "array"]
    bands = []
    for b in range(arr.shape[0]):
        band: dict[str, Any] = {"array": arr[b]}
        if prefix + "band" in row:
            band["filter"] = decode(row[prefix + "band"][b])
        for key in ("ivar", "mask"):
            if prefix + key in row:
                band[key] = row[prefix + key][b]
        if prefix + "psf_fwhm" in row:
            band["psf_fwhm"] = float(row[prefix + "psf_fwhm"][b])
        if prefix + "scale" in row:
            band["pixel_size"] = float(row[prefix + "scale"][b])
        if prefix + "extinction" in row:
            band["extinction"] = float(row[prefix + "extinction"][b])
        if prefix + "units" in row:
            band["units"] = decode(row[prefix + "units"][b])
        bands.append(band)
    return {"image": bands}


def example_columns(block: dict[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    """The ``image`` field of a block of stored rows, as :func:`features` describes it: one
    record per band (the (n, B, ...) columns themselves; the HF planes are their (H, W) planes
    flattened) with the band's ``shape`` (H, W)."""
    arr = block[prefix + "array"]
    n, b, h, w = arr.shape
    band: dict[str, Any] = {"array": arr,
                            "shape": np.broadcast_to(np.array([h, w], np.int64), (n, b, 2))}
    if prefix + "band" in block:
        band["filter"] = block[prefix + "band"]
    for key in ("ivar", "mask"):
        if prefix + key in block:
            band[key] = block[prefix + key]
    for key, name in (("psf_fwhm", "psf_fwhm"), ("scale", "pixel_size"),
                      ("extinction", "extinction"), ("units", "units")):
        if prefix + key in block:
            band[name] = block[prefix + key]
    return {"image": band}


def check_columns(shapes: dict[str, tuple], prefix: str = PREFIX) -> list[str]:
    """Problems with the stored image columns' per-row shapes (empty list: fine)."""
    problems = [f"missing column {prefix}{c}" for c in REQUIRED if prefix + c not in shapes]
    if problems:
        return problems
    arr = shapes[prefix + "array"]
    if len(arr) != 3:
        return [f"{prefix}array rows must be (B, H, W), got {arr}"]
    for key in ("ivar", "mask"):
        if prefix + key in shapes and shapes[prefix + key] != arr:
            problems.append(f"{prefix}{key} rows {shapes[prefix + key]} differ from {prefix}array {arr}")
    for key in ("band",) + PER_BAND:
        if prefix + key in shapes and shapes[prefix + key][:1] != arr[:1]:
            problems.append(f"{prefix}{key} rows {shapes[prefix + key]} must have one value per band ({arr[0]})")
    return problems


def features(specs: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """HuggingFace features of the image bands (:func:`example_columns`).

    The (H, W) planes are fixed-length lists of H * W values (row-major) and each band carries
    its ``shape``: datasets' numpy and torch formatters turn a 2-D array nested in a list of
    bands into one Python object per pixel row (20-30x slower than the files for 160 x 160
    stamps), a flat plane into one.
    """
    from datasets import List, Value

    from mmu_core.schemas.features import list_feature

    arr = specs[PREFIX + "array"]
    _, h, w = arr.shape
    band: dict[str, Any] = {"array": list_feature(arr, h * w)}
    if PREFIX + "band" in specs:
        band["filter"] = Value("string")
    for key in ("ivar", "mask"):
        if PREFIX + key in specs:
            band[key] = list_feature(specs[PREFIX + key], h * w)
    for key, name in (("psf_fwhm", "psf_fwhm"), ("scale", "pixel_size"),
                      ("extinction", "extinction")):
        if PREFIX + key in specs:
            band[name] = Value("float64")
    if PREFIX + "units" in specs:
        band["units"] = Value("string")
    band["shape"] = List(Value("int64"), length=2)
    return {"image": List(band, length=arr.shape[0])}


def preview(fig: Any, i: int, nrows: int, ncols: int, row: dict[str, Any], title: str,
            units: dict[str, str] | None = None) -> None:
    """A colour composite naming its bands, then one panel per band with a colour bar in the
    band's unit (``units``: the dataset's recorded column units, else ``image_units``).

    Panels are on the sky (RA/Dec with a ``wcs_*`` WCS in the row, else arcsec offsets at the
    pixel scale ``image_scale``); masked pixels (``image_mask`` False) are drawn in blue and
    a legend says so.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    arr = row[PREFIX + "array"]
    n_bands, shape = len(arr), arr.shape[1:]
    names = [decode(b) for b in row.get(PREFIX + "band", [f"band {k}" for k in range(n_bands)])]
    scale = pixel_scale(row, PREFIX + "scale")
    wcs = celestial_wcs(row)
    pick = composite_channels(n_bands, display=arr.dtype == np.uint8)
    sky = SkyAxes(fig, (nrows, ncols, i * ncols + 1), shape, scale, wcs)
    mask = row.get(PREFIX + "mask")
    rgb = composite(arr, pick, mask)
    if mask is not None and arr.dtype != np.uint8:
        from matplotlib.colors import to_rgb

        rgb[~np.all([np.asarray(mask[j], bool) for j in pick], axis=0)] = to_rgb(MASKED_COLOR)
    sky.show(rgb)
    sky.ax.set_title("composite\n" + ", ".join(f"{c} = {names[j]}" for c, j in zip("RGB", pick, strict=True)))
    fwhm = row.get(PREFIX + "psf_fwhm")
    stored = row.get(PREFIX + "units")
    shown = min(n_bands, ncols - 1)
    masked = 0
    cmap = plt.get_cmap("gray").with_extremes(bad=MASKED_COLOR)
    for k in range(shown):
        panel = SkyAxes(fig, (nrows, ncols, i * ncols + 2 + k), shape, scale, wcs, label_y=False)
        band = arr[k].astype(float)
        bad = ~np.isfinite(band)
        if mask is not None:
            bad |= ~np.asarray(mask[k], dtype=bool)
        masked += int(bad.sum())
        band = np.where(bad, np.nan, band)
        lo, hi = np.nanpercentile(band, [1, 99.5]) if (~bad).any() else (0.0, 1.0)
        im = panel.show(band, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1)
        unit = unit_of(PREFIX + "array", units, stored[k] if stored is not None else None)
        fig.colorbar(im, ax=panel.ax, label=label_with_unit("flux", unit), shrink=0.7)
        panel.ax.set_title(names[k] + (f"\nPSF FWHM {float(fwhm[k]):.2f}″" if fwhm is not None
                                       else ""))
    notes = [] if shown == n_bands else [f"{shown} of {n_bands} bands shown"]
    if mask is not None or masked:
        total = shown * shape[0] * shape[1]
        label = (f"masked pixels ({'image_mask False' if mask is not None else 'not finite'}): "
                 f"{masked:,} of {total:,} ({masked / max(total, 1):.0%})")
        fig.legend(handles=[Patch(facecolor=MASKED_COLOR, label=label)],
                   loc="outside lower right", fontsize=9, title=" · ".join(notes) or None)
    elif notes:
        fig.text(0.99, 0.01, notes[0], ha="right", va="bottom", fontsize=9)


SPEC = ModalitySpec(
    name="image", prefix=PREFIX, description="multiband images, one stamp per band",
    example_model=ImageExample, check_columns=check_columns, example_from_row=example_from_row,
    features=features, preview=preview, marker_columns=(), priority=0,
    example_columns=example_columns,
    known_columns=("array", "ivar", "mask", "band", "psf_fwhm", "scale", "extinction", "units"),
)
