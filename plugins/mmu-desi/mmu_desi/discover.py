"""Find the coadd files of a config and give every target exactly one owning file.

One work unit per coadd file of the config's DESI survey (told by :mod:`mmu_desi.survey`).
Every other coadd is reported, never taken: one of another survey, or one whose survey cannot
be told, is listed with its reason in the build summary (discover can only return units, so
the first unit carries the list under ``meta["report"]`` and its convert lists it). A coadd
that cannot be read at all becomes a unit of its own, so that its convert reports the error
(or ``--skip-bad`` skips it), unless its healpix file name names another survey.

A TARGETID can sit in several coadds of one survey (dark and bright programs, several tiles);
the zall-pix primary flag says which spectrum is primary, and whatever remains ambiguous (no
catalog, targets the catalog lacks, tile coadds) is settled here: the coadd with the longest
COADD_EXPTIME keeps the target, ties go to the first unit key. The others list it under
``meta["exclude"]``, so the core's unique-id rule holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import WorkUnit
from mmu_desi import catalogs, reader, select
from mmu_desi import columns as cols
from mmu_desi import datamodel as dm
from mmu_desi.survey import Told, tell

SHOWN = 3  # coadd names shown per survey when no coadd is of the config's
UNREADABLE = "unreadable"  # Told.how of a coadd that cannot be read (convert reports it)


def find_files(raw_dir: Path) -> tuple[list[Path], list[Path], dict[str, list[Path]], list[Path]]:
    """(coadds, zall-pix catalogs, redrock files by name, tiles files) anywhere under
    ``raw_dir``."""
    def glob(pattern: str) -> list[Path]:
        return sorted(p for p in raw_dir.rglob(pattern) if p.is_file())

    redrock: dict[str, list[Path]] = {}
    for p in glob(dm.REDROCK_GLOB):
        redrock.setdefault(p.name, []).append(p)
    return glob(dm.COADD_GLOB), glob(dm.ZALL_GLOB), redrock, glob(dm.TILES_GLOB)


def tiles_table(found: list[Path], options: dict[str, Any]) -> dict[int, catalogs.TileInfo]:
    """The tiles table of the raw folder's ``tiles-*.fits`` and of the ``--tiles`` file."""
    paths = list(found)
    given = options.get("tiles")
    if given:
        if not Path(given).is_file():
            raise InputError("--tiles: no such file", file=str(given))
        paths.insert(0, Path(given))
    return catalogs.read_tiles(paths)


def _redrock_for(coadd: Path, redrock: dict[str, list[Path]]) -> Path | None:
    """The coadd's redrock file: same folder first, else the only one of that name."""
    candidates = redrock.get(dm.redrock_name_for(coadd.name), [])
    for p in candidates:
        if p.parent == coadd.parent:
            return p
    return candidates[0] if len(candidates) == 1 else None


def _unit_key(path: Path, raw_dir: Path, taken: set[str]) -> str:
    """The file name without ``.fits``; a short hash of the relative path if it repeats."""
    key = path.name.removesuffix(".fits")
    if key in taken:
        digest = hashlib.sha1(str(path.relative_to(raw_dir)).encode()).hexdigest()[:8]
        key = f"{key}+{digest}"
    taken.add(key)
    return key


def _mean_position(ra: np.ndarray, dec: np.ndarray) -> tuple[float | None, float | None]:
    ok = np.isfinite(ra) & np.isfinite(dec)
    if not ok.any():
        return None, None
    r, d = np.radians(ra[ok]), np.radians(dec[ok])
    x, y, z = (np.cos(d) * np.cos(r)).mean(), (np.cos(d) * np.sin(r)).mean(), np.sin(d).mean()
    return float(np.degrees(np.arctan2(y, x)) % 360.0), float(np.degrees(np.arctan2(z, np.hypot(x, y))))


