"""Writing derived datasets (concatenations, cross-match outputs): prepare the output folder,
then, once its ``healpix=N/`` files are written with :func:`mmu_core.storage.writer.write_rows`,
turn it into a finished dataset (id index + positions sidecar + manifest, the manifest last)."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmu_core.errors import MMUError
from mmu_core.schemas.common import SCHEMA_VERSION
from mmu_core.storage import layout
from mmu_core.storage.columns import ColumnSpec
from mmu_core.storage.index import IdIndex
from mmu_core.storage.manifest import FileEntry, Manifest, save_manifest
from mmu_core.storage.writer import describe_pixel_files
from mmu_core.version import __version__


def prepare_output(dataset_dir: Path, overwrite: bool) -> None:
    """Make ``dataset_dir`` an empty folder; refuse to replace a dataset unless ``overwrite``."""
    if dataset_dir.exists() and any(dataset_dir.iterdir()):
        if not overwrite:
            raise MMUError(f"{dataset_dir} already exists and is not empty; pass overwrite=True "
                           "(--overwrite) or choose another output folder")
        shutil.rmtree(dataset_dir)
    dataset_dir.mkdir(parents=True, exist_ok=True)


def finalize_dataset(
    dataset_dir: Path,
    *,
    survey: str,
    config: str,
    modality: str | None,
    columns: dict[str, ColumnSpec],
    aliases: dict[str, str] | None = None,
    provenance: dict[str, Any] | None = None,
    build_options: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    distribution: str | None = "mmu-core",
) -> Manifest:
    """Index and manifest for a folder whose ``healpix=N/`` files are written; returns it.

    The manifest is written last (atomically), as the build does: a folder with a manifest is a
    finished dataset.
    """
    dataset_dir = Path(dataset_dir)
    shutil.rmtree(dataset_dir / layout.STAGING_DIR, ignore_errors=True)
    pixels = sorted({s.pixel for s in layout.list_shards(dataset_dir)})
    files = [f for p in pixels for f in describe_pixel_files(dataset_dir, p, checksums=True)]
    files.sort(key=lambda f: f["path"])
    IdIndex.from_files(dataset_dir, [f["path"] for f in files]).save(dataset_dir)
    manifest = Manifest(
        survey=survey, config=config, modality=modality, distribution=distribution,
        plugin_version=__version__, core_version=__version__,
        schema_version=SCHEMA_VERSION,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        rows=int(sum(f["rows"] for f in files)),
        columns={k: v.to_json() for k, v in columns.items() if k != "healpix"}
        | {"healpix": ColumnSpec("<i8", ()).to_json()},
        aliases=aliases or {}, pixels=pixels, files=[FileEntry(**f) for f in files],
        provenance=provenance or {}, build_options=build_options or {}, extra=extra or {},
    )
    save_manifest(dataset_dir, manifest)
    return manifest
