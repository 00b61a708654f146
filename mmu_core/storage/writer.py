"""The sharder: row batches -> per-pixel HDF5 files, written atomically, each row once.

Two steps, each resumable:

1. **Stage** (one task per unit of work): the unit's batches are checked and given their
   HEALPix pixel, and kept in memory (up to ``STAGE_MEMORY_BYTES``). When the unit ends, each
   pixel's rows are sorted by ``object_id`` in memory and written as a *fragment* that is
   already a final file (the final layout, compression and attributes of ``1-of-1.hdf5``). A
   unit larger than the memory budget writes its rows as several such sorted runs. The unit
   folder is renamed into place with a ``DONE.json`` — a unit is finished exactly when that
   folder exists.
2. **Merge** (one task per pixel): a pixel whose rows are all in one fragment that fits the
   size budget and has the build's final schema — the usual case — takes that file as it is
   (a hard link: no second write). Otherwise the sorted fragments of every unit and run that
   touched the pixel are merged (a k-way merge: each output block reads one contiguous slice
   of each fragment) and split into ``i-of-n`` files under the size budget. Either way the
   pixel folder is renamed into place — a pixel is finished exactly when ``healpix=N/``
   exists.

Both paths write through one function (``_write_shard``), so a pixel's file has the same bytes
whichever path made it and under any executor.

Temporary names start with a dot and carry ``.tmp-``; nothing under a final name is ever
partial, and a rerun deletes leftovers and redoes only what has no final name.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mmu_core.errors import BuildError, OutOfSpaceError
from mmu_core.storage import layout
from mmu_core.storage.columns import (
    REQUIRED,
    ColumnSpec,
    chunk_shape,
    compression_for,
    merge_schema,
    normalise_array,
    schema_of,
)
from mmu_core.storage.integrity import block_rows, digests, write_digests

DEFAULT_MAX_FILE_BYTES = 1_000_000_000
# HDF5 1.8 file format: dense attribute storage, so a column's digests may exceed 64 kB
FILE_LIBVER = ("v108", "latest")
MERGE_BLOCK_BYTES = 64 * 1024 * 1024
DONE_NAME = "DONE.json"
IDS_NAME = "ids.npy"


SPACE_MARGIN = 16 * 1024 * 1024  # free bytes kept back: HDF5 must never meet a full disk


def ensure_space(path: Path, needed: int, what: str) -> None:
    """Raise :class:`OutOfSpaceError` unless the disk holding ``path`` has ``needed`` bytes
    (plus a margin) free. Writers call it before they write: HDF5 crashes rather than fails
    on some writes to a full disk, so a full disk must be seen before HDF5 meets it."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed + SPACE_MARGIN:
        raise OutOfSpaceError(f"no space left on device while writing {path} ({what}): "
                              f"{needed + SPACE_MARGIN:,} bytes needed, {free:,} free")


