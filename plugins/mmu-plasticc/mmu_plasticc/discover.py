"""Find a PLAsTiCC release in a folder and cut its light-curve files into units of work.

One cheap streaming pass over the light-curve files (object_id and passband only) gives:

- the points per (object, band), hence L, the padded length per band of the whole dataset;
- the byte offset and line of each object's first row, hence units that are byte ranges of
  a file cut at object boundaries (an object's rows are contiguous in PLAsTiCC files), so each
  unit reads only its own part. Gzipped files cannot seek: each is one unit (the unblinded
  release already splits its test set into eleven files);
- the object ids, to check that no object's rows are split and to list metadata rows that
  have no light curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import WorkUnit
from mmu_plasticc.datamodel import (
    BANDS,
    KAGGLE,
    KAGGLE_FULL_TEST,
    KAGGLE_TEST_SAMPLE,
    N_BANDS,
    RELEASES,
    Release,
)
from mmu_plasticc.reader import (
    is_compressed,
    iter_blocks,
    iter_metadata,
    parse_lightcurve_block,
    read_header,
    release_memory,
)

DEFAULT_UNIT_MB = 256.0
MAX_LISTED = 1000  # ids listed one by one in the build summary; beyond that, a count


@dataclass
class Layout:
    """The files of one release and config in a raw folder."""

    release: Release
    config: str
    lightcurves: list[Path]
    metadata: Path
    lc_headers: dict[Path, list[str]]
    meta_header: list[str]


def find_layout(raw_dir: Path, config: str, release: str | None = None) -> Layout:
    """Recognise which release ``raw_dir`` holds (from file names, then checked against the
    column names) and list the files of ``config``.

    :raises InputError: no release, or both without ``release`` to choose, or a file whose
        columns are not those of its release.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError("the raw folder does not exist or is not a folder", file=str(raw_dir))
    names = sorted(p.name for p in raw_dir.iterdir() if p.is_file())
    found: dict[str, tuple[list[str], list[str]]] = {}
    for rel in RELEASES.values():
        lcs = [n for n in names if rel.lightcurves[config].match(n)]
        if rel is KAGGLE and config == "test" and any(KAGGLE_FULL_TEST.match(n) for n in lcs):
            lcs = [n for n in lcs if not KAGGLE_TEST_SAMPLE.match(n)]
        metas = [n for n in names if rel.metadata[config].match(n)]
        if lcs or metas:
            found[rel.name] = (lcs, metas)
    complete = {k: v for k, v in found.items() if v[0] and len(v[1]) == 1}
    if release:
        if release not in RELEASES:
            raise InputError(
                f"unknown release {release!r}; known: {sorted(RELEASES)}", file=str(raw_dir)
            )
        complete = {k: v for k, v in complete.items() if k == release}
    if not complete:
        raise InputError(_missing_message(config, found, release), file=str(raw_dir))
    if len(complete) > 1:
        raise InputError(
            f"both PLAsTiCC releases are here for config {config!r} "
            f"({'; '.join(f'{k}: {v[0] + v[1]}' for k, v in complete.items())}); "
            "choose one with --release kaggle|unblinded",
            file=str(raw_dir),
        )
    name, (lcs, metas) = next(iter(complete.items()))
    rel = RELEASES[name]
    _no_double_compression(lcs + metas, raw_dir)
    lightcurves = [raw_dir / n for n in lcs]
    metadata = raw_dir / metas[0]
    lc_headers = {p: _check_header(p, rel.lc_columns(), rel, "light-curve") for p in lightcurves}
    meta_header = _check_header(
        metadata, ("object_id", "ra", "decl", rel.ddf_column), rel, "metadata"
    )
    return Layout(rel, config, lightcurves, metadata, lc_headers, meta_header)


def _missing_message(config: str, found: dict, release: str | None) -> str:
    expected = "; ".join(
        f"{rel.name}: light curves matching {rel.lightcurves[config].pattern} and one metadata "
        f"file matching {rel.metadata[config].pattern}"
        for rel in RELEASES.values()
        if not release or rel.name == release
    )
    partial = "; ".join(
        f"{k} has light curves {v[0]} and metadata {v[1]}" for k, v in found.items()
    )
    return f"no PLAsTiCC {config!r} files here (expected {expected})" + (
        f"; found only: {partial}" if partial else ""
    )


