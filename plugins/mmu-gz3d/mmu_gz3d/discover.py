"""Find gz3d galaxy files (flat, or anywhere below ``--raw`` as in the SAS tree) and group them
into units of work.

gz3d_metadata.fits, when present, is the index: a galaxy it lists whose file is absent still
gets a place in a unit, so the converter can report it (or skip it with ``--skip-bad``).
Galaxies are sorted by (MANGAID, subject id) and cut into groups of ``galaxies_per_unit``;
all files of one MANGAID stay in one unit.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path
from typing import Any

from mmu_core.errors import InputError
from mmu_core.models import WorkUnit
from mmu_gz3d import datamodel as dm
from mmu_gz3d.reader import CatalogRow, read_metadata_catalog

DEFAULT_GALAXIES_PER_UNIT = 8


def find_galaxy_files(raw_dir: Path) -> dict[int, Path]:
    """Galaxy files below ``raw_dir`` keyed by subject id; the same subject twice is an error."""
    found: dict[int, Path] = {}
    for path in sorted(raw_dir.rglob("gz3d_*.fits*")):
        name = dm.parse_file_name(path.name)
        if name is None or not path.is_file():
            continue
        if name.subject_id in found:
            raise InputError(
                f"subject {name.subject_id} appears twice: {found[name.subject_id]} and {path}; "
                "keep one copy", file=str(path), object=name.mangaid)
        found[name.subject_id] = path
    return found


def find_metadata(raw_dir: Path) -> Path | None:
    """gz3d_metadata.fits below ``raw_dir`` (None if absent; several copies is an error)."""
    found = sorted(raw_dir.rglob(dm.METADATA_NAME))
    if len(found) > 1:
        raise InputError(f"found {len(found)} copies of {dm.METADATA_NAME}: "
                         + ", ".join(map(str, found)) + "; keep one", file=str(found[1]))
    return found[0] if found else None


def discover_units(config: str, raw_dir: Path, options: dict[str, Any]) -> list[WorkUnit]:
    """The units of work of a gz3d raw folder (see the module docstring)."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError("raw folder does not exist", file=str(raw_dir))
    files = find_galaxy_files(raw_dir)
    metadata_path = find_metadata(raw_dir)
    catalog = read_metadata_catalog(metadata_path) if metadata_path else {}
    if not files and not catalog:
        raise InputError("no gz3d_<MANGAID>_<IFU>_<subject>.fits.gz files and no "
                         f"{dm.METADATA_NAME} found", file=str(raw_dir))

    galaxies: list[dict[str, Any]] = []
    for subject, path in files.items():
        name = dm.parse_file_name(path.name)
        galaxies.append(_entry(name, str(path.resolve()), path.name, catalog.get(subject)))
    for subject, row in catalog.items():
        if subject not in files:
            expected = metadata_path.parent / row.name.file_name
            galaxies.append(_entry(row.name, None, str(expected), row))
    galaxies.sort(key=lambda g: (g["mangaid"], g["subject_id"]))

    per_unit = max(1, int(options.get("galaxies_per_unit") or DEFAULT_GALAXIES_PER_UNIT))
    groups: list[list[dict[str, Any]]] = [[]]
    for _, same_galaxy in groupby(galaxies, key=lambda g: g["mangaid"]):
        same_galaxy = list(same_galaxy)
        if groups[-1] and len(groups[-1]) + len(same_galaxy) > per_unit:
            groups.append([])
        groups[-1].extend(same_galaxy)

    units = []
    for group in groups:
        key = f"gz3d-{group[0]['mangaid']}-{group[0]['subject_id']}-n{len(group)}"
        units.append(WorkUnit(
            survey="gz3d", config=config, key=key,
            files=[g["path"] for g in group if g["path"] is not None],
            meta={"galaxies": group,
                  "metadata": str(metadata_path.resolve()) if metadata_path else None},
        ))
    return units


def _entry(name: dm.GalaxyFileName, path: str | None, shown: str,
           row: CatalogRow | None) -> dict[str, Any]:
    """What the converter needs to know about one galaxy besides its file (JSON-able)."""
    return {
        "mangaid": name.mangaid, "subject_id": name.subject_id, "path": path, "name": shown,
        "listed": row is not None,
        "observed": bool(row.observed) if row else False,
        "catalog_centers": row.number_galaxy_centers if row else None,
        "catalog_stars": row.number_foreground_stars if row else None,
    }
