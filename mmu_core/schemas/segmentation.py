"""Segmentation maps on the grid of the source image they were drawn on.

Stored columns (docs/format.md): ``segmentation_array`` (N,C,H,W) (counts or labels, any
numeric dtype), ``segmentation_class`` (N,C) names, ``segmentation_vote_fraction`` (N,C)
float32 (−1 where not defined), and the source image in ``image_array`` (N,B,H,W) with
``image_scale``. The masks' H, W must equal the source image's (masks are mapped back onto
the survey image they were drawn on).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from mmu_core.schemas.common import Array, CommonFields, decode
from mmu_core.schemas.plotting import (
    SkyAxes,
    celestial_wcs,
    composite,
    composite_channels,
    pixel_scale,
)
from mmu_core.schemas.spec import ModalitySpec

PREFIX = "segmentation_"
REQUIRED = ("array", "class")


class Segmentation(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)
    class_: list[str]
    vote_fraction: Array | None = None
    array: Array

    @model_validator(mode="before")
    @classmethod
    def _class_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "class" in data:
            data = {**data, "class_": data["class"]}
            data.pop("class")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Segmentation:
        if self.array.ndim != 3:
            raise ValueError(f"segmentation array must be (n_classes, H, W), got {self.array.shape}")
        if self.array.shape[0] != len(self.class_):
            raise ValueError(
                f"segmentation array has {self.array.shape[0]} classes but class names are "
                f"{self.class_}"
            )
        if self.vote_fraction is not None and len(self.vote_fraction) != len(self.class_):
            raise ValueError("segmentation vote_fraction must have one value per class")
        return self


class SegmentationExample(CommonFields):
    image: Array
    segmentation: Segmentation

    @model_validator(mode="after")
    def _matches_image(self) -> SegmentationExample:
        h, w = self.image.shape[:2]
        if self.segmentation.array.shape[1:] != (h, w):
            raise ValueError(
                f"segmentation array (H, W) {self.segmentation.array.shape[1:]} must match its "
                f"source image's {(h, w)}"
            )
        return self


def example_from_row(row: dict[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    seg: dict[str, Any] = {
        "class": [decode(c) for c in row[prefix + "class"]],
        "array": row[prefix + "array"],
    }
    if prefix + "vote_fraction" in row:
        seg["vote_fraction"] = row[prefix + "vote_fraction"]
    out: dict[str, Any] = {"segmentation": seg}
    if "image_array" in row:
        out["image"] = np.moveaxis(row["image_array"], 0, -1)  # (B,H,W) -> (H,W,B)
    return out


def example_columns(block: dict[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    """:func:`example_from_row` for a block of rows at once (each array with the rows first)."""
    seg: dict[str, Any] = {"class": block[prefix + "class"], "array": block[prefix + "array"]}
    if prefix + "vote_fraction" in block:
        seg["vote_fraction"] = block[prefix + "vote_fraction"]
    out: dict[str, Any] = {"segmentation": seg}
    if "image_array" in block:
        out["image"] = np.moveaxis(block["image_array"], 1, -1)  # (n,B,H,W) -> (n,H,W,B)
    return out


def check_columns(shapes: dict[str, tuple], prefix: str = PREFIX) -> list[str]:
    problems = [f"missing column {prefix}{c}" for c in REQUIRED if prefix + c not in shapes]
    if "image_array" not in shapes:
        problems.append("missing column image_array (the source image of the masks)")
    if problems:
        return problems
    seg, img = shapes[prefix + "array"], shapes["image_array"]
    if len(seg) != 3 or seg[1:] != img[-2:]:
        problems.append(
            f"{prefix}array rows {seg} must be (C, H, W) with H, W equal to image_array's {img[-2:]}"
        )
    if shapes[prefix + "class"][:1] != seg[:1]:
        problems.append(f"{prefix}class must name each of the {seg[0]} classes")
    return problems


def features(specs: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """HuggingFace features of :func:`example_from_row`'s output for these columns."""
    from datasets import List, Value

    from mmu_core.schemas.features import array_feature, list_feature

    seg_arr = specs[PREFIX + "array"]
    seg: dict[str, Any] = {
        "class": List(Value("string"), length=seg_arr.shape[0]),
        "array": array_feature(seg_arr, tuple(seg_arr.shape)),
    }
    if PREFIX + "vote_fraction" in specs:
        seg["vote_fraction"] = list_feature(specs[PREFIX + "vote_fraction"], seg_arr.shape[0])
    out: dict[str, Any] = {"segmentation": seg}
    if "image_array" in specs:
        b, h, w = specs["image_array"].shape
        out["image"] = array_feature(specs["image_array"], (h, w, b))
    return out


