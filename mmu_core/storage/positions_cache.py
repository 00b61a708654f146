"""Positions sidecars for dataset folders that have none (MMU v1 files), kept in a cache.

A folder built by mmu carries its positions sidecar in ``_index/``
(:mod:`mmu_core.storage.index`): ``object_id``, ``ra`` and ``dec`` of every row in file order,
which cross-matching reads instead of opening every pixel file. A folder of third-party files
(MMU v1: no manifest, no ``_index/``) has none and may be read-only, so its sidecar is made
by reading the files once -- on several processes: h5py holds one global lock, so threads
would read one file at a time -- and kept outside the folder, in a cache::

    <cache>/positions/<folder key>/<content key>/
        pos_id.npy  pos_ra.npy  pos_dec.npy  pos_offset.npy  entry.json

- ``<cache>`` is ``$MMU_CACHE``, else ``$XDG_CACHE_HOME/mmu``, else ``~/.cache/mmu``.
- The folder key hashes the folder's resolved path; the content key hashes every file's
  (relative path, size, mtime_ns), so a changed, added or removed file gives another content
  key: the old entry is not found, a new one is made and the stale one removed.
- An entry is written under a temporary name and renamed into place once complete, so
  readers see whole entries only. ``entry.json`` records the folder, the row counts and the
  XXH3-64 digest of each array; an entry whose files, dtypes, row counts or digests disagree
  is ignored and made again, never trusted.
- When no entry can be written (the cache is not writable, or ids are not numbers or
  fixed-width bytes) the caller reads the pixel files instead: slower, same result.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xxhash

from mmu_core.processes import pool_options
from mmu_core.storage import layout
from mmu_core.storage.index import (
    POSITION_FILES,
    PositionsReadError,
    load_position_files,
    load_positions,
    read_file_positions,
)

ENTRY_VERSION = 1
ENTRY_FILE = "entry.json"
POSITIONS_DIR = "positions"
# Below this many files, reading them here beats starting processes. Measured on 2 cores
# with 6,144 small files: 1.8 s here, 1.4 s on two processes (~0.3 s of it starting them),
# 2.3-2.8 s on two threads (h5py's global lock: a thread reads while the other waits).
PARALLEL_MIN_FILES = 3000
STALE_TMP_SECONDS = 24 * 3600  # temporary entries older than this are leftovers of a crash


def cache_root() -> Path:
    """mmu's cache folder: ``$MMU_CACHE``, else ``$XDG_CACHE_HOME/mmu`` (an absolute path, as
    the XDG base directory specification requires), else ``~/.cache/mmu``."""
    env = os.environ.get("MMU_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "mmu"


@dataclass(frozen=True)
class Folder:
    """A dataset folder's files as its reader lists them (``Dataset.relpaths``,
    ``file_rows`` and the ``object_id`` dtype of ``schema``)."""

    path: Path
    relpaths: tuple[str, ...]
    rows: tuple[int, ...]
    id_dtype: str

    @classmethod
    def of(cls, path: Path | str, relpaths: Sequence[str], rows: Sequence[int],
           id_dtype: str) -> Folder:
        return cls(Path(path).resolve(), tuple(relpaths), tuple(int(n) for n in rows),
                   str(id_dtype))


FileStat = tuple[str, int, int]  # (relative path, size, mtime_ns)


def _stats(folder: Folder) -> list[FileStat]:
    out = []
    for rel in folder.relpaths:
        st = os.stat(folder.path / rel)
        out.append((rel, st.st_size, st.st_mtime_ns))
    return out


def entry_path(folder: Folder, stats: list[FileStat] | None = None) -> Path:
    """Where the cache keeps (or would keep) the folder's sidecar for its files as they are."""
    stats = _stats(folder) if stats is None else stats
    folder_key = hashlib.sha256(str(folder.path).encode()).hexdigest()[:32]
    content = json.dumps([ENTRY_VERSION, folder.id_dtype, stats]).encode()
    return (cache_root() / POSITIONS_DIR / folder_key
            / hashlib.sha256(content).hexdigest()[:32])


def _digest(a: np.ndarray) -> int:
    return xxhash.xxh3_64_intdigest(np.ascontiguousarray(a).view(np.uint8)) if a.size else 0


