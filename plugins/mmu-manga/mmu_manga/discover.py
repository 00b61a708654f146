"""Find MaNGA's units of work: one per LOGCUBE (key = plate-IFU), joined to drpall (required)
and dapall; repeat observations of a galaxy are marked so convert keeps the best one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import WorkUnit
from mmu_manga import datamodel as dm
from mmu_manga.reader import Catalog, load_catalog

SURVEY = "manga"


def scan(raw_dir: Path) -> dict[str, Any]:
    """Walk ``raw_dir`` once: LOGCUBE and MAPS files by plate-IFU, drpall and dapall files."""
    cubes: dict[str, list[str]] = {}
    maps: dict[str, list[str]] = {}
    drpall: list[str] = []
    dapall: list[str] = []
    for folder, dirs, files in os.walk(raw_dir, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            if (m := dm.CUBE_RE.match(name)) is not None:
                cubes.setdefault(dm.plateifu_of(m["plate"], m["ifu"]), []).append(path)
            elif (m := dm.MAPS_RE.match(name)) is not None:
                maps.setdefault(dm.plateifu_of(m["plate"], m["ifu"]), []).append(path)
            elif dm.DRPALL_RE.match(name):
                drpall.append(path)
            elif dm.DAPALL_RE.match(name):
                dapall.append(path)
    return {"cubes": cubes, "maps": maps, "drpall": drpall, "dapall": dapall}


def _one(paths: list[str], what: str, raw_dir: Path, required: bool) -> str | None:
    if not paths:
        if required:
            raise InputError(f"no {what} found (looked for {what} files anywhere below)",
                             file=str(raw_dir))
        return None
    if len(paths) > 1:
        raise InputError(f"{len(paths)} {what} files found, keep one: {paths}", file=str(raw_dir))
    return paths[0]


def discover_units(config: str, raw_dir: Path, options: dict[str, Any]) -> list[WorkUnit]:
    """One unit per LOGCUBE file (key = plate-IFU), joined to drpall (required) and dapall."""
    raw_dir = Path(raw_dir)
    found = scan(raw_dir)
    drpall = _one(found["drpall"], "drpall-*.fits", raw_dir, required=True)
    dapall = _one(found["dapall"], "dapall-*.fits", raw_dir, required=False)
    for kind in ("cubes", "maps"):
        for plateifu, paths in found[kind].items():
            if len(paths) > 1:
                raise InputError(f"plate-IFU {plateifu} has {len(paths)} copies, keep one: {paths}",
                                 file=str(raw_dir), object=plateifu)
    cat = load_catalog(drpall, dm.DRPALL_HDU, "plateifu")
    units = []
    for plateifu, (cube,) in sorted(found["cubes"].items()):
        i = cat.row(plateifu)
        maps = found["maps"].get(plateifu, [None])[0]
        meta = {"plateifu": plateifu, "cube": cube, "maps": maps, "drpall": drpall,
                "dapall": dapall}
        ra = dec = None
        if i is not None:
            meta["mangaid"] = cat.value("mangaid", i)
            ra, dec = float(cat.value("ifura", i)), float(cat.value("ifudec", i))
            if not (np.isfinite(ra) and np.isfinite(dec)):
                ra = dec = None
        files = [p for p in (cube, maps, drpall, dapall) if p]
        units.append(WorkUnit(survey=SURVEY, config=config, key=plateifu, files=files, ra=ra,
                              dec=dec, meta=meta))
    return _mark_repeats(units, cat)


def _mark_repeats(units: list[WorkUnit], cat: Catalog) -> list[WorkUnit]:
    """Several cubes of one mangaid: keep the best, mark the others ``repeat_of`` it."""
    by_id: dict[str, list[WorkUnit]] = {}
    for u in units:
        if u.meta.get("mangaid"):
            by_id.setdefault(u.meta["mangaid"], []).append(u)
    kept_of: dict[str, str] = {}
    for group in by_id.values():
        if len(group) < 2:
            continue

        def rank(u: WorkUnit) -> tuple:
            i = cat.row(u.key)
            critical = bool(int(cat.value("drp3qual", i, 0)) & dm.DRP3QUAL_CRITICAL)
            return (critical, u.meta["maps"] is None, -float(cat.value("exptime", i, 0.0)), u.key)

        best = min(group, key=rank)
        for u in group:
            if u is not best:
                kept_of[u.key] = best.key
    if not kept_of:
        return units
    return [
        u.model_copy(update={"meta": {**u.meta, "repeat_of": kept_of[u.key]}}) if u.key in kept_of else u
        for u in units
    ]