def tmp_token() -> str:
    """A token that makes a temporary name unique to this process and call."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished folder ``tmp`` to ``out``; what was at ``out`` is moved aside first
    and deleted last, so ``out`` is never partial and never missing once it existed."""
    if out.exists():
        old = layout.tmp_name(out, f"old-{tmp_token()}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, out)


def first_duplicate(staging: Path, keys: list[str]) -> tuple[Any, str, str] | None:
    """The first object id staged by two of the units ``keys`` (from their ``ids.npy``), with
    the two unit keys, or ``None`` when the ids are unique across them."""
    arrays = [np.load(staging / k / IDS_NAME) for k in keys]
    if not arrays:
        return None
    ids = np.concatenate(arrays)
    owner = np.concatenate([np.full(len(a), i, np.int32) for i, a in enumerate(arrays)])
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    dup = np.flatnonzero(s[1:] == s[:-1])
    if not len(dup):
        return None
    value = s[dup[0]]
    value = value.decode() if isinstance(value, bytes) else value
    return value, keys[owner[order[dup[0]]]], keys[owner[order[dup[0] + 1]]]


def atomic_write_text(path: Path, text: str) -> None:
    tmp = layout.tmp_name(path, tmp_token())
    tmp.write_text(text)
    os.replace(tmp, path)


def remove_leftovers(folder: Path) -> int:
    """Delete temporary files/folders left by an interrupted run; returns how many."""
    removed = 0
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if p.name.startswith(".") and layout.TMP_MARK in p.name:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
            removed += 1
    return removed


# ---- batch checks -----------------------------------------------------------------------
def prepare_batch(batch: dict[str, Any], where: str) -> dict[str, np.ndarray]:
    """Check a converter's batch and add ``healpix``; raise BuildError naming the object."""
    if not isinstance(batch, dict):
        raise BuildError(f"{where}: convert yielded {type(batch).__name__}, expected a dict of arrays")
    missing = [c for c in REQUIRED if c not in batch]
    if missing:
        raise BuildError(f"{where}: batch lacks required column(s) {missing}")
    if "healpix" in batch:
        raise BuildError(f"{where}: batch has a 'healpix' column; the core computes it, plugins must not")
    out = {name: normalise_array(name, value) for name, value in batch.items()}
    lengths = {name: (arr.shape[0] if arr.ndim else None) for name, arr in out.items()}
    if len(set(lengths.values())) != 1 or None in lengths.values():
        raise BuildError(f"{where}: columns have different lengths {lengths}")
    ids = out["object_id"]
    if ids.ndim != 1 or ids.dtype.kind not in "iuS":
        raise BuildError(f"{where}: object_id must be 1-D integers or strings, got {ids.dtype} {ids.shape}")
    if ids.dtype.kind == "u":
        out["object_id"] = ids = ids.astype(np.int64)
    for coord, lo, hi, hi_ok in (("ra", 0.0, 360.0, False), ("dec", -90.0, 90.0, True)):
        values = out[coord].astype(np.float64)
        out[coord] = values
        bad = ~np.isfinite(values) | (values < lo) | ((values > hi) if hi_ok else (values >= hi))
        if bad.any():
            i = int(np.argmax(bad))
            raise BuildError(
                f"{where}: object {_id_str(ids[i])} has {coord}={float(values[i])}, "
                f"outside [{lo}, {hi}{']' if hi_ok else ')'} or not finite"
            )
    out["healpix"] = layout.healpix_of(out["ra"], out["dec"])
    return out


def _id_str(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, np.bytes_)) else str(value)


# ---- staging ----------------------------------------------------------------------------
@dataclass
class UnitResult:
    """What a finished unit reports back to the driver (small: no row data)."""

    key: str
    rows: int = 0
    pixels: dict[int, int] = field(default_factory=dict)  # pixel -> rows
    fragments: dict[int, list[str]] = field(default_factory=dict)  # pixel -> files in the unit
    # pixel -> (rows, first object_id) of each of those files, what planning the pixel's final
    # files needs without opening them (ids as JSON: ints, or byte strings as latin-1 text,
    # which keeps their order)
    fragment_info: dict[int, list[tuple[int, Any]]] = field(default_factory=dict)
    schema: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    failed: str | None = None  # set when the whole unit was skipped (--skip-bad)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "key": self.key, "rows": self.rows,
            "pixels": {str(k): v for k, v in self.pixels.items()},
            "fragments": {str(k): v for k, v in self.fragments.items()},
            "fragment_info": {str(k): v for k, v in self.fragment_info.items()},
            "schema": self.schema, "warnings": self.warnings, "skipped": self.skipped,
            "failed": self.failed, "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict) -> UnitResult:
        return cls(
            key=data["key"], rows=data["rows"],
            pixels={int(k): v for k, v in data["pixels"].items()},
            fragments={int(k): v for k, v in data.get("fragments", {}).items()},
            fragment_info={int(k): [tuple(x) for x in v]
                           for k, v in data.get("fragment_info", {}).items()},
            schema=data["schema"], warnings=data["warnings"], skipped=data["skipped"],
            failed=data.get("failed"), seconds=data.get("seconds", 0.0),
        )

    def column_specs(self) -> dict[str, ColumnSpec]:
        return {k: ColumnSpec.from_json(v) for k, v in self.schema.items()}

    def fragment_paths(self, unit_dir: Path) -> dict[int, list[Path]]:
        """pixel -> the unit's sorted fragment files of that pixel."""
        return {p: [unit_dir / name for name in self.fragments.get(p, [fragment_name(p, 0)])]
                for p in self.pixels}

    def fragment_list(self, unit_dir: Path,
                      schema: dict[str, ColumnSpec]) -> dict[int, list[StagedFragment]]:
        """pixel -> ``(key, path, rows, first id, final types)`` of each of the unit's fragments
        of it; final types: the unit's columns have the types of ``schema``, the build's (rows
        and ids are read from the files only for a unit staged before they were recorded)."""
        specs = self.column_specs()
        final = sorted(specs) == sorted(schema) and all(
            specs[k].np_dtype.str == v.np_dtype.str and specs[k].shape == v.shape
            for k, v in schema.items())
        out = {}
        for pixel, paths in self.fragment_paths(unit_dir).items():
            info = self.fragment_info.get(pixel)
            if info is None or len(info) != len(paths):
                info = [_fragment_info(path) for path in paths]
            out[pixel] = [(self.key, path, int(n), first, final)
                          for path, (n, first) in zip(paths, info, strict=True)]
        return out


