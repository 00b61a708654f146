"""``mmu build``: discover -> convert (per unit) -> merge (per pixel) -> index -> manifest.

A build is resumable at unit and pixel granularity (see :mod:`mmu_core.storage.writer`), and
re-running a finished build is a no-op. The manifest is written last.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from rich.console import Console
from rich.table import Table

from mmu_core.errors import BuildError, InputError
from mmu_core.executors import ProcessPool, placement, run_tasks
from mmu_core.models import ConvertContext, WorkUnit
from mmu_core.progress import NullProgress, ProgressSink
from mmu_core.registry import Registry, get_registry
from mmu_core.schemas import SCHEMA_VERSION
from mmu_core.storage import layout
from mmu_core.storage.columns import ColumnSpec, merge_schema
from mmu_core.storage.index import IdIndex
from mmu_core.storage.manifest import FileEntry, Manifest, load_manifest, save_manifest
from mmu_core.storage.writer import (
    DEFAULT_MAX_FILE_BYTES,
    IDS_NAME,
    PARTS_DIR,
    StagedFragment,
    UnitResult,
    UnitStager,
    atomic_write_text,
    describe_pixel_files,
    fill_checksums,
    finish_pixel,
    first_duplicate,
    plan_pixel_files,
    read_unit_result,
    remove_leftovers,
    swap_in,
    tmp_token,
    write_pixel_file,
    write_skipped_unit,
)
from mmu_core.version import __version__

PLAN_NAME = "plan.json"
FINGERPRINT_BYTES = 1024 * 1024  # bytes hashed at each end of an input file


@dataclass
class BuildSummary:
    path: Path
    survey: str
    config: str
    rows: int = 0
    pixels: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    units: int = 0
    units_converted: int = 0
    noop: bool = False
    skipped_units: list[dict] = field(default_factory=list)
    skipped_objects: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def print(self, console: Console) -> None:
        if self.noop:
            console.print(f"[green]already built[/]: {self.path} (nothing to do)")
        table = Table(title=f"mmu build {self.survey}/{self.config}")
        for col in ("rows", "pixels", "files", "bytes", "units", "seconds"):
            table.add_column(col, justify="right")
        table.add_row(f"{self.rows:,}", str(self.pixels), str(self.files), f"{self.bytes:,}",
                      f"{self.units_converted}/{self.units}", f"{self.seconds:.1f}")
        console.print(table)
        for w in self.warnings:
            console.print(f"[yellow]warning:[/] {w}", highlight=False)
        if self.skipped_units:
            console.print(f"[yellow]skipped {len(self.skipped_units)} unit(s):[/]")
            for s in self.skipped_units:
                console.print(f"  {s['key']}: {s['reason']}", highlight=False)
        if self.skipped_objects:
            console.print(f"[yellow]skipped or listed {len(self.skipped_objects)} input(s):[/]")
            for s in self.skipped_objects[:50]:
                where = ", ".join(f"{k} {s[k]}" for k in ("file", "object") if s.get(k))
                console.print(f"  {where}: {s['message']}", highlight=False)
            if len(self.skipped_objects) > 50:
                console.print(f"  ... and {len(self.skipped_objects) - 50} more (see manifest)")
        console.print(f"dataset: {self.path}")


def convert_unit(
    unit_json: dict,
    raw_dir: str,
    options: dict[str, Any],
    staging_root: str,
    registry: Registry | None = None,
    attrs: dict[str, Any] | None = None,
    compression: str | None = "auto",
) -> dict:
    """Task: convert one unit and stage its rows. Runs in a worker; returns a small dict."""
    unit = WorkUnit.model_validate(unit_json)
    staging = Path(staging_root)
    done = read_unit_result(staging, unit.key)
    if done is not None:
        return done.to_json()
    registry = registry or get_registry()
    ctx = ConvertContext(raw_dir=Path(raw_dir), options=options)
    started = time.perf_counter()
    stager = UnitStager(staging, unit.key, attrs, compression)
    try:
        for i, batch in enumerate(registry.convert(unit, ctx)):
            stager.add(batch, i)
    except InputError as exc:
        stager.abort()
        if not options.get("skip_bad"):
            raise BuildError(f"unit {unit.key}: {exc}") from exc
        result = UnitResult(key=unit.key, failed=str(exc), warnings=ctx.warnings,
                            skipped=[p.model_dump() for p in ctx.skipped])
        write_skipped_unit(staging, result)
        return result.to_json()
    except BuildError:
        stager.abort()
        raise
    except Exception as exc:
        stager.abort()
        raise BuildError(f"unit {unit.key}: converter raised {type(exc).__name__}: {exc}") from exc
    except BaseException:
        stager.abort()
        raise
    result = UnitResult(key=unit.key, warnings=ctx.warnings,
                        skipped=[p.model_dump() for p in ctx.skipped],
                        seconds=time.perf_counter() - started)
    return stager.finish(result).to_json()


def merge_task(
    parts_dir: str,
    pixel: int,
    index: int,
    count: int,
    fragments: list[tuple[str, str]],
    schema_json: dict,
    attrs: dict,
    compression: str | None,
    part: tuple[int, int] | None = None,
    checksum: bool = True,
) -> dict:
    """Task: write one final file of one pixel (part ``part`` of the fragments' merged rows).
    Returns its manifest entry (``sha256`` None without ``checksum``)."""
    schema = {k: ColumnSpec.from_json(v) for k, v in schema_json.items()}
    return write_pixel_file(Path(parts_dir), pixel, index, count,
                            [(k, Path(p)) for k, p in fragments], schema, attrs, compression,
                            None if part is None else (int(part[0]), int(part[1])), checksum)


def build(
    survey: str,
    raw_dir: Path | str,
    out_root: Path | str,
    config: str | None = None,
    options: dict[str, Any] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    max_file_bytes: int | None = None,
    compression: str | None = "auto",
    registry: Registry | None = None,
    progress: ProgressSink | None = None,
    overwrite: bool = False,
    update: bool = False,
    _dataset_dir: Path | None = None,
    _reuse: tuple[Path, Manifest, list[str], list[str]] | None = None,
) -> BuildSummary:
    """Build ``out_root/survey/config`` from ``raw_dir``; resumable; a no-op when finished.

    The manifest records every unit's input files (size, mtime and an XXH3 of their first and
    last MiB). A rerun over a finished dataset whose inputs changed stops, naming the changed
    files; ``update=True`` (``--update``) converts only the changed (and new) units, rewrites
    only the pixels they touch (the other rows of those pixels are taken from the old files)
    and keeps every other pixel's files as they are (hard links); ``overwrite=True``
    (``--overwrite``) rebuilds it all. Both build in a temporary folder beside the dataset and
    swap it in at the end, so the old dataset stays readable until the new one is in place,
    and both give the files a fresh build of today's inputs gives.
    """
    started = time.perf_counter()
    registry = registry or get_registry()
    progress = progress or NullProgress()
    entry = registry.survey(survey)
    config = registry.resolve_config(survey, config)
    options = dict(options or {})
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError("raw-data folder does not exist", file=str(raw_dir))
    dataset_dir = _dataset_dir or layout.dataset_dir(out_root, survey, config)
    summary = BuildSummary(path=dataset_dir, survey=survey, config=config)

    units = registry.discover(survey, config, raw_dir, options)
    keys = [u.key for u in units]
    if not units:
        raise InputError(f"no {survey} input files found for config {config!r}", file=str(raw_dir))
    inputs = {u.key: [input_fingerprint(raw_dir, f) for f in u.files] for u in units}
    existing = load_manifest(dataset_dir)
    if existing is not None:

        def rebuild(tmp: Path, reuse: tuple | None = None) -> BuildSummary:
            """This build again, into ``tmp`` (``reuse``: what an update keeps)."""
            return build(survey, raw_dir, out_root, config=config, options=options,
                         workers=workers, scheduler=scheduler, max_file_bytes=max_file_bytes,
                         compression=compression, registry=registry, progress=progress,
                         _dataset_dir=tmp, _reuse=reuse)

        changed = changed_inputs(existing, keys, inputs)
        if not changed and not overwrite:
            return _summary_from_manifest(summary, existing, started, noop=True)
        if update and not overwrite and existing.inputs and unit_map(dataset_dir) is not None:
            stale = [k for k in existing.units if k not in inputs
                     or inputs[k] != existing.inputs.get(k)]
            fresh = [u for u in units if u.key not in existing.units
                     or inputs[u.key] != existing.inputs.get(u.key)]
            return _replace(dataset_dir, started, lambda tmp: rebuild(
                tmp, (dataset_dir, existing, stale, [u.key for u in fresh])))
        if not overwrite:
            shown = "; ".join(changed[:10]) + (f"; ... {len(changed) - 10} more"
                                                if len(changed) > 10 else "")
            raise BuildError(f"{dataset_dir} was built from other inputs ({shown}); rerun with "
                             "--update to rebuild the changed units and the pixels they touch, "
                             "or --overwrite to rebuild it all (either way it stays readable "
                             "until the new one replaces it), or build to another --out")
        return _replace(dataset_dir, started, rebuild)

    staging = dataset_dir / layout.STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    remove_leftovers(dataset_dir)
    remove_leftovers(staging)
    _check_plan(staging, dataset_dir, keys)

    all_keys = keys
    if _reuse is not None:  # --update: convert only the changed and new units
        units = [u for u in units if u.key in _reuse[3]]
        keys = [u.key for u in units]

    # the final files' attributes: units write pixels whose rows they alone hold as final files
    attrs = {
        "survey": survey, "config": config, "modality": entry.info.modality,
        "distribution": entry.distribution or "", "plugin_version": entry.version or "",
        "core_version": __version__, "schema_version": SCHEMA_VERSION,
        "nside": layout.NSIDE, "ordering": layout.ORDERING,
    }

    with ProcessPool(workers) as pool:  # one set of worker processes for the whole build
        # 1. convert every unit not yet staged
        progress.start("convert units", len(units))
        results: dict[str, UnitResult] = {}
        todo = []
        for unit in units:
            done = read_unit_result(staging, unit.key)
            if done is not None:
                results[unit.key] = done
                progress.advance("convert units")
            else:
                todo.append(unit)
        inline = placement(workers, scheduler) == "inline"
        inline_registry = registry if inline else None
        if not inline:  # in parallel, the largest units (by input bytes) first: a large unit
            # started last would run alone at the end (outputs do not depend on the order)
            todo.sort(key=lambda u: -sum(f.get("size", 0) for f in inputs.get(u.key, [])))
        args = [(u.model_dump(mode="json"), str(raw_dir), options, str(staging), inline_registry,
                 attrs, compression) for u in todo]
        for res in run_tasks(convert_unit, args, workers=workers, scheduler=scheduler, pool=pool):
            r = UnitResult.from_json(res)
            results[r.key] = r
            progress.advance("convert units")
        summary.units, summary.units_converted = len(all_keys), len(todo)
        kept_files: list[dict] = []
        if _reuse is not None:  # the old rows that stay: those of touched pixels staged as a unit
            old_dir, old, stale, _ = _reuse
            touched = {p for k in keys for p in results[k].pixels}
            kept, kept_files = stage_kept_rows(old_dir, old, stale, touched, staging, dataset_dir,
                                               attrs, compression)
            if kept is not None:
                results[kept.key] = kept
                keys = [*keys, kept.key]

        # 2. one schema for the whole build, and ids unique across units
        schema: dict[str, ColumnSpec] | None = None
        for key in keys:
            r = results[key]
            if r.failed is None and r.rows:
                schema = merge_schema(schema, r.column_specs(), f"unit {key}")
        if schema is None:
            raise BuildError(f"no rows were produced from {raw_dir} (all units empty or skipped)")
        _check_ids_unique(staging, [k for k in keys if results[k].failed is None])

        # 3. write each pixel's files
        schema_json = {k: v.to_json() for k, v in schema.items()}
        files = write_pixels(dataset_dir, staging, keys, results, schema, attrs,
                             max_file_bytes or DEFAULT_MAX_FILE_BYTES, compression, workers,
                             scheduler, progress, pool)
        files.extend(kept_files)
        files.sort(key=lambda f: f["path"])

    # 4. index, manifest, clean up
    index = IdIndex.from_files(dataset_dir, [f["path"] for f in files])
    index.save(dataset_dir)
    owners = [(all_keys.index(k), np.load(staging / k / IDS_NAME))
              for k in keys if k in all_keys and results[k].failed is None]
    if _reuse is not None:
        owners += kept_owners(_reuse[0], _reuse[1], _reuse[2], all_keys)
    save_unit_map(dataset_dir, index, owners)
    warnings = sorted({w for r in results.values() for w in r.warnings})
    skipped_units = [{"key": r.key, "reason": r.failed} for r in results.values() if r.failed]
    skipped_objects = [s for k in keys for s in results[k].skipped]
    if _reuse is not None:  # what the kept units reported when they were converted
        skipped_units += [u for u in _reuse[1].skipped_units if u["key"] not in _reuse[2]]
        warnings = sorted(set(warnings) | set(_reuse[1].extra.get("warnings", [])))
    manifest = Manifest(
        survey=survey, config=config, modality=entry.info.modality,
        distribution=entry.distribution, plugin_version=entry.version,
        core_version=__version__, schema_version=SCHEMA_VERSION,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        rows=int(sum(f["rows"] for f in files)),
        columns=with_units(schema_json, entry.info.units),
        aliases=registry.aliases(survey, config),
        pixels=sorted({f["pixel"] for f in files}),
        files=[FileEntry(**f) for f in files],
        units=all_keys,
        inputs=inputs,
        skipped_units=skipped_units,
        preview_columns=[c for c in entry.info.preview_columns if c in schema_json],
        provenance={"survey": survey, "config": config, "raw_dir": str(raw_dir.resolve()),
                    "homepage": entry.info.homepage, "citation": entry.info.citation,
                    "license": entry.info.license},
        build_options={k: v for k, v in options.items() if _jsonable(v)},
        extra={"warnings": warnings, "skipped_objects": skipped_objects},
    )
    save_manifest(dataset_dir, manifest)
    shutil.rmtree(staging, ignore_errors=True)
    summary = _summary_from_manifest(summary, manifest, started, noop=False)
    summary.units, summary.units_converted = len(all_keys), len(todo)
    return summary


def write_pixels(dataset_dir: Path, staging: Path, keys: list[str],
                 results: dict[str, UnitResult], schema: dict[str, ColumnSpec],
                 attrs: dict[str, Any], max_file_bytes: int, compression: str | None,
                 workers: int = 1, scheduler: str | None = None,
                 progress: ProgressSink | None = None,
                 pool: ProcessPool | None = None) -> list[dict]:
    """Write every pixel's final files from the staged units ``keys`` (``plan_pixel_files``):
    one task per file (a pixel's files are written in parallel), each pixel moved into place
    once whole.
    Returns the files' manifest entries; pixels already in place are kept (resume)."""
    progress = progress or NullProgress()
    by_pixel: dict[int, list[StagedFragment]] = {}
    for key in keys:
        for pixel, staged in sorted(results[key].fragment_list(staging / key, schema).items()):
            by_pixel.setdefault(pixel, []).extend(staged)
    schema_json = {k: v.to_json() for k, v in schema.items()}
    parts = staging / PARTS_DIR
    for folder in (parts.iterdir() if parts.is_dir() else []):
        remove_leftovers(folder)
    todo = [p for p in sorted(by_pixel) if not (dataset_dir / layout.pixel_dirname(p)).is_dir()]
    files = [f for p in sorted(set(by_pixel) - set(todo))
             for f in describe_pixel_files(dataset_dir, p, checksums=True)]
    # tasks run inline hash their files afterwards, on every core (fill_checksums); workers
    # hash their own, in parallel already
    inline = placement(workers, scheduler) == "inline"
    args = [(str(parts), p, i, len(plan), [(k, str(f)) for k, f in frags], schema_json, attrs,
             compression, part, not inline)
            for p in todo
            for plan in [plan_pixel_files(by_pixel[p], schema, max_file_bytes)]
            for i, (frags, part) in enumerate(plan, start=1)]
    progress.start("write pixel files", len(args))
    for res in run_tasks(merge_task, args, workers=workers, scheduler=scheduler, pool=pool):
        files.append(res)
        progress.advance("write pixel files")
    fill_checksums(parts, files)
    for pixel in todo:
        finish_pixel(dataset_dir, parts, pixel)
    return files


def with_units(columns: dict[str, dict], units: dict[str, str]) -> dict[str, dict]:
    """The manifest's column entries with the plugin's declared units (``"unit"``); ra and
    dec are always degrees."""
    units = {"ra": "deg", "dec": "deg", **units}
    return {k: {**v, "unit": units[k]} if k in units else v for k, v in columns.items()}


def input_fingerprint(raw_dir: Path, name: str) -> dict[str, Any]:
    """What identifies one input file: its path as the unit names it, size, mtime and an XXH3
    of its first and last MiB (cheap on files of any size; a changed size or mtime is caught
    even where the hashed bytes are the same)."""
    path = Path(name) if Path(name).is_absolute() else Path(raw_dir) / name
    try:
        st = path.stat()
    except OSError:
        return {"file": name, "missing": True}
    h = xxhash.xxh3_64()
    with open(path, "rb") as f:
        h.update(f.read(FINGERPRINT_BYTES))
        if st.st_size > FINGERPRINT_BYTES:
            f.seek(max(FINGERPRINT_BYTES, st.st_size - FINGERPRINT_BYTES))
            h.update(f.read(FINGERPRINT_BYTES))
    return {"file": name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "xxh3": h.hexdigest()}


def changed_inputs(manifest: Manifest, keys: list[str],
                   inputs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """What differs between a finished build's inputs and today's, one phrase each."""
    out = [f"unit {k} is new" for k in keys if k not in manifest.units]
    out += [f"unit {k} is gone" for k in manifest.units if k not in inputs]
    if not manifest.inputs:  # built before inputs were recorded: only the units can be compared
        return out
    for key in keys:
        old = {f["file"]: f for f in manifest.inputs.get(key, [])}
        for now in inputs[key]:
            before = old.get(now["file"])
            if before is None:
                out.append(f"{now['file']} is a new input of unit {key}")
            elif now.get("missing"):
                out.append(f"{now['file']} is missing")
            elif before != now:
                what = [k for k in ("size", "mtime_ns", "xxh3") if before.get(k) != now.get(k)]
                out.append(f"{now['file']} changed ({', '.join(what)})")
    return out


KEPT_KEY = "_kept"  # the staged pseudo-unit of an update: the old rows that stay
UNITS_NAME = "units.npy"  # _index/units.npy: each indexed id's unit (its place in manifest.units)


def save_unit_map(dataset_dir: Path, index: IdIndex, owners: list[tuple[int, np.ndarray]]) -> None:
    """Record which unit each row came from (what ``--update`` needs), aligned with the index's
    sorted ids."""
    unit = np.full(len(index), -1, np.int32)
    ids = np.asarray(index.ids)
    for k, unit_ids in owners:
        if len(unit_ids):
            unit[np.searchsorted(ids, unit_ids.astype(ids.dtype))] = k
    np.save(Path(dataset_dir) / layout.INDEX_DIR / UNITS_NAME, unit)


def unit_map(dataset_dir: Path) -> np.ndarray | None:
    """The unit of each indexed id, or ``None`` for datasets built before it was recorded."""
    path = Path(dataset_dir) / layout.INDEX_DIR / UNITS_NAME
    return np.load(path, mmap_mode="r") if path.is_file() else None


def _stale_mask(old_dir: Path, old: Manifest, stale: list[str]) -> tuple[IdIndex, np.ndarray]:
    index = IdIndex.load(old_dir)
    numbers = [i for i, k in enumerate(old.units) if k in stale]
    return index, np.isin(np.asarray(unit_map(old_dir)), numbers)


def stage_kept_rows(old_dir: Path, old: Manifest, stale: list[str], touched: set[int],
                    staging: Path, dataset_dir: Path, attrs: dict[str, Any],
                    compression: str | None) -> tuple[UnitResult | None, list[dict]]:
    """For an update: stage, as one pseudo-unit, the old rows of every pixel the update
    rewrites (pixels of stale units, or touched by the fresh ones) that no stale unit made, and
    hard-link (copy where links fail) the files of every other pixel into ``dataset_dir``."""
    from mmu_core.storage.reader import open_dataset

    index, stale_rows = _stale_mask(old_dir, old, stale)
    pixel_of_file = np.array([f.pixel for f in old.files], np.int64)
    rewrite = touched | set(pixel_of_file[np.asarray(index.file)[stale_rows]].tolist())
    linked: list[dict] = []
    for pixel in sorted(set(old.pixels) - rewrite):
        src, dst = old_dir / layout.pixel_dirname(pixel), dataset_dir / layout.pixel_dirname(pixel)
        dst.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            try:
                os.link(f, dst / f.name)
            except OSError:
                shutil.copy2(f, dst / f.name)
        linked += [e.model_dump() for e in old.files if e.pixel == pixel]
    keep = ~stale_rows & np.isin(pixel_of_file[np.asarray(index.file)], sorted(rewrite))
    if not keep.any():
        return None, linked
    ds = open_dataset(old_dir)
    columns = [c for c in ds.columns if c != "healpix"]
    stager = UnitStager(staging, KEPT_KEY, attrs, compression)
    try:
        file_idx, row_idx = np.asarray(index.file)[keep], np.asarray(index.row)[keep]
        order = np.lexsort((row_idx, file_idx))  # file by file: sequential reads
        step = max(1, 64 * 1024 * 1024 // max(1, sum(ds.schema[c].row_bytes for c in columns)))
        for i, a in enumerate(range(0, len(order), step)):
            sel = order[a:a + step]
            stager.add(ds.read_rows(file_idx[sel], row_idx[sel], columns), i)
    except BaseException:
        stager.abort()
        raise
    finally:
        ds.close()
    return stager.finish(UnitResult(key=KEPT_KEY)), linked


def kept_owners(old_dir: Path, old: Manifest, stale: list[str],
                keys: list[str]) -> list[tuple[int, np.ndarray]]:
    """The unit of every old row an update keeps, as places in the new unit list."""
    index, stale_rows = _stale_mask(old_dir, old, stale)
    units = np.asarray(unit_map(old_dir))
    ids = np.asarray(index.ids)
    return [(keys.index(k), ids[~stale_rows & (units == i)])
            for i, k in enumerate(old.units) if k in keys and k not in stale]


def _replace(dataset_dir: Path, started: float, rebuild: Any) -> BuildSummary:
    """Build into a temporary folder beside ``dataset_dir``, then swap it in."""
    tmp = layout.tmp_name(dataset_dir, tmp_token())
    try:
        summary = rebuild(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_in(tmp, dataset_dir)
    summary.path = dataset_dir
    summary.seconds = time.perf_counter() - started
    return summary


def _summary_from_manifest(summary: BuildSummary, m: Manifest, started: float, noop: bool) -> BuildSummary:
    summary.rows = m.rows
    summary.pixels = len(m.pixels)
    summary.files = len(m.files)
    summary.bytes = sum(f.bytes for f in m.files)
    summary.units = len(m.units)
    summary.noop = noop
    summary.skipped_units = m.skipped_units
    summary.skipped_objects = m.extra.get("skipped_objects", [])
    summary.warnings = m.extra.get("warnings", [])
    summary.seconds = time.perf_counter() - started
    return summary


def _check_plan(staging: Path, dataset_dir: Path, keys: list[str]) -> None:
    """A resumed build must have the same units; otherwise finished pixels would be stale."""
    plan = staging / PLAN_NAME
    if plan.is_file():
        old = json.loads(plan.read_text())
        if sorted(old) != sorted(keys) and layout.list_shards(dataset_dir):
            raise BuildError(
                f"the inputs changed since the interrupted build of {dataset_dir} "
                f"({len(old)} units then, {len(keys)} now); delete that folder to start over"
            )
    atomic_write_text(plan, json.dumps(keys))


def _check_ids_unique(staging: Path, keys: list[str]) -> None:
    dup = first_duplicate(staging, keys)
    if dup is not None:
        value, a, b = dup
        raise BuildError(f"object {value} appears in both unit {a!r} and unit {b!r}")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False
