"""The modalities: pydantic models of the logical examples users get back, and one
:class:`~mmu_core.schemas.spec.ModalitySpec` per modality in one table.

Each modality module (``image``, ``spectrum``, ``ifu``, ``lightcurve``, ``segmentation``)
defines its stored column convention (docs/format.md), the model of one logical example
(docs/examples.md), and a ``SPEC`` record registered here; the rest of the core dispatches
through :func:`get_modality`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import ValidationError

from mmu_core.schemas import common, ifu, image, lightcurve, segmentation, spectrum
from mmu_core.schemas.common import ALWAYS_PRESENT, SCHEMA_VERSION, CommonFields, Provenance, decode
from mmu_core.schemas.ifu import IFUExample
from mmu_core.schemas.image import ImageExample
from mmu_core.schemas.lightcurve import LightCurveExample
from mmu_core.schemas.segmentation import SegmentationExample
from mmu_core.schemas.spec import (
    MATCHED,
    ModalitySpec,
    canonical_name,
    get_modality,
    guess_modality,
    modalities,
    modality_prefixes,
    register_modality,
    unregister_modality,
)
from mmu_core.schemas.spectrum import SpectrumExample

for _module in (image, spectrum, ifu, lightcurve, segmentation):
    register_modality(_module.SPEC)
BUILTIN_MODALITIES: tuple[str, ...] = tuple(modalities())


def example_from_row(modality: str, row: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """One stored row (column -> value) as the logical example of ``modality``."""
    base = {k: row[k] for k in ALWAYS_PRESENT if k in row}
    base.update(get_modality(modality).example_from_row(row, **kwargs))
    return base


def logical_example(modality: str | None, row: dict[str, Any], names: dict[str, str],
                    provenance: dict[str, Any], **options: Any) -> dict[str, Any]:
    """One stored row as the logical example users get back (reader and HF alike): the
    modality's structure, ``provenance``, then every other column under its standard name
    (``names``: native -> standard), scalars decoded."""
    example = example_from_row(modality, row, **options) if modality else {}
    example = {k: decode(v) if np.ndim(v) == 0 else v for k, v in example.items()}
    example["provenance"] = dict(provenance)
    prefixes = modality_prefixes()
    for k, v in row.items():
        if k.startswith(prefixes) or k in example:
            continue
        example[names.get(k, k)] = decode(v) if np.ndim(v) == 0 else v
    return example


def example_columns(modality: str | None, block: dict[str, Any], names: dict[str, str],
                    provenance: dict[str, Any], **options: Any) -> dict[str, Any] | None:
    """A block of stored rows (column -> array, rows first) as the columns of their logical
    examples: :func:`logical_example`'s fields, each holding every row (the modality's through
    its ``example_columns``; provenance values are shared by all rows). ``None`` when the
    modality has no ``example_columns`` (build the examples row by row then)."""
    fields: dict[str, Any] = {}
    if modality:
        spec = get_modality(modality)
        if spec.example_columns is None:
            return None
        fields = {k: block[k] for k in ALWAYS_PRESENT if k in block}
        fields.update(spec.example_columns(block, **options))
    fields["provenance"] = dict(provenance)
    prefixes = modality_prefixes()
    for k, v in block.items():
        if k.startswith(prefixes) or k in fields:
            continue
        fields[names.get(k, k)] = v
    return fields


def validate_example(modality: str, example: dict[str, Any]) -> list[str]:
    """Messages (each naming its field) for everything wrong with one logical example."""
    try:
        get_modality(modality).example_model.model_validate(example)
    except ValidationError as exc:
        return [
            f"{'.'.join(str(p) for p in err['loc']) or '<example>'}: {err['msg']}"
            for err in exc.errors()
        ]
    return []


__all__ = [
    "ALWAYS_PRESENT",
    "BUILTIN_MODALITIES",
    "MATCHED",
    "SCHEMA_VERSION",
    "CommonFields",
    "IFUExample",
    "ImageExample",
    "LightCurveExample",
    "ModalitySpec",
    "Provenance",
    "SegmentationExample",
    "SpectrumExample",
    "canonical_name",
    "common",
    "example_columns",
    "example_from_row",
    "get_modality",
    "guess_modality",
    "logical_example",
    "modalities",
    "modality_prefixes",
    "register_modality",
    "unregister_modality",
    "validate_example",
]
