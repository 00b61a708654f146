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


def preview(fig: Any, i: int, nrows: int, ncols: int, row: dict[str, Any], title: str) -> None:
    """The source image with each class's mask as contours, then one panel per class."""
    image = np.moveaxis(row["image_array"], 0, -1)
    classes = [decode(c) for c in row[PREFIX + "class"]]
    ax = fig.add_subplot(nrows, ncols, i * ncols + 1)
    ax.imshow(image, origin="lower")
    colors = ["yellow", "cyan", "magenta", "lime", "orange"]
    for c in range(len(classes)):
        mask = row[PREFIX + "array"][c]
        if np.any(mask > 0):
            ax.contour(mask > 0, levels=[0.5], colors=colors[c % len(colors)], linewidths=0.8)
    ax.set_title(f"{title}: masks over image")
    ax.axis("off")
    for c, name in enumerate(classes[: ncols - 1]):
        ax = fig.add_subplot(nrows, ncols, i * ncols + 2 + c)
        ax.imshow(row[PREFIX + "array"][c], origin="lower", cmap="viridis")
        vf = row.get(PREFIX + "vote_fraction")
        ax.set_title(name + (f"  vf {vf[c]:.2f}" if vf is not None and vf[c] >= 0 else ""))
        ax.axis("off")


SPEC = ModalitySpec(
    name="segmentation", prefix=PREFIX, description="segmentation maps on their source image",
    example_model=SegmentationExample, check_columns=check_columns,
    example_from_row=example_from_row, features=features, preview=preview,
    marker_columns=(PREFIX + "array",), priority=40, example_columns=example_columns,
    known_columns=("array", "class", "vote_fraction"),
)