def valid_entry(entry: Path, folder: Folder) -> bool:
    """Whether ``entry`` holds the folder's sidecar whole: its record names the folder, and
    the arrays have the expected dtypes, the folder's row counts and the recorded digests."""
    try:
        meta = json.loads((entry / ENTRY_FILE).read_text())
        arrays = load_position_files(entry)
        if (arrays is None or meta.get("version") != ENTRY_VERSION
                or meta.get("folder") != str(folder.path)
                or meta.get("id_dtype") != folder.id_dtype):
            return False
        ids, ra, dec, offsets = arrays
        n = sum(folder.rows)
        if (ids.dtype != np.dtype(folder.id_dtype) or ra.dtype != np.float64
                or dec.dtype != np.float64 or offsets.dtype != np.int64
                or any(a.shape != (n,) for a in (ids, ra, dec))
                or not np.array_equal(offsets, np.r_[0, np.cumsum(folder.rows)])):
            return False
        digests = meta["xxh3"]
        return all(int(digests[name]) == _digest(a)
                   for name, a in zip(POSITION_FILES, arrays, strict=True))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _cacheable(folder: Folder) -> bool:
    return np.dtype(folder.id_dtype).kind in "iuS"


@dataclass
class _Pending:
    """An entry being written: its temporary folder, the files' stats it is keyed on, and
    where the values of its three arrays start in their .npy files."""

    folder: Folder
    stats: list[FileStat]
    final: Path
    tmp: Path
    targets: list[tuple[str, int, str]]  # (.npy path, byte offset of the values, dtype)