def _no_double_compression(names: list[str], raw_dir: Path) -> None:
    stems = [n.removesuffix(".gz") for n in names]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise InputError(
            f"both {twice[0]} and {twice[0]}.gz are here: keep one", file=str(raw_dir / twice[0])
        )


def _check_header(path: Path, required: tuple[str, ...], rel: Release, what: str) -> list[str]:
    header, _ = read_header(path)
    missing = [c for c in required if c not in header]
    if missing:
        other = [r for r in RELEASES.values() if r is not rel]
        hint = ""
        for o in other:
            if {o.detected_column, o.ddf_column} & set(header):
                hint = (
                    f"; its columns are those of the {o.name} release: the file name says "
                    f"{rel.name}"
                )
        raise InputError(
            f"{what} file lacks columns {missing} (has {header}){hint}", file=str(path)
        )
    if len(set(header)) != len(header):
        raise InputError(f"repeated column names in the header {header}", file=str(path))
    return header


@dataclass
class _Unit:
    """A unit being assembled during the scan: a byte range of one file."""

    path: Path
    start: int
    first_line: int
    end: int | None = None
    n_objects: int = 0
    n_rows: int = 0
    id_min: int = 0
    id_max: int = 0
    ascending: bool = True
    last_id: int | None = None

    def add(self, ids: np.ndarray, rows: np.ndarray) -> None:
        if not len(ids):
            return
        if self.n_objects == 0:
            self.id_min, self.id_max = int(ids.min()), int(ids.max())
        else:
            self.id_min, self.id_max = (
                min(self.id_min, int(ids.min())),
                max(self.id_max, int(ids.max())),
            )
        if self.last_id is not None and ids[0] <= self.last_id:
            self.ascending = False
        if len(ids) > 1 and not np.all(np.diff(ids) > 0):
            self.ascending = False
        self.last_id = int(ids[-1])
        self.n_objects += len(ids)
        self.n_rows += int(rows.sum())


@dataclass
class Scan:
    """What the first pass learned about one config's light-curve files."""

    units: list[_Unit] = field(default_factory=list)
    max_counts: np.ndarray = field(default_factory=lambda: np.zeros(N_BANDS, np.int64))
    argmax: list[tuple[int, str]] = field(default_factory=lambda: [(0, "")] * N_BANDS)
    ids: list[np.ndarray] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)
    file_index: list[np.ndarray] = field(default_factory=list)


def scan_lightcurves(layout: Layout, unit_bytes: float, block_bytes: int | None = None) -> Scan:
    """Stream every light-curve file once; see the module docstring."""
    scan = Scan()
    for k, path in enumerate(layout.lightcurves):
        header = layout.lc_headers[path]
        _, header_len = read_header(path)
        _scan_file(
            scan,
            k,
            path,
            header,
            header_len,
            layout.release.detected_column,
            math.inf if is_compressed(path) else unit_bytes,
            block_bytes,
        )
    return scan


