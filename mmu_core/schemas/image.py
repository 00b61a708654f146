"""Multiband images: one stamp per band with its metadata.

Stored columns (FORMATS.md §1): ``image_array`` (N,B,H,W) float32, ``image_ivar`` (N,B,H,W),
``image_mask`` (N,B,H,W) bool (True = good pixel, as MMU v1), ``image_band`` (N,B) strings,
``image_psf_fwhm`` (N,B) arcsec, ``image_scale`` (N,B) arcsec/pixel; optional
``image_extinction`` (N,B) mag and ``image_units`` (N,B).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from mmu_core.schemas.common import Array, CommonFields, decode

PREFIX = "image_"
REQUIRED = ("array", "band", "scale")  # suffixes after the prefix
PER_BAND = ("psf_fwhm", "scale", "extinction", "units", "noise_std")


class ImageBand(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="allow")
    array: Array
    ivar: Array | None = None
    mask: Array | None = None
    filter: str
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
    """The design doc's ``image`` list from one stored row's ``image_*`` columns."""
    arr = row[prefix + "array"]
    bands = []
    for b in range(arr.shape[0]):
        band: dict[str, Any] = {"array": arr[b], "filter": decode(row[prefix + "band"][b])}
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