def _allocate(path: Path, dtype: np.dtype, n: int) -> tuple[str, int, str]:
    """An .npy file of ``n`` values (a header, then room for them); returns (path, where the
    values start, dtype) for :func:`fill`."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {
            "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)})
        start = f.tell()
        f.truncate(start + n * dtype.itemsize)
    return str(path), start, dtype.str


def _prepare(folder: Folder, stats: list[FileStat], final: Path) -> _Pending:
    tmp = layout.tmp_name(final, f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    n = sum(folder.rows)
    try:
        targets = [_allocate(tmp / name, np.dtype(dtype), n) for name, dtype in
                   zip(POSITION_FILES[:3], (folder.id_dtype, np.float64, np.float64),
                       strict=True)]
        np.save(tmp / POSITION_FILES[3], np.r_[0, np.cumsum(folder.rows)].astype(np.int64))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _Pending(folder, stats, final, tmp, targets)


Job = tuple[str, int, int, int, int]  # (absolute path, first row, rows, size, mtime_ns)


def fill(targets: list[tuple[str, int, str]], jobs: list[Job]) -> int:
    """Task: read object_id, ra and dec of some files (HDF5 converting them to the arrays'
    dtypes) and write them at each file's rows of an entry being written; a file whose size
    or mtime changed from the entry's key is an error. Plain writes rather than memory maps:
    a full disk raises instead of killing the process. Returns the rows read."""
    fds = [os.open(path, os.O_WRONLY) for path, _, _ in targets]
    try:
        total = 0
        for path, first, rows, size, mtime_ns in jobs:
            out = tuple(np.empty(rows, dtype) for _, _, dtype in targets)
            read_file_positions(path, out, rows)
            st = os.stat(path)
            if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
                raise PositionsReadError(f"{path} changed while its positions were read")
            for fd, (_, start, _), values in zip(fds, targets, out, strict=True):
                data, at = memoryview(values).cast("B"), start + first * values.itemsize
                while data:
                    k = os.pwrite(fd, data, at)
                    data, at = data[k:], at + k
            total += rows
        return total
    finally:
        for fd in fds:
            os.close(fd)


def _jobs(p: _Pending, parts: int) -> list[list[Job]]:
    """The entry's files in ``parts`` runs of consecutive files of about equal rows."""
    starts = np.r_[0, np.cumsum(p.folder.rows)].astype(np.int64)
    jobs = [(str(p.folder.path / rel), int(starts[i]), int(p.folder.rows[i]), size, mtime)
            for i, (rel, size, mtime) in enumerate(p.stats)]
    cuts = np.searchsorted(starts[1:], np.linspace(0, starts[-1], parts + 1)[1:-1], "right")
    bounds = np.unique(np.r_[0, cuts, len(jobs)])
    return [jobs[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _finish(p: _Pending) -> Path:
    """Record the digests, rename the entry into place and remove the folder's stale ones."""
    arrays = load_position_files(p.tmp)
    meta = {"version": ENTRY_VERSION, "folder": str(p.folder.path), "files": len(p.stats),
            "rows": int(sum(p.folder.rows)), "id_dtype": p.folder.id_dtype,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "xxh3": {name: _digest(a) for name, a in zip(POSITION_FILES, arrays, strict=True)}}
    del arrays
    (p.tmp / ENTRY_FILE).write_text(json.dumps(meta))
    try:
        os.rename(p.tmp, p.final)
    except OSError:  # one is there already: another process's (keep it if whole) or a bad one
        if valid_entry(p.final, p.folder):
            shutil.rmtree(p.tmp, ignore_errors=True)
        else:
            shutil.rmtree(p.final, ignore_errors=True)
            os.rename(p.tmp, p.final)
    _prune(p.final)
    return p.final


def _prune(entry: Path) -> None:
    """Remove the other entries of the entry's folder (made for files since changed), old
    temporary leftovers, and the entries of folders that no longer exist."""
    now = time.time()
    try:
        for sibling in entry.parent.iterdir():
            if sibling != entry and (layout.TMP_MARK not in sibling.name
                                     or now - sibling.stat().st_mtime > STALE_TMP_SECONDS):
                shutil.rmtree(sibling, ignore_errors=True)
        for record in entry.parent.parent.glob(f"*/*/{ENTRY_FILE}"):
            try:
                folder = json.loads(record.read_text())["folder"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if not Path(folder).is_dir():
                shutil.rmtree(record.parent.parent, ignore_errors=True)
    except OSError:  # another process pruning at the same time
        pass


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of worker processes (``mmu_core.processes``) for :func:`sidecar_folders` (and
    whatever else the caller runs before, such as opening datasets)."""
    return ProcessPoolExecutor(max_workers=workers, **pool_options())


def sidecar_folders(folders: Sequence[Folder], workers: int = 1,
                    executor: Executor | None = None) -> list[Path | None]:
    """For each folder, the folder holding its positions sidecar (``pos_*.npy``, read with
    :func:`~mmu_core.storage.index.load_position_files`): its ``_index/`` when it has one,
    else its entry in the cache, made now if there is no whole one for its files as they are.
    The missing entries are made together, their files read on ``executor`` or, with
    ``workers`` > 1 and enough files, on that many spawned processes (else here). None where
    no entry can be written (a warning says why); the caller then reads the files."""
    out: list[Path | None] = [None] * len(folders)
    pending: list[tuple[int, _Pending]] = []
    try:
        for k, f in enumerate(folders):
            if f in folders[:k]:  # the same folder twice (a self-match): once is enough
                continue
            if load_positions(f.path) is not None:
                out[k] = f.path / layout.INDEX_DIR
                continue
            if not _cacheable(f):
                continue
            stats = _stats(f)
            final = entry_path(f, stats)
            if valid_entry(final, f):
                out[k] = final
                continue
            try:
                pending.append((k, _prepare(f, stats, final)))
            except OSError as exc:
                _unwritable(f, exc)
        if pending:
            _read_all([p for _, p in pending], workers, executor)
            for k, p in pending:
                try:
                    out[k] = _finish(p)
                except OSError as exc:
                    _unwritable(p.folder, exc)
        for k, f in enumerate(folders):
            out[k] = out[list(folders).index(f)]
    finally:
        for _, p in pending:
            shutil.rmtree(p.tmp, ignore_errors=True)
    return out


def _unwritable(folder: Folder, exc: OSError) -> None:
    warnings.warn(f"cannot write the positions cache under {cache_root()} ({exc}); reading "
                  f"the files of {folder.path} instead", stacklevel=3)


def _read_all(pending: list[_Pending], workers: int, executor: Executor | None) -> None:
    """Fill the pending entries: here, or in runs of files a few per worker, so that the
    workers finish together."""
    files = sum(len(p.stats) for p in pending)
    if executor is None and (workers <= 1 or files < PARALLEL_MIN_FILES):
        for p in pending:
            fill(p.targets, _jobs(p, 1)[0] if p.stats else [])
        return
    pool = process_pool(workers) if executor is None else executor
    runs = 4 * max(workers, 2)
    try:
        futures = [pool.submit(fill, p.targets, jobs) for p in pending
                   for jobs in _jobs(p, max(1, runs * len(p.stats) // max(files, 1)))]
        try:
            for fut in as_completed(futures):
                fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    finally:
        if executor is None:
            pool.shutdown(wait=True, cancel_futures=True)