def preview(fig: Any, i: int, nrows: int, ncols: int, row: dict[str, Any], title: str,
            units: dict[str, str] | None = None) -> None:
    """The source image with each class's mask outlined (legend of the classes), then one
    panel per class with a colour bar of its values: votes per pixel when the masks carry
    vote fractions (volunteer votes, as GZ3D's), else the mask value. All panels on the sky
    (RA/Dec through the row's ``wcs_*`` WCS, else arcsec offsets at ``image_scale``)."""
    from matplotlib.lines import Line2D

    from mmu_core.schemas.image import PREFIX as IMAGE

    image = row["image_array"]
    masks = row[PREFIX + "array"]
    classes = [decode(c) for c in row[PREFIX + "class"]]
    vf = row.get(PREFIX + "vote_fraction")
    scale = pixel_scale(row, IMAGE + "scale")
    wcs = celestial_wcs(row)
    shape = masks.shape[1:]
    sky = SkyAxes(fig, (nrows, ncols, i * ncols + 1), shape, scale, wcs)
    pick = composite_channels(len(image), display=image.dtype == np.uint8)
    sky.show(composite(image, pick))
    colors = ["yellow", "cyan", "magenta", "lime", "orange", "red", "white"]
    handles = []
    for c, name in enumerate(classes):
        color = colors[c % len(colors)]
        if np.any(masks[c] > 0):
            sky.contour(masks[c] > 0, levels=[0.5], colors=color, linewidths=0.9)
        handles.append(Line2D([], [], color=color, lw=1.5,
                              label=name if np.any(masks[c] > 0) else f"{name} (none)"))
    sky.ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.7,
                  title="mask > 0", title_fontsize=8)
    bands = [decode(b) for b in row.get(IMAGE + "band", [])]
    sky.ax.set_title("masks over the source image" + (f"\n({', '.join(bands)})" if bands else ""))
    votes = vf is not None and np.issubdtype(masks.dtype, np.integer)
    quantity = "votes per pixel" if votes else "mask value"
    for c, name in enumerate(classes[: ncols - 1]):
        panel = SkyAxes(fig, (nrows, ncols, i * ncols + 2 + c), shape, scale, wcs, label_y=False)
        values = np.asarray(masks[c])
        top = float(values.max()) if values.size else 0.0
        im = panel.show(values, cmap="viridis", vmin=0, vmax=top if top > 0 else 1)
        fig.colorbar(im, ax=panel.ax, label=quantity, shrink=0.7)
        defined = vf is not None and float(vf[c]) >= 0
        panel.ax.set_title(name + (f"\nvote fraction {float(vf[c]):.2f}" if defined else ""))
        if top <= 0:
            panel.ax.text(0.5, 0.5, "no pixel marked", transform=panel.ax.transAxes,
                          ha="center", va="center", color="white", fontsize=9)
    if vf is not None:
        fig.supxlabel("vote fraction: the share of the object's classifications that marked "
                      "the class (segmentation_vote_fraction; not given for classes without it)"
                      + ("; votes per pixel: how many volunteers' marks cover the pixel"
                         if votes else ""), fontsize=9)


SPEC = ModalitySpec(
    name="segmentation", prefix=PREFIX, description="segmentation maps on their source image",
    example_model=SegmentationExample, check_columns=check_columns,
    example_from_row=example_from_row, features=features, preview=preview,
    marker_columns=(PREFIX + "array",), priority=40, example_columns=example_columns,
    known_columns=("array", "class", "vote_fraction"),
)
