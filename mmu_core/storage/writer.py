"""The sharder: row batches -> per-pixel HDF5 files, written atomically.

Two steps, each resumable:

1. **Stage** (one task per unit of work): the unit's batches are checked, given their HEALPix
   pixel and appended to one staging fragment per pixel. At the end each fragment is sorted by
   ``object_id`` and the whole unit folder is renamed into place with a ``DONE.json`` — a unit
   is finished exactly when that folder exists.
2. **Merge** (one task per pixel): the sorted fragments of every unit that touched the pixel
   are merged (a k-way merge: each output block reads one contiguous slice of each fragment),
   split into ``i-of-n`` files under the size budget, and the pixel folder is renamed into
   place — a pixel is finished exactly when ``healpix=N/`` exists.

Temporary names start with a dot and carry ``.tmp-``; nothing under a final name is ever
partial, and a rerun deletes leftovers and redoes only what has no final name.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
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


def _token() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def atomic_write_text(path: Path, text: str) -> None:
    tmp = layout.tmp_name(path, _token())
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
    schema: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    failed: str | None = None  # set when the whole unit was skipped (--skip-bad)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "key": self.key, "rows": self.rows,
            "pixels": {str(k): v for k, v in self.pixels.items()},
            "schema": self.schema, "warnings": self.warnings, "skipped": self.skipped,
            "failed": self.failed, "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict) -> UnitResult:
        return cls(
            key=data["key"], rows=data["rows"],
            pixels={int(k): v for k, v in data["pixels"].items()},
            schema=data["schema"], warnings=data["warnings"], skipped=data["skipped"],
            failed=data.get("failed"), seconds=data.get("seconds", 0.0),
        )

    def column_specs(self) -> dict[str, ColumnSpec]:
        return {k: ColumnSpec.from_json(v) for k, v in self.schema.items()}


class UnitStager:
    """Appends one unit's batches to per-pixel fragments in a temporary folder."""

    def __init__(self, staging_root: Path, key: str):
        self.final_dir = staging_root / key
        self.tmp_dir = layout.tmp_name(self.final_dir, _token())
        self.tmp_dir.mkdir(parents=True)
        self.key = key
        self.schema: dict[str, ColumnSpec] | None = None
        self.files: dict[int, h5py.File] = {}
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
            self._append(int(pixels[0]), prepared)
            return
        for pixel in pixels:
            sel = pix == pixel
            self._append(int(pixel), {k: v[sel] for k, v in prepared.items()})

    def _append(self, pixel: int, rows: dict[str, np.ndarray]) -> None:
        f = self.files.get(pixel)
        n = len(rows["object_id"])
        ensure_space(self.tmp_dir / f"raw-{pixel}.hdf5", sum(a.nbytes for a in rows.values()),
                     f"staging unit {self.key}")
        if f is None:
            f = self.files[pixel] = h5py.File(self.tmp_dir / f"raw-{pixel}.hdf5", "w")
            self.rows[pixel] = 0
        start = self.rows[pixel]
        for name, arr in rows.items():
            if name not in f:
                spec = ColumnSpec(arr.dtype.str, tuple(arr.shape[1:]))
                # Staging is compressed where it pays (padded cubes, masks): it can be large.
                f.create_dataset(
                    name, shape=(0, *spec.shape), maxshape=(None, *spec.shape),
                    dtype=arr.dtype, chunks=chunk_shape(spec, 1 << 20),
                    **compression_for(spec, "auto", arr[:8]),
                )
            ds = f[name]
            if ds.dtype.kind == "S" and arr.dtype.itemsize > ds.dtype.itemsize:
                ds = _widen_strings(f, name, arr.dtype.itemsize)
            ds.resize(start + n, axis=0)
            ds[start:] = arr
        self.rows[pixel] = start + n

    def finish(self, result: UnitResult) -> UnitResult:
        """Sort each fragment by object_id, write DONE.json, rename into place."""
        try:
            return self._finish(result)
        except BaseException:
            self.abort()
            raise

    def _finish(self, result: UnitResult) -> UnitResult:
        for f in self.files.values():
            f.close()
        ids = np.concatenate(self.all_ids) if self.all_ids else np.empty(0, np.int64)
        _check_unique(ids, f"unit {self.key}")
        for pixel in self.files:
            _sort_fragment(self.tmp_dir / f"raw-{pixel}.hdf5", self.tmp_dir / f"pix-{pixel}.hdf5")
        np.save(self.tmp_dir / IDS_NAME, ids.astype(ids.dtype.str))  # drop h5py dtype metadata
        result.rows = int(len(ids))
        result.pixels = dict(self.rows)
        result.schema = {k: v.to_json() for k, v in (self.schema or {}).items()}
        (self.tmp_dir / DONE_NAME).write_text(json.dumps(result.to_json()))
        if self.final_dir.exists():  # a previous run finished it after all; keep that one
            shutil.rmtree(self.tmp_dir)
        else:
            os.rename(self.tmp_dir, self.final_dir)
        return result

    def abort(self) -> None:
        for f in self.files.values():
            try:
                f.close()
            except Exception:  # noqa: BLE001 - best effort while failing
                pass
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def write_skipped_unit(staging_root: Path, result: UnitResult) -> None:
    """Record a unit skipped under --skip-bad, so a rerun does not retry it."""
    final_dir = staging_root / result.key
    tmp = layout.tmp_name(final_dir, _token())
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


def _widen_strings(f: h5py.File, name: str, width: int) -> h5py.Dataset:
    old = f[name][...]
    del f[name]
    spec = ColumnSpec(f"|S{width}", tuple(old.shape[1:]))
    ds = f.create_dataset(name, shape=old.shape, maxshape=(None, *spec.shape),
                          dtype=spec.np_dtype, chunks=chunk_shape(spec, 1 << 20))
    ds[...] = old.astype(spec.np_dtype)
    return ds


