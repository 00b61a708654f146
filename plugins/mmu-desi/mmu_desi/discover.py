"""Find the coadd files of a config and give every target exactly one owning file.

One work unit per coadd file. A TARGETID can sit in several coadds of one survey (dark and
bright programs, several tiles); the zall-pix primary flag says which spectrum is primary,
and whatever remains ambiguous (no catalog, targets the catalog lacks, tile coadds) is
settled here: the coadd with the longest COADD_EXPTIME keeps the target, ties go to the first
unit key. The others list it under ``meta["exclude"]``, so the core's unique-id rule holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import WorkUnit
from mmu_desi import columns as cols
from mmu_desi import datamodel as dm
from mmu_desi import reader, select


def find_files(raw_dir: Path) -> tuple[list[Path], list[Path], dict[str, list[Path]]]:
    """(coadds, zall-pix catalogs, redrock files by name) anywhere under ``raw_dir``."""
    coadds = sorted(p for p in raw_dir.rglob(dm.COADD_GLOB) if p.is_file())
    zall = sorted(p for p in raw_dir.rglob(dm.ZALL_GLOB) if p.is_file())
    redrock: dict[str, list[Path]] = {}
    for p in sorted(raw_dir.rglob(dm.REDROCK_GLOB)):
        redrock.setdefault(p.name, []).append(p)
    return coadds, zall, redrock


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
    coadds, zall, redrock = find_files(raw_dir)
    if not coadds:
        raise InputError("no DESI coadd-*.fits files in this folder or below", file=str(raw_dir))

    entries = []  # (path, summary or None, program)
    others: set[str] = set()
    for path in coadds:
        summary = reader.scan_coadd(path)
        if summary is None:
            # unreadable: keep it if its name does not rule it out, so convert reports it
            name = dm.parse_coadd_name(path.name)
            if name is not None and name.survey not in (None, spec.survey):
                others.add(name.survey)
                continue
            entries.append((path, None, name.program if name else None))
        elif summary.survey not in (None, spec.survey):
            others.add(summary.survey)
        else:
            entries.append((path, summary, summary.program))
    if not entries:
        found = ", ".join(sorted(others)) or "none"
        raise InputError(
            f"no coadd of DESI survey {spec.survey!r} (config {config}) here; coadd surveys "
            f"found: {found}", file=str(raw_dir))

    meta_common = {"zall": [str(p.resolve()) for p in zall]}
    taken: set[str] = set()
    units_info = []
    for path, summary, program in entries:
        key = _unit_key(path, raw_dir, taken)
        rr = None if zall else _redrock_for(path, redrock)
        meta = {**meta_common, "redrock": str(rr.resolve()) if rr else None,
                "survey": spec.survey, "program": program}
        units_info.append((key, path, summary, meta))

    owners = _owners(config, units_info)
    units = []
    for i, (key, path, summary, meta) in enumerate(units_info):
        ra = dec = None
        if summary is not None:
            ra, dec = _mean_position(summary.ra, summary.dec)
        units.append(WorkUnit(
            survey=survey, config=config, key=key, files=[str(path.resolve())], ra=ra, dec=dec,
            meta={**meta, "exclude": owners.get(i, [])},
        ))
    return units


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
