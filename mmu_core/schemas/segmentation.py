"""Segmentation maps on the grid of the source image they were drawn on.

Stored columns (FORMATS.md §1): ``segmentation_array`` (N,C,H,W) (counts or labels, any
numeric dtype), ``segmentation_class`` (N,C) names, ``segmentation_vote_fraction`` (N,C)
float32 (−1 where not defined), and the source image in ``image_array`` (N,B,H,W) with
``image_scale``. The masks' H, W must equal the source image's (the design doc's
"mapped back to the survey" rule).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from mmu_core.schemas.common import Array, CommonFields, decode

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