def _scan_file(
    scan: Scan,
    k: int,
    path: Path,
    header: list[str],
    header_len: int,
    detected: str,
    unit_bytes: float,
    block_bytes: int | None,
) -> None:
    unit: _Unit | None = None
    carry: dict[str, Any] | None = None  # the last object of the previous block
    for block in iter_blocks(path, header_len, None, 2, block_bytes):
        # Unchecked: a row with a bad passband still marks where its object starts (the
        # converter reports it); it is just not counted.
        rows = parse_lightcurve_block(
            block, header, detected, fields=("object_id", "passband"), check=False
        )
        if not len(rows):
            continue
        ids, bands = rows.columns["object_id"], rows.columns["passband"]
        bands = np.where((bands >= 0) & (bands < N_BANDS), bands, N_BANDS)
        offsets = block.line_starts()[rows.line - block.first_line]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        n_runs = len(starts)
        run = np.repeat(np.arange(n_runs), np.diff(np.r_[starts, len(ids)]))
        slots = N_BANDS + 1
        counts = np.bincount(run * slots + bands, minlength=n_runs * slots).reshape(n_runs, slots)
        counts = counts[:, :N_BANDS]
        run_ids, run_off, run_line = ids[starts], offsets[starts], rows.line[starts]
        run_rows = np.diff(np.r_[starts, len(ids)])
        if carry is not None and carry["id"] == run_ids[0]:
            counts[0] += carry["counts"]
            run_off[0], run_line[0] = carry["offset"], carry["line"]
            run_rows[0] += carry["rows"]
        elif carry is not None:
            unit = _finish_carry(scan, k, path, unit, unit_bytes, carry)
        carry = {
            "id": int(run_ids[-1]),
            "offset": int(run_off[-1]),
            "line": int(run_line[-1]),
            "rows": int(run_rows[-1]),
            "counts": counts[-1].copy(),
        }
        unit = _finish_objects(
            scan,
            k,
            path,
            unit,
            unit_bytes,
            run_ids[:-1],
            run_off[:-1],
            run_line[:-1],
            run_rows[:-1],
            counts[:-1],
        )
    if carry is not None:
        unit = _finish_carry(scan, k, path, unit, unit_bytes, carry)
    if unit is not None:
        scan.units.append(unit)  # runs to the end of the file (end=None)


def _finish_carry(scan, k, path, unit, unit_bytes, carry: dict):
    """_finish_objects for the one object carried over from the previous block."""
    return _finish_objects(
        scan, k, path, unit, unit_bytes, np.array([carry["id"]]), np.array([carry["offset"]]),
        np.array([carry["line"]]), np.array([carry["rows"]]), carry["counts"][None, :],
    )


def _finish_objects(
    scan: Scan,
    k: int,
    path: Path,
    unit: _Unit | None,
    unit_bytes: float,
    ids: np.ndarray,
    offsets: np.ndarray,
    lines: np.ndarray,
    rows: np.ndarray,
    counts: np.ndarray,
) -> _Unit | None:
    """Record complete objects (in file order) and cut units at object boundaries."""
    if not len(ids):
        return unit
    scan.ids.append(ids.astype(np.int64))
    scan.lines.append(lines.astype(np.int64))
    scan.file_index.append(np.full(len(ids), k, np.int32))
    best = counts.max(axis=0)
    for b in np.flatnonzero(best > scan.max_counts):
        scan.max_counts[b] = best[b]
        scan.argmax[b] = (int(ids[np.argmax(counts[:, b])]), str(path))
    i = 0
    if unit is None:
        unit = _Unit(path, int(offsets[0]), int(lines[0]))
    while i < len(ids):
        # the first object at or beyond the size budget starts the next unit
        j = (
            int(np.searchsorted(offsets, unit.start + unit_bytes, "left"))
            if unit_bytes < math.inf
            else len(ids)
        )
        j = max(j, i)
        if j >= len(ids):
            unit.add(ids[i:], rows[i:])
            break
        unit.add(ids[i:j], rows[i:j])
        if unit.n_objects:
            unit.end = int(offsets[j])
            scan.units.append(unit)
            unit = _Unit(path, int(offsets[j]), int(lines[j]))
        unit.add(ids[j : j + 1], rows[j : j + 1])
        i = j + 1
    return unit


