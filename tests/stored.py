"""Write a synthetic stored dataset straight from columns (tests of derived datasets)."""

from __future__ import annotations

from pathlib import Path

from mmu_core.concat import finalize_dataset
from mmu_core.storage.columns import schema_of
from mmu_core.storage.writer import write_rows


def store(dataset_dir: Path, cols: dict, survey: str, modality: str | None = None,
          aliases: dict | None = None) -> Path:
    """A stored dataset (HEALPix layout, index, manifest) holding these columns."""
    dataset_dir.mkdir(parents=True, exist_ok=True)
    write_rows(dataset_dir, [cols], {"survey": survey, "config": "test"}, key="rows")
    finalize_dataset(dataset_dir, survey=survey, config="test", modality=modality,
                     columns=schema_of(cols), aliases=aliases or {})
    return dataset_dir
