"""Pydantic models of the five modalities: the logical examples users get back.

Each modality module defines the stored column convention (FORMATS.md §1), a pydantic model
of one logical example (the design doc's structure), ``example_from_row`` to build that
example from one stored row, and ``check_columns`` for the validator.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from pydantic import ValidationError

from mmu_core.schemas import common, ifu, image, segmentation, spectrum, timeseries
from mmu_core.schemas.common import SCHEMA_VERSION, CommonFields, Provenance, decode
from mmu_core.schemas.ifu import IFUExample
from mmu_core.schemas.image import ImageExample
from mmu_core.schemas.segmentation import SegmentationExample
from mmu_core.schemas.spectrum import SpectrumExample
from mmu_core.schemas.timeseries import TimeSeriesExample

MODALITY_PREFIXES = ("image_", "spectrum_", "ifu_", "lightcurve_", "segmentation_")

MODULES: dict[str, ModuleType] = {
    "image": image,
    "spectrum": spectrum,
    "ifu": ifu,
    "timeseries": timeseries,
    "segmentation": segmentation,
}
EXAMPLE_MODELS = {
    "image": ImageExample,
    "spectrum": SpectrumExample,
    "ifu": IFUExample,
    "timeseries": TimeSeriesExample,
    "segmentation": SegmentationExample,
}


def example_from_row(modality: str, row: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """One stored row (column -> value) as the design doc's logical example."""
    base = {k: row[k] for k in ("object_id", "ra", "dec", "healpix") if k in row}
    base.update(MODULES[modality].example_from_row(row, **kwargs))
    return base


def logical_example(modality: str | None, row: dict[str, Any], names: dict[str, str],
                    provenance: dict[str, Any], **options: Any) -> dict[str, Any]:
    """One stored row as the logical example users get back (reader and HF alike): the
    modality's structure, ``provenance``, then every other column under its standard name
    (``names``: native -> standard), scalars decoded."""
    example = example_from_row(modality, row, **options) if modality else {}
    example = {k: decode(v) if np.ndim(v) == 0 else v for k, v in example.items()}
    example["provenance"] = dict(provenance)
    for k, v in row.items():
        if k.startswith(MODALITY_PREFIXES) or k in example:
            continue
        example[names.get(k, k)] = decode(v) if np.ndim(v) == 0 else v
    return example


def validate_example(modality: str, example: dict[str, Any]) -> list[str]:
    """Messages (each naming its field) for everything wrong with one logical example."""
    try:
        EXAMPLE_MODELS[modality].model_validate(example)
    except ValidationError as exc:
        return [
            f"{'.'.join(str(p) for p in err['loc']) or '<example>'}: {err['msg']}"
            for err in exc.errors()
        ]
    return []


__all__ = [
    "EXAMPLE_MODELS",
    "MODALITY_PREFIXES",
    "MODULES",
    "SCHEMA_VERSION",
    "CommonFields",
    "IFUExample",
    "ImageExample",
    "Provenance",
    "SegmentationExample",
    "SpectrumExample",
    "TimeSeriesExample",
    "common",
    "example_from_row",
    "logical_example",
    "validate_example",
]
