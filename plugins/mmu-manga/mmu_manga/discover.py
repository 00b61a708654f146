"""Find MaNGA's units of work: one per LOGCUBE (key = plate-IFU), joined to drpall (required)
and dapall; repeat observations of a galaxy are marked so convert keeps the best one.

MAPS files of the chosen DAPTYPE (``--daptype``, DR17's ``HYB10-MILESHC-MASTARSSP`` by default)
go with the cube of their plate-IFU. The others are listed in the build summary with their
reason: MAPS of another DAPTYPE, and MAPS without a LOGCUBE (each named with the cube it needs).
discover can only return units, so the first unit carries that list (``meta["report"]``) and
its convert lists it. The DAP channels stored are those the headers of one MAPS file list
(the first that reads, in plate-IFU order); every unit gets that list (``meta["dap_channels"]``)
so every row has the same channels.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import WorkUnit
from mmu_manga import datamodel as dm
from mmu_manga.reader import Catalog, dapall_table, load_catalog, map_channels

SURVEY = "manga"


def scan(raw_dir: Path) -> dict[str, Any]:
    """Walk ``raw_dir`` once: LOGCUBE files by plate-IFU, MAPS files by DAPTYPE and plate-IFU,
    drpall and dapall files."""
    cubes: dict[str, list[str]] = {}
    maps: dict[str, dict[str, list[str]]] = {}
    drpall: list[str] = []
    dapall: list[str] = []
    for folder, dirs, files in os.walk(raw_dir, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            if (m := dm.CUBE_RE.match(name)) is not None:
                cubes.setdefault(dm.plateifu_of(m["plate"], m["ifu"]), []).append(path)
            elif (parsed := dm.parse_maps_name(name)) is not None:
                plateifu, daptype = parsed
                maps.setdefault(daptype, {}).setdefault(plateifu, []).append(path)
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


def _not_taken(found: dict[str, Any], daptype: str) -> list[dict[str, str]]:
    """MAPS files no unit reads, each with why: another DAPTYPE, or no LOGCUBE to go with."""
    report = []
    for other in sorted(found["maps"]):
        for plateifu, paths in sorted(found["maps"][other].items()):
            for path in paths:
                if other != daptype:
                    why = (f"ignored: DAPTYPE {other}, the build reads {daptype} "
                           f"(choose with --daptype {other})")
                elif plateifu not in found["cubes"]:
                    why = (f"ignored: no LOGCUBE for plate-IFU {plateifu}; it needs "
                           f"{dm.cube_name(plateifu)} (e.g. {dm.expected_cube_path(path, plateifu)})")
                else:
                    continue
                report.append({"file": path, "message": why})
    return report


def _dap_channels(maps: dict[str, list[str]], plateifus: list[str],
                  report: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The build's DAP channels: those of the first MAPS file (in plate-IFU order) whose
    headers read; [] when there is none."""
    for plateifu in plateifus:
        for path in maps.get(plateifu, []):
            try:
                channels, absent = map_channels(path)
            except InputError:
                continue  # that galaxy's convert reports it
            if absent:
                report.append({"file": path, "message": f"this MAPS file sets the build's DAP "
                               f"channels and has no {', '.join(absent)} extension: not stored"})
            return [asdict(c) for c in channels]
    return []


def _dapall_for(paths: list[str], daptype: str, raw_dir: Path
                ) -> tuple[str | None, str | None, tuple[str, str] | None]:
    """(dapall file, extension, row filter) of the one dapall holding ``daptype``."""
    holding, errors = [], []
    for path in paths:
        try:
            holding.append((path, *dapall_table(path, daptype)))
        except InputError as exc:
            errors.append(exc)
    if len(holding) > 1:
        raise InputError(f"{len(holding)} dapall files hold DAPTYPE {daptype}, keep one: "
                         f"{[h[0] for h in holding]}", file=str(raw_dir))
    if not holding and errors:
        raise errors[0]
    return holding[0] if holding else (None, None, None)


def discover_units(config: str, raw_dir: Path, options: dict[str, Any]) -> list[WorkUnit]:
    """One unit per LOGCUBE file (key = plate-IFU), joined to drpall (required) and dapall."""
    raw_dir = Path(raw_dir)
    daptype = str(options.get("daptype") or dm.DAPTYPE)
    found = scan(raw_dir)
    report = _not_taken(found, daptype)
    if not found["cubes"]:
        detail = "; ".join(f"{Path(r['file']).name} {r['message']}" for r in report)
        raise InputError("no manga-*-LOGCUBE.fits[.gz] files found"
                         + (f"; MAPS files found but not used: {detail}" if detail else ""),
                         file=str(raw_dir))
    drpall = _one(found["drpall"], "drpall-*.fits", raw_dir, required=True)
    dapall, dapall_hdu, dapall_where = _dapall_for(found["dapall"], daptype, raw_dir)
    maps_of = found["maps"].get(daptype, {})
    for what, by_plateifu in (("LOGCUBE", found["cubes"]), (f"MAPS-{daptype}", maps_of)):
        for plateifu, paths in by_plateifu.items():
            if len(paths) > 1:
                raise InputError(f"plate-IFU {plateifu} has {len(paths)} {what} copies, keep "
                                 f"one: {paths}", file=str(raw_dir), object=plateifu)
    dap_channels = _dap_channels(maps_of, sorted(found["cubes"]), report)
    cat = load_catalog(drpall, dm.DRPALL_HDU, "plateifu")
    units = []
    for plateifu, (cube,) in sorted(found["cubes"].items()):
        i = cat.row(plateifu)
        maps = maps_of.get(plateifu, [None])[0]
        meta = {"plateifu": plateifu, "cube": cube, "maps": maps, "daptype": daptype,
                "drpall": drpall, "dapall": dapall, "dapall_hdu": dapall_hdu,
                "dapall_where": dapall_where, "dap_channels": dap_channels,
                "report": [] if units else report}
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