def discover(survey: str, config: str, raw_dir: Path, options: dict[str, Any]) -> list[WorkUnit]:
    """Work units (one per coadd of the config's DESI survey) under ``raw_dir``."""
    spec = cols.CONFIGS[config]
    raw_dir = Path(raw_dir)
    coadds, zall, redrock, tiles_files = find_files(raw_dir)
    if not coadds:
        raise InputError("no DESI coadd-*.fits files in this folder or below", file=str(raw_dir))
    tiles = tiles_table(tiles_files, options)

    entries: list[tuple[Path, reader.CoaddSummary | None, Told]] = []
    refused: list[tuple[Path, Told]] = []
    for path in coadds:
        summary = reader.scan_coadd(path)
        told = _tell(path, summary, tiles)
        if told.survey == spec.survey or told.how == UNREADABLE:
            entries.append((path, summary, told))
        else:
            refused.append((path, told))
    report = [{"file": str(path), "message": _refusal(told, spec.survey, config)}
              for path, told in refused]
    if not entries:
        raise InputError(f"no coadd of DESI survey {spec.survey!r} (config {config}) here; "
                         f"{_found(refused)}", file=str(raw_dir))

    meta_common = {"zall": [str(p.resolve()) for p in zall]}
    taken: set[str] = set()
    units_info = []
    for path, summary, told in entries:
        key = _unit_key(path, raw_dir, taken)
        rr = None if zall else _redrock_for(path, redrock)
        meta = {**meta_common, "redrock": str(rr.resolve()) if rr else None,
                "survey": told.survey, "program": told.program, "survey_from": told.how}
        units_info.append((key, path, summary, meta))

    owners = _owners(config, units_info)
    units = []
    for i, (key, path, summary, meta) in enumerate(units_info):
        ra = dec = None
        if summary is not None:
            ra, dec = _mean_position(summary.ra, summary.dec)
        units.append(WorkUnit(
            survey=survey, config=config, key=key, files=[str(path.resolve())], ra=ra, dec=dec,
            meta={**meta, "exclude": owners.get(i, []), "report": report if i == 0 else []},
        ))
    return units


def _tell(path: Path, summary: reader.CoaddSummary | None,
          tiles: dict[int, catalogs.TileInfo]) -> Told:
    """The coadd's survey; for a file that cannot be read, what its name says (else None)."""
    if summary is not None:
        return tell(path, summary, tiles)
    name = dm.parse_coadd_name(path.name)
    if name is not None and name.kind == "healpix":
        return Told(name.survey, name.program, "its healpix file name (the file is unreadable)")
    return Told(None, None, UNREADABLE)


def _refusal(told: Told, survey: str, config: str) -> str:
    if told.survey is None:
        return f"not taken: {told.how}"
    return (f"not taken: DESI survey {told.survey!r} (from {told.how}); config {config} keeps "
            f"{survey!r}")


def _found(refused: list[tuple[Path, Told]]) -> str:
    """What the coadds that were not taken are: per survey a few names and how the first was
    told; for the untold, why."""
    by_survey: dict[str, list[tuple[Path, Told]]] = {}
    for path, told in refused:
        by_survey.setdefault(told.survey or "", []).append((path, told))
    parts = []
    for survey in sorted(by_survey, key=lambda s: (not s, s)):
        group = by_survey[survey]
        names = ", ".join(p.name for p, _ in group[:SHOWN]) + (" ..." if len(group) > SHOWN else "")
        how = group[0][1].how
        parts.append(f"{survey} ({len(group)}: {names}; the first from {how})" if survey
                     else f"survey not told ({len(group)}: {names}; the first: {how})")
    return "coadd surveys found: " + "; ".join(parts)


def _owners(config: str, units_info: list) -> dict[int, list[int]]:
    """For targets kept by more than one unit: unit index -> TARGETIDs it must leave out."""
    ids, unit_of, exptime = [], [], []
    for i, (_key, _path, summary, meta) in enumerate(units_info):
        if summary is None:
            continue
        keep = select.real_targets(summary.targetid, summary.fiberstatus, summary.objtype)
        table = select.redshift_table(config, meta, meta["program"]) if meta["zall"] else None
        if table is not None:
            keep &= table.is_primary(summary.targetid)
        ids.append(summary.targetid[keep])
        unit_of.append(np.full(int(keep.sum()), i))
        exptime.append(summary.exptime[keep])
    if not ids:
        return {}
    tid, unit, exp = np.concatenate(ids), np.concatenate(unit_of), np.concatenate(exptime)
    # best first within each TARGETID: longest exposure, then lowest unit index (sorted keys)
    order = np.lexsort((unit, -np.nan_to_num(exp, nan=-1.0), tid))
    tid, unit = tid[order], unit[order]
    loser = np.concatenate([[False], tid[1:] == tid[:-1]])
    out: dict[int, list[int]] = {}
    for u, t in zip(unit[loser], tid[loser], strict=True):
        out.setdefault(int(u), []).append(int(t))
    return out