def _check_unique(ids: np.ndarray, where: str) -> None:
    if len(ids) < 2:
        return
    s = np.sort(ids)
    dup = s[1:] == s[:-1]
    if dup.any():
        raise BuildError(f"{where}: object {_id_str(s[1:][dup][0])} appears more than once")


def _sort_fragment(src: Path, dst: Path) -> None:
    ensure_space(dst, src.stat().st_size, "sorting a staged fragment")
    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        order = np.argsort(fin["object_id"][...], kind="stable")
        n = len(order)
        for name, ds in fin.items():
            spec = ColumnSpec(ds.dtype.str, tuple(ds.shape[1:]))
            packing = ({"compression": ds.compression, "compression_opts": ds.compression_opts,
                        "shuffle": ds.shuffle} if n and ds.compression else {})
            out = fout.create_dataset(name, shape=ds.shape, dtype=ds.dtype,
                                      chunks=chunk_shape(spec, max(n, 1)) if n else None,
                                      **packing)
            # One column at a time keeps memory to one column of one fragment.
            step = max(1, MERGE_BLOCK_BYTES // max(spec.row_bytes, 1))
            if n * spec.row_bytes <= 4 * MERGE_BLOCK_BYTES:
                if n:
                    out[...] = ds[...][order]
            else:
                for a in range(0, n, step):
                    rows = order[a : a + step]
                    out[a : a + len(rows)] = _gather_rows(ds, rows)
    src.unlink()


def _gather_rows(ds: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """ds[rows] for an arbitrary (unsorted, unique) row list, via a sorted read."""
    order = np.argsort(rows)
    data = ds[np.sort(rows)]
    out = np.empty_like(data)
    out[order] = data
    return out


# ---- merge: fragments -> final pixel files ----------------------------------------------
@dataclass
class PixelResult:
    pixel: int
    files: list[dict]  # relpath, rows, bytes, sha256, min_id, max_id


def merge_pixel(
    dataset_dir: Path,
    pixel: int,
    fragments: list[tuple[str, Path]],
    schema: dict[str, ColumnSpec],
    attrs: dict[str, Any],
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    compression: str | None = "auto",
) -> PixelResult:
    """Merge the sorted staging fragments of one pixel into ``healpix=N/i-of-n.hdf5``."""
    final_dir = dataset_dir / layout.pixel_dirname(pixel)
    if final_dir.is_dir():
        return PixelResult(pixel, describe_pixel_files(dataset_dir, pixel, checksums=True))
    handles = [(key, h5py.File(path, "r")) for key, path in fragments]
    try:
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
        frag_of, row_of = frag_of[order], row_of[order]
        n = len(order)
        row_bytes = sum(spec.row_bytes for spec in schema.values())
        n_files = max(1, math.ceil(n * row_bytes / max(1, max_file_bytes)))
        n_files = min(n_files, max(1, n))
        bounds = np.linspace(0, n, n_files + 1).astype(np.int64)
        tmp_dir = layout.tmp_name(final_dir, _token())
        # at most the rows' bytes (compression only shrinks them), checked before any write
        ensure_space(final_dir, n * row_bytes, f"merging pixel {pixel}")
        tmp_dir.mkdir(parents=True)
        try:
            for i in range(n_files):
                a, b = int(bounds[i]), int(bounds[i + 1])
                path = tmp_dir / layout.file_name(i + 1, n_files)
                _write_shard(path, handles, frag_of[a:b], row_of[a:b], schema,
                             {**attrs, "healpix": pixel, "file_index": i + 1,
                              "file_count": n_files}, compression)
            os.rename(tmp_dir, final_dir)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
    finally:
        for _, h in handles:
            h.close()
    return PixelResult(pixel, describe_pixel_files(dataset_dir, pixel, checksums=True))


def _write_shard(
    path: Path,
    handles: list[tuple[str, h5py.File]],
    frag_of: np.ndarray,
    row_of: np.ndarray,
    schema: dict[str, ColumnSpec],
    attrs: dict[str, Any],
    compression: str | None,
) -> None:
    """Write one final file: uncompressed columns contiguous (read through memory maps) with
    a digest per block of rows, compressed ones chunked with Fletcher32 (docs/format.md)."""
    n = len(frag_of)
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
            for a in range(0, n, step):
                b = min(n, a + step)
                block = np.empty((b - a, *spec.shape), dtype=spec.np_dtype)
                f_blk, r_blk = frag_of[a:b], row_of[a:b]
                for f in np.unique(f_blk):
                    sel = f_blk == f
                    rows = r_blk[sel]
                    lo, hi = int(rows[0]), int(rows[-1]) + 1
                    # Sorted fragments merged in order: each fragment's rows form one slice.
                    assert hi - lo == len(rows), "fragment rows are not contiguous"
                    block[sel] = handles[f][1][name][lo:hi]
                if ds is None:  # the first block decides compression ("auto" samples it)
                    ds = create_column(out, name, spec, n, compression, block[:64])
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
    packing = compression_for(spec, compression, sample) if n else {}
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
    stager = UnitStager(staging, key)
    try:
        for i, batch in enumerate(batches):
            stager.add(batch, i)
    except BaseException:
        stager.abort()
        raise
    result = stager.finish(UnitResult(key=key))
    schema = result.column_specs()
    for pixel in sorted(result.pixels):
        merge_pixel(dataset_dir, pixel, [(key, staging / key / f"pix-{pixel}.hdf5")], schema,
                    attrs, max_file_bytes)
    return schema