def _jsonable_id(value: Any) -> Any:
    return value.decode("latin-1") if isinstance(value, (bytes, np.bytes_)) else int(value)


def _fragment_info(path: Path) -> tuple[int, Any]:
    with h5py.File(path, "r") as h:
        ids = h["object_id"]
        return int(ids.shape[0]), _jsonable_id(ids[0]) if ids.shape[0] else None


STAGE_MEMORY_BYTES = 512 * 1024 * 1024  # rows one unit keeps in memory before a sorted run


def fragment_name(pixel: int, run: int) -> str:
    return f"pix-{pixel}.hdf5" if run == 0 else f"pix-{pixel}-run{run}.hdf5"


class UnitStager:
    """Holds one unit's batches in memory by pixel, then writes each pixel's rows, sorted, as
    a final-format fragment (see the module docstring). Memory: at most ``memory_bytes`` of
    rows plus one write block (``MERGE_BLOCK_BYTES``) per column being written.

    The stager keeps the arrays it is given until it writes them: a converter must not modify
    an array after yielding it (the convert hook says so)."""

    def __init__(self, staging_root: Path, key: str, attrs: dict[str, Any] | None = None,
                 compression: str | None = "auto", memory_bytes: int | None = None):
        self.final_dir = staging_root / key
        self.tmp_dir = layout.tmp_name(self.final_dir, tmp_token())
        self.tmp_dir.mkdir(parents=True)
        self.key = key
        self.attrs = dict(attrs or {})
        self.compression = compression
        self.memory_bytes = STAGE_MEMORY_BYTES if memory_bytes is None else memory_bytes
        self.schema: dict[str, ColumnSpec] | None = None
        self.pending: dict[int, list[dict[str, np.ndarray]]] = {}
        self.pending_bytes = 0
        self.fragments: dict[int, list[str]] = {}
        self.fragment_info: dict[int, list[tuple[int, Any]]] = {}
        self.rows: dict[int, int] = {}
        self.all_ids: list[np.ndarray] = []

    def add(self, batch: dict[str, Any], batch_index: int) -> None:
        where = f"unit {self.key}, batch {batch_index}"
        ids = batch.get("object_id") if isinstance(batch, dict) else None
        if ids is not None and len(ids):  # name the objects too: "batch 3" alone is hard to find
            where += f" (objects {_id_str(ids[0])} .. {_id_str(ids[-1])})"
        prepared = prepare_batch(batch, where)
        self.schema = merge_schema(self.schema, schema_of(prepared), where)
        self.all_ids.append(prepared["object_id"])
        pix = prepared["healpix"]
        pixels = np.unique(pix)
        if len(pixels) == 1:  # the common case: no copy of the batch
            self._keep(int(pixels[0]), prepared)
        else:
            for pixel in pixels:
                sel = pix == pixel
                self._keep(int(pixel), {k: v[sel] for k, v in prepared.items()})
        if self.pending_bytes > self.memory_bytes:
            self._write_pending()

    def _keep(self, pixel: int, rows: dict[str, np.ndarray]) -> None:
        self.pending.setdefault(pixel, []).append(rows)
        self.rows[pixel] = self.rows.get(pixel, 0) + len(rows["object_id"])
        self.pending_bytes += sum(a.nbytes for a in rows.values())

    def _write_pending(self) -> None:
        """Write every pixel's kept rows as one sorted fragment each, and forget them."""
        if not self.pending:
            return
        assert self.schema is not None
        for pixel in sorted(self.pending):
            batches = self.pending.pop(pixel)
            names = self.fragments.setdefault(pixel, [])
            path = self.tmp_dir / fragment_name(pixel, len(names))
            source = MemoryRows(batches)
            ensure_space(path, source.nbytes, f"staging unit {self.key}")
            _write_shard(path, source, self.schema, {**self.attrs, "healpix": pixel},
                         self.compression)
            names.append(path.name)
            self.fragment_info.setdefault(pixel, []).append((source.n, source.first_id))
        self.pending_bytes = 0

    def finish(self, result: UnitResult) -> UnitResult:
        """Write the fragments, DONE.json, and rename the unit folder into place."""
        try:
            return self._finish(result)
        except BaseException:
            self.abort()
            raise

    def _finish(self, result: UnitResult) -> UnitResult:
        ids = np.concatenate(self.all_ids) if self.all_ids else np.empty(0, np.int64)
        _check_unique(ids, f"unit {self.key}")
        self._write_pending()
        np.save(self.tmp_dir / IDS_NAME, ids.astype(ids.dtype.str))  # drop h5py dtype metadata
        result.rows = int(len(ids))
        result.pixels = dict(self.rows)
        result.fragments = {p: list(v) for p, v in self.fragments.items()}
        result.fragment_info = {p: list(v) for p, v in self.fragment_info.items()}
        result.schema = {k: v.to_json() for k, v in (self.schema or {}).items()}
        (self.tmp_dir / DONE_NAME).write_text(json.dumps(result.to_json()))
        if self.final_dir.exists():  # a previous run finished it after all; keep that one
            shutil.rmtree(self.tmp_dir)
        else:
            os.rename(self.tmp_dir, self.final_dir)
        return result

    def abort(self) -> None:
        self.pending.clear()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def write_skipped_unit(staging_root: Path, result: UnitResult) -> None:
    """Record a unit skipped under --skip-bad, so a rerun does not retry it."""
    final_dir = staging_root / result.key
    tmp = layout.tmp_name(final_dir, tmp_token())
    tmp.mkdir(parents=True)
    np.save(tmp / IDS_NAME, np.empty(0, np.int64))
    (tmp / DONE_NAME).write_text(json.dumps(result.to_json()))
    if not final_dir.exists():
        os.rename(tmp, final_dir)
    else:
        shutil.rmtree(tmp)


