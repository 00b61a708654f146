"""Discover the (tract, patch) units of a raw HSC folder: the catalog files and the calexps
of each patch, one unit per patch holding selected catalog objects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import WorkUnit
from mmu_hsc import catalogs as cat
from mmu_hsc.datamodel import BANDS, FILTERS, parse_calexp_name, unit_key


def scan(raw_dir: Path) -> tuple[list[Path], dict[tuple[int, str], dict[str, Path]]]:
    """Walk a raw folder once: catalog candidates, and calexp files by (tract, patch) -> band.

    Calexps may sit in the archive's tree (``HSC-G/9813/4,5/calexp-...``) or anywhere else.

    :raises InputError: a ``calexp-*`` name that cannot be parsed, or two files for the same
        band of the same patch.
    """
    catalogs: list[Path] = []
    calexps: dict[tuple[int, str], dict[str, Path]] = {}
    for folder, dirs, files in os.walk(raw_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith("calexp-"):
                parsed = parse_calexp_name(name)
                if parsed is None:
                    raise InputError(
                        "unrecognised calexp file name (expected "
                        "calexp-HSC-{G,R,I,Z,Y}-{tract}-{x},{y}.fits)", file=path)
                band, tract, patch = parsed
                bands = calexps.setdefault((tract, patch), {})
                if band in bands:
                    raise InputError(f"two {FILTERS[band]} files for tract {tract} patch "
                                     f"{patch}: {bands[band]} and {path}", file=path)
                bands[band] = path
            elif cat.is_catalog_candidate(path):
                catalogs.append(path)
    return _prefer_fits(catalogs), calexps


def _prefer_fits(paths: list[Path]) -> list[Path]:
    """Drop a CSV whose stem also exists as FITS (the same query saved twice)."""
    def stem(p: Path) -> str:
        return p.name.split(".")[0]
    fits_stems = {(p.parent, stem(p)) for p in paths if ".fit" in p.name.lower()}
    return [p for p in paths
            if ".fit" in p.name.lower() or (p.parent, stem(p)) not in fits_stems]


def discover(survey: str, config: str, raw_dir: Path, options: dict[str, Any]) -> list[WorkUnit]:
    """One unit per (tract, patch) holding selected catalog objects."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError("raw folder does not exist", file=raw_dir)
    size = options.get("stamp_size")
    if size is not None and int(size) < 1:
        raise InputError(f"stamp_size must be a positive number of pixels, got {size}")
    catalogs, calexps = scan(raw_dir)
    if not catalogs:
        raise InputError("no HSC catalog (FITS or CSV with object_id, ra, dec, tract, patch) "
                         "in the raw folder", file=raw_dir)
    index = cat.load_index(catalogs, config)
    units = []
    for (tract, patch), rows in sorted(index.groups.items()):
        bands = calexps.get((tract, patch), {})
        ra, dec = index.columns["ra"][rows], index.columns["dec"][rows]
        ok = np.isfinite(ra) & np.isfinite(dec)
        units.append(WorkUnit(
            survey=survey,
            config=config,
            key=unit_key(tract, patch),
            files=[str(p) for p in catalogs] + [str(bands[b]) for b in BANDS if b in bands],
            # one object's position is a good enough place for the patch (no RA wrap issue)
            ra=float(ra[ok][0]) if ok.any() else None,
            dec=float(dec[ok][0]) if ok.any() else None,
            meta={
                "tract": tract,
                "patch": patch,
                "catalogs": [str(p) for p in catalogs],
                "bands": {b: (str(bands[b]) if b in bands else None) for b in BANDS},
                "n_objects": int(len(rows)),
                "n_duplicates": index.n_duplicates,
            },
        ))
    return units