def discover_units(
    survey: str,
    config: str,
    raw_dir: Path,
    options: dict[str, Any],
    block_bytes: int | None = None,
) -> list[WorkUnit]:
    """The units of work of one config: see the module docstring."""
    layout = find_layout(raw_dir, config, options.get("release"))
    skip_bad = bool(options.get("skip_bad"))
    unit_mb = float(options.get("unit_mb") or DEFAULT_UNIT_MB)
    if unit_mb <= 0:
        raise InputError(f"--unit-mb must be positive, got {unit_mb}")
    scan = scan_lightcurves(layout, unit_mb * 1e6, block_bytes)
    if not scan.units:
        raise InputError(
            f"no light-curve rows in {[p.name for p in layout.lightcurves]}",
            file=str(layout.lightcurves[0]),
        )
    length = _choose_length(scan, options.get("length"), skip_bad)
    lc_ids = np.concatenate(scan.ids)
    drop = _split_objects(scan, layout, lc_ids, skip_bad)
    meta_ids = np.concatenate(
        [c["object_id"] for c in iter_metadata(layout.metadata, ["object_id"])]
        or [np.zeros(0, np.int64)]
    )
    drop += _repeated_metadata(meta_ids, layout.metadata, skip_bad)
    orphans = np.setdiff1d(meta_ids, lc_ids)
    release_memory()
    units = []
    stem_counts: dict[str, int] = {}
    for unit in scan.units:
        stem = unit.path.name.removesuffix(".gz").removesuffix(".csv")
        part = stem_counts[stem] = stem_counts.get(stem, -1) + 1
        meta = {
            "release": layout.release.name,
            "lc_header": layout.lc_headers[unit.path],
            "detected_column": layout.release.detected_column,
            "meta_header": layout.meta_header,
            "start": unit.start,
            "end": unit.end,
            "first_line": unit.first_line,
            "n_objects": unit.n_objects,
            "n_rows": unit.n_rows,
            "id_min": unit.id_min,
            "id_max": unit.id_max,
            "ascending": unit.ascending,
            "length": length,
            "drop_ids": [int(i) for i in drop],
            "orphans": [],
            "n_orphans": 0,
        }
        if not units:  # one unit lists the metadata rows without a light curve
            meta["orphans"] = [int(i) for i in orphans[:MAX_LISTED]]
            meta["n_orphans"] = int(len(orphans))
        units.append(
            WorkUnit(
                survey=survey,
                config=config,
                key=f"{stem}-{part:04d}",
                files=[str(unit.path), str(layout.metadata)],
                meta=meta,
            )
        )
    return units


def _choose_length(scan: Scan, forced: Any, skip_bad: bool) -> int:
    needed = int(scan.max_counts.max())
    if forced in (None, 0, ""):
        return max(needed, 1)
    forced = int(forced)
    if forced < 1:
        raise InputError(f"--length must be positive, got {forced}")
    if forced < needed and not skip_bad:
        b = int(np.argmax(scan.max_counts))
        obj, path = scan.argmax[b]
        raise InputError(
            f"--length {forced} is too short: object {obj} has {needed} points in band "
            f"{BANDS[b]} (never truncated; use --length {needed} or more, or --skip-bad to "
            "leave such objects out)",
            file=path,
            object=str(obj),
        )
    return forced


def _split_objects(scan: Scan, layout: Layout, lc_ids: np.ndarray, skip_bad: bool) -> list[int]:
    """Objects whose rows are not contiguous (they would land in two units)."""
    order = np.argsort(lc_ids, kind="stable")
    sorted_ids = lc_ids[order]
    twice = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if not len(twice):
        return []
    ids = np.unique(sorted_ids[twice])
    if not skip_bad or len(ids) > MAX_LISTED:
        lines, files = np.concatenate(scan.lines), np.concatenate(scan.file_index)
        first, second = order[twice[0]], order[twice[0] + 1]
        raise InputError(
            f"the rows of object {sorted_ids[twice[0]]} are not together: they start at line "
            f"{lines[first]} of {layout.lightcurves[files[first]].name} and again at line "
            f"{lines[second]} of {layout.lightcurves[files[second]].name} "
            f"({len(ids)} such objects)",
            file=str(layout.lightcurves[files[second]]),
            object=str(sorted_ids[twice[0]]),
        )
    return [int(i) for i in ids]


def _repeated_metadata(meta_ids: np.ndarray, path: Path, skip_bad: bool) -> list[int]:
    ids = np.sort(meta_ids)
    twice = np.unique(ids[1:][ids[1:] == ids[:-1]])
    if len(twice) and (not skip_bad or len(twice) > MAX_LISTED):
        raise InputError(
            f"object {twice[0]} has {int(np.sum(meta_ids == twice[0]))} metadata "
            f"rows ({len(twice)} such objects)",
            file=str(path),
            object=str(twice[0]),
        )
    return [int(i) for i in twice]