def read_unit_result(staging_root: Path, key: str) -> UnitResult | None:
    done = staging_root / key / DONE_NAME
    if not done.is_file():
        return None
    return UnitResult.from_json(json.loads(done.read_text()))


def _check_unique(ids: np.ndarray, where: str) -> None:
    if len(ids) < 2:
        return
    s = np.sort(ids)
    dup = s[1:] == s[:-1]
    if dup.any():
        raise BuildError(f"{where}: object {_id_str(s[1:][dup][0])} appears more than once")


# ---- row sources: what _write_shard reads, in sorted order -------------------------------
_SCRATCH = threading.local()  # per thread: two writers in one process never share a buffer


def scratch(role: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A buffer reused across blocks, columns and files (one per role and thread). Fresh large
    arrays come from new ``mmap`` pages that the kernel faults in and zeroes on first touch:
    measured, the HSC sample build spent 4.3 s in the kernel with 61,000 page faults, 2.6 s
    with buffers kept (at most two ``MERGE_BLOCK_BYTES`` buffers per thread)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffers = _SCRATCH.__dict__
    buf = buffers.get(role)
    if buf is None or buf.nbytes < nbytes:
        buf = buffers[role] = np.empty(max(nbytes, 1), np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


class MemoryRows:
    """One pixel's rows of one unit, held in memory as the converter's batches, served in
    ``object_id`` order."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self.batches = batches
        ids = np.concatenate([b["object_id"] for b in batches])
        order = np.argsort(ids, kind="stable")
        starts = np.cumsum([0] + [len(b["object_id"]) for b in batches])
        self.n = len(order)
        self.nbytes = sum(a.nbytes for b in batches for a in b.values())
        self.sorted = bool(np.all(order[1:] > order[:-1])) if self.n else True
        self.batch_of = np.searchsorted(starts, order, side="right") - 1
        self.row_of = order - starts[self.batch_of]
        self.first_id = _jsonable_id(ids[order[0]]) if self.n else None

    def block(self, name: str, a: int, b: int, out: np.ndarray) -> np.ndarray:
        """Rows ``a:b`` (in sorted order) of column ``name``; ``out`` may be filled and returned,
        or a view of the kept array returned instead (when the rows sit in order in one batch)."""
        f_blk, r_blk = self.batch_of[a:b], self.row_of[a:b]
        if self.sorted:  # the batches' rows are already in order: runs of whole slices
            cuts = [0, *(np.flatnonzero(f_blk[1:] != f_blk[:-1]) + 1).tolist(), len(f_blk)]
            if len(cuts) == 2 and self.batches[int(f_blk[0])][name].dtype == out.dtype:
                lo = int(r_blk[0])
                return self.batches[int(f_blk[0])][name][lo:lo + len(f_blk)]  # no copy
            for i, j in zip(cuts[:-1], cuts[1:], strict=True):
                lo = int(r_blk[i])
                out[i:j] = self.batches[int(f_blk[i])][name][lo:lo + j - i]
            return out
        for f in np.unique(f_blk):
            sel = f_blk == f
            out[sel] = self.batches[f][name][r_blk[sel]]
        return out


class FragmentRows:
    """The rows of several sorted fragments of one pixel, merged in ``object_id`` order."""

    def __init__(self, handles: list[tuple[str, h5py.File]], frag_of: np.ndarray,
                 row_of: np.ndarray):
        self.handles, self.frag_of, self.row_of = handles, frag_of, row_of
        self.n = len(frag_of)

    def part(self, a: int, b: int) -> FragmentRows:
        return FragmentRows(self.handles, self.frag_of[a:b], self.row_of[a:b])

    def block(self, name: str, a: int, b: int, out: np.ndarray) -> np.ndarray:
        f_blk, r_blk = self.frag_of[a:b], self.row_of[a:b]
        for f in np.unique(f_blk):
            sel = f_blk == f
            rows = r_blk[sel]
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            # Sorted fragments merged in order: each fragment's rows form one slice.
            assert hi - lo == len(rows), "fragment rows are not contiguous"
            ds = self.handles[f][1][name]
            if len(rows) == len(f_blk) and ds.dtype == out.dtype:  # one fragment: read in place
                ds.read_direct(out, np.s_[lo:hi])
                return out
            part = scratch("read", ds.dtype, (hi - lo, *ds.shape[1:]))
            ds.read_direct(part, np.s_[lo:hi])
            out[sel] = part
        return out


# ---- merge: fragments -> final pixel files ----------------------------------------------
@dataclass
class PixelResult:
    pixel: int
    files: list[dict]  # relpath, rows, bytes, sha256, min_id, max_id


PARTS_DIR = "_pixels"  # under the staging folder: finished files of pixels not yet complete


def file_count(rows: int, schema: dict[str, ColumnSpec], max_file_bytes: int) -> int:
    """How many files ``rows`` merged rows of a pixel are split into (docs/format.md)."""
    row_bytes = sum(spec.row_bytes for spec in schema.values())
    n_files = max(1, math.ceil(rows * row_bytes / max(1, max_file_bytes)))
    return min(n_files, max(1, rows))


# A pixel's fragment holding at least this fraction of the size budget (and at most all of
# it) becomes one of the pixel's files as it is, hard-linked: its rows are written once.
# Smaller fragments are merged, so a unit that grazes a pixel with a few rows adds no file.
LINK_MIN_FRACTION = 1 / 16

Fragment = tuple[str, Path]  # (unit key, path of a sorted final-format fragment)
StagedFragment = tuple[str, Path, int, Any, bool]  # ... its rows, first id, final types
FilePlan = tuple[list[Fragment], tuple[int, int]]  # fragments, part (k of m of their rows)


def plan_pixel_files(staged: list[StagedFragment], schema: dict[str, ColumnSpec],
                     max_file_bytes: int) -> list[FilePlan]:
    """The files of one pixel, in order: for each, the fragments whose rows it holds and which
    part ``(k, m)`` of their merged sorted rows (docs/format.md). Every fragment of the build's
    column types holding between ``LINK_MIN_FRACTION`` of the budget and all of it is a file of
    its own (hard-linked, see :func:`write_pixel_file`), in the order of their first ids; the
    other fragments' rows are merged and split under the budget. One fragment that fits is
    the pixel's only file. Decided from the units' records: no file is opened."""
    row_bytes = sum(spec.row_bytes for spec in schema.values())
    rows = sum(f[2] for f in staged)
    whole = [([f[:2] for f in staged], (k, n))
             for n in [file_count(rows, schema, max_file_bytes)] for k in range(1, n + 1)]
    if len(staged) < 2:
        return whole
    own = [f for f in staged
           if f[4] and f[2] and LINK_MIN_FRACTION * max_file_bytes <= f[2] * row_bytes
           <= max_file_bytes]
    if not own:
        return whole
    rest = [f for f in staged if f not in own]
    plan: list[FilePlan] = [([f[:2]], (1, 1)) for f in sorted(own, key=lambda f: f[3])]
    if rest:
        m = file_count(sum(f[2] for f in rest), schema, max_file_bytes)
        plan += [([f[:2] for f in rest], (k, m)) for k in range(1, m + 1)]
    return plan


def write_pixel_file(
    parts_dir: Path,
    pixel: int,
    index: int,
    count: int,
    fragments: list[Fragment],
    schema: dict[str, ColumnSpec],
    attrs: dict[str, Any],
    compression: str | None = "auto",
    part: tuple[int, int] | None = None,
    checksum: bool = True,
) -> dict:
    """Write file ``index`` of ``count`` of one pixel into ``parts_dir/healpix=N/``: part
    ``part`` (k of m; default ``(index, count)``) of the merged sorted rows of ``fragments``
    (one task: the files of a pixel are written in parallel), and return its manifest entry.
    One fragment that is the whole part and already a final file is hard-linked, not
    rewritten. Finished files are kept, so a rerun skips them. ``checksum=False`` leaves the
    entry's ``sha256`` None, for the caller to fill (``fill_checksums``)."""
    folder = parts_dir / layout.pixel_dirname(pixel)
    path = folder / layout.file_name(index, count)
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = layout.tmp_name(path, tmp_token())
        try:
            _write_pixel_file(tmp, pixel, part or (index, count), fragments, schema, attrs,
                              compression)
            os.rename(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    shard = layout.parse_relpath(f"{folder.name}/{path.name}")
    with h5py.File(path, "r") as h:
        rows = int(h["object_id"].shape[0])
    return {"path": shard.relpath, "pixel": pixel, "rows": rows, "bytes": path.stat().st_size,
            "sha256": sha256_of(path) if checksum else None}


def fill_checksums(folder: Path, entries: list[dict], threads: int | None = None) -> None:
    """Set the missing ``sha256`` of manifest entries (paths relative to ``folder``), several
    files at a time: hashlib releases the GIL, so threads hash on every core (a build running
    its tasks inline spent a sixth of its time hashing its 1.1 GB of files on one core)."""
    from concurrent.futures import ThreadPoolExecutor

    todo = [e for e in entries if e.get("sha256") is None]
    if not todo:
        return
    with ThreadPoolExecutor(max(1, threads or os.cpu_count() or 1)) as pool:
        for entry, digest in zip(todo, pool.map(lambda e: sha256_of(folder / e["path"]), todo),
                                 strict=True):
            entry["sha256"] = digest


def _write_pixel_file(path: Path, pixel: int, part: tuple[int, int],
                      fragments: list[Fragment], schema: dict[str, ColumnSpec],
                      attrs: dict[str, Any], compression: str | None) -> None:
    final_attrs = {**attrs, "healpix": pixel}
    handles = [(key, h5py.File(p, "r")) for key, p in fragments]
    try:
        if part == (1, 1) and len(handles) == 1 and _is_final(handles[0][1], schema, final_attrs):
            handles[0][1].close()
            _link_or_copy(fragments[0][1], path)
            return
        ids = [h["object_id"][...] for _, h in handles]
        frag_of = np.concatenate([np.full(len(a), i, np.int32) for i, a in enumerate(ids)])
        row_of = np.concatenate([np.arange(len(a), dtype=np.int64) for a in ids])
        all_ids = np.concatenate(ids) if ids else np.empty(0, np.int64)
        if all_ids.dtype.kind == "S":
            all_ids = all_ids.astype(schema["object_id"].np_dtype)
        order = np.argsort(all_ids, kind="stable")
        sorted_ids = all_ids[order]
        dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
        if len(dup):
            a, b = order[dup[0]], order[dup[0] + 1]
            raise BuildError(
                f"object {_id_str(sorted_ids[dup[0]])} appears in units "
                f"{handles[frag_of[a]][0]!r} and {handles[frag_of[b]][0]!r} (pixel {pixel})"
            )
        k, m = part
        bounds = np.linspace(0, len(order), m + 1).astype(np.int64)
        lo, hi = int(bounds[k - 1]), int(bounds[k])
        rows = FragmentRows(handles, frag_of[order][lo:hi], row_of[order][lo:hi])
        # at most the rows' bytes (compression only shrinks them), checked before any write
        ensure_space(path, (hi - lo) * sum(sp.row_bytes for sp in schema.values()),
                     f"writing pixel {pixel}")
        _write_shard(path, rows, schema, final_attrs, compression)
    finally:
        for _, h in handles:
            h.close()


def finish_pixel(dataset_dir: Path, parts_dir: Path, pixel: int) -> None:
    """Move a pixel whose files are all written into place: ``healpix=N/`` appears whole."""
    final_dir = dataset_dir / layout.pixel_dirname(pixel)
    if not final_dir.is_dir():
        os.rename(parts_dir / layout.pixel_dirname(pixel), final_dir)


def merge_pixel(
    dataset_dir: Path,
    pixel: int,
    fragments: list[StagedFragment],
    schema: dict[str, ColumnSpec],
    attrs: dict[str, Any],
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    compression: str | None = "auto",
) -> PixelResult:
    """Write the final files ``healpix=N/i-of-n.hdf5`` of one pixel from its sorted staging
    fragments (``UnitResult.fragment_list``), in this process (builds run
    :func:`write_pixel_file` as parallel tasks)."""
    final_dir = dataset_dir / layout.pixel_dirname(pixel)
    if final_dir.is_dir():
        return PixelResult(pixel, describe_pixel_files(dataset_dir, pixel, checksums=True))
    parts = dataset_dir / layout.STAGING_DIR / PARTS_DIR
    plan = plan_pixel_files(fragments, schema, max_file_bytes)
    files = [write_pixel_file(parts, pixel, i, len(plan), frags, schema, attrs, compression,
                              part)
             for i, (frags, part) in enumerate(plan, start=1)]
    finish_pixel(dataset_dir, parts, pixel)
    return PixelResult(pixel, files)


def _is_final(h: h5py.File, schema: dict[str, ColumnSpec], attrs: dict[str, Any]) -> bool:
    """Whether a staged fragment already is the pixel's final file: the build's final columns
    and dtypes (a unit's strings may be narrower, its integers smaller) and attributes."""
    names = [k for k, v in h.items() if isinstance(v, h5py.Dataset)]
    if sorted(names) != sorted(schema):
        return False
    for name in names:
        ds, spec = h[name], schema[name]
        if ds.dtype.str != spec.np_dtype.str or tuple(ds.shape[1:]) != spec.shape:
            return False
    want = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in attrs.items()}
    have = dict(h.attrs)
    return set(have) == set(want) and all(_same_attr(have[k], want[k]) for k in want)


def _same_attr(have: Any, want: Any) -> bool:
    if isinstance(have, bytes):
        have = have.decode()
    if isinstance(have, np.generic):
        have = have.item()
    return have == want


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copyfile(src, dst)


def _write_shard(
    path: Path,
    rows: MemoryRows | FragmentRows,
    schema: dict[str, ColumnSpec],
    attrs: dict[str, Any],
    compression: str | None,
) -> None:
    """Write one final file from ``rows`` (sorted): uncompressed columns contiguous (read
    through memory maps) with a digest per block of rows, compressed ones chunked with
    Fletcher32 (docs/format.md)."""
    n = rows.n
    with h5py.File(path, "w", libver=FILE_LIBVER) as out:
        for key, value in attrs.items():
            out.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
        for name in sorted(schema, key=_column_order):
            spec = schema[name]
            per_block = block_rows(spec.row_bytes)
            # whole checksum blocks per write step, so each block is hashed from memory once
            step = max(per_block,
                       MERGE_BLOCK_BYTES // max(spec.row_bytes, 1) // per_block * per_block)
            ds = None
            sums: list[np.ndarray] = []
            buffer = scratch("block", spec.np_dtype, (min(step, n), *spec.shape))
            for a in range(0, n, step):
                b = min(n, a + step)
                block = rows.block(name, a, b, buffer[: b - a])
                if ds is None:  # the first block decides compression ("auto" samples it)
                    ds = create_column(out, name, spec, n, compression, block)
                ds[a:b] = block
                if ds.chunks is None:
                    sums.append(digests(block, per_block))
            if ds is None:
                ds = create_column(out, name, spec, 0, compression, None)
            if ds.chunks is None:
                write_digests(ds, np.concatenate(sums) if sums else np.empty(0, np.uint64),
                              per_block)


def create_column(out: h5py.File, name: str, spec: ColumnSpec, n: int,
                  compression: str | None, sample: np.ndarray | None) -> h5py.Dataset:
    """A final file's dataset for one column: chunked, compressed and Fletcher32-checked where
    compression pays (``compression_for``), else contiguous (its digests are the caller's)."""
    packing = compression_for(spec, compression, sample, n) if n else {}
    if packing:
        return out.create_dataset(name, shape=(n, *spec.shape), dtype=spec.np_dtype,
                                  chunks=chunk_shape(spec, n), fletcher32=True, **packing)
    return out.create_dataset(name, shape=(n, *spec.shape), dtype=spec.np_dtype)


def _column_order(name: str) -> tuple[int, str]:
    first = {"object_id": 0, "ra": 1, "dec": 2, "healpix": 3}
    return (first.get(name, 4), name)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe_pixel_files(dataset_dir: Path, pixel: int, checksums: bool) -> list[dict]:
    out = []
    pixel_dir = dataset_dir / layout.pixel_dirname(pixel)
    for f in sorted(pixel_dir.iterdir()):
        shard = layout.parse_relpath(f"{pixel_dir.name}/{f.name}")
        if shard is None:
            continue
        with h5py.File(f, "r") as h:
            rows = int(h["object_id"].shape[0])
        out.append({
            "path": shard.relpath, "pixel": pixel, "rows": rows,
            "bytes": f.stat().st_size, "sha256": sha256_of(f) if checksums else None,
        })
    return out


def write_rows(
    dataset_dir: Path,
    batches: Iterable[dict[str, Any]],
    attrs: dict[str, Any],
    key: str = "rows",
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> dict[str, ColumnSpec]:
    """Stage and merge an iterable of batches in one process (used by the core's own
    derived datasets, e.g. cross-match outputs). Returns the schema written."""
    staging = dataset_dir / layout.STAGING_DIR
    stager = UnitStager(staging, key, attrs)
    try:
        for i, batch in enumerate(batches):
            stager.add(batch, i)
    except BaseException:
        stager.abort()
        raise
    result = stager.finish(UnitResult(key=key))
    schema = result.column_specs()
    for pixel, staged in sorted(result.fragment_list(staging / key, schema).items()):
        merge_pixel(dataset_dir, pixel, staged, schema, attrs, max_file_bytes)
    return schema
