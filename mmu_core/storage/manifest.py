"""The manifest: one JSON file at a dataset's root that describes every stored file.

Written last, atomically: a dataset folder with a manifest is a finished build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mmu_core.storage import layout
from mmu_core.storage.columns import ColumnSpec

MANIFEST_VERSION = 1


class FileEntry(BaseModel):
    path: str  # relative: healpix=N/i-of-n.hdf5
    pixel: int
    rows: int
    bytes: int
    sha256: str | None = None


class Manifest(BaseModel):
    manifest_version: int = MANIFEST_VERSION
    survey: str
    config: str
    modality: str | None = None
    distribution: str | None = None
    plugin_version: str | None = None
    core_version: str
    schema_version: str
    nside: int = layout.NSIDE
    ordering: str = layout.ORDERING
    created: str
    rows: int
    columns: dict[str, dict]  # name -> {"dtype": ..., "shape": [...]}
    aliases: dict[str, str] = Field(default_factory=dict)
    pixels: list[int]
    files: list[FileEntry]
    units: list[str] = Field(default_factory=list)
    inputs: dict[str, list[dict]] = Field(default_factory=dict)  # unit -> its input files
    skipped_units: list[dict] = Field(default_factory=list)
    preview_columns: list[str] = Field(default_factory=list)  # declared by the survey plugin
    provenance: dict[str, Any] = Field(default_factory=dict)
    build_options: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)

    def column_specs(self) -> dict[str, ColumnSpec]:
        return {k: ColumnSpec.from_json(v) for k, v in self.columns.items()}

    def fingerprint(self) -> str:
        """A short hash of the stored content (file checksums and sizes) for cache keys."""
        import hashlib

        h = hashlib.sha256()
        h.update(self.created.encode())
        for f in self.files:
            h.update(f"{f.path}:{f.rows}:{f.bytes}:{f.sha256}".encode())
        return h.hexdigest()[:16]


def manifest_path(dataset_dir: Path) -> Path:
    return Path(dataset_dir) / layout.MANIFEST_NAME


def load_manifest(dataset_dir: Path) -> Manifest | None:
    path = manifest_path(dataset_dir)
    if not path.is_file():
        return None
    return Manifest.model_validate(json.loads(path.read_text()))


def save_manifest(dataset_dir: Path, manifest: Manifest) -> None:
    from mmu_core.storage.writer import atomic_write_text

    atomic_write_text(manifest_path(dataset_dir), manifest.model_dump_json(indent=2))
