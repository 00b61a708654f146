"""Reading a dataset folder over the network: ``https://``, ``http://``, ``hf://``, ``s3://``.

One code path for every scheme, through fsspec (``fsspec.core.url_to_fs``): HTTP(S) through
its aiohttp backend, ``hf://`` through huggingface_hub's file system, ``s3://`` through s3fs
(installed separately). Only two operations are used, whole-file reads (``cat_file``) and
byte-range reads (``cat_file`` with ``start``/``end``, ``cat_ranges`` for several at once), so
any fsspec backend that serves byte ranges works the same way.

- **Manifest and index, once.** ``manifest.json`` is fetched on every open (it is small) and
  hashed; its sha256 keys a local cache entry holding it and ``_index/`` (the id index and
  the positions sidecar), fetched once and checked against the manifest (lengths, file and row
  bounds, sorted ids)::

      <cache>/remote/<url key>/<manifest sha256>/manifest.json, _index/*.npy, source.json

  ``<cache>`` is ``$MMU_CACHE``, else ``$XDG_CACHE_HOME/mmu``, else ``~/.cache/mmu`` (as for
  the positions cache). A changed manifest gives another key, so a republished dataset is
  never read through a stale index; older entries of the same URL are removed.
- **Data files by byte range.** A contiguous column's rows sit at a known offset of the file
  (its HDF5 dataset's ``get_offset()``), so :class:`FileRanges` fetches exactly the rows asked
  (rows of 4 kB and more), or exactly the checksum blocks that hold them (smaller rows, whose
  digests cover blocks of about 64 kB): the bytes verified are the bytes fetched, nothing is
  read twice. HDF5 metadata and compressed (chunked) columns go through h5py on a
  :class:`RemoteFile`, a file object over fsspec's ``BlockCache`` (64 kB blocks, an LRU of 64
  per file), so opening a file costs a few blocks, not the file.
- **Checked responses.** Each range must come back with exactly the bytes asked: a short
  (truncated) response is retried and then an error naming the URL and the byte range, never
  data; a longer one (a server that ignores ``Range``) is an error. Transient failures
  (timeouts, dropped connections, cut-off bodies, HTTP 408/425/429/5xx) are retried with
  exponential backoff; a 404 (or a missing object) is reported at once, naming the URL.
  Integrity checks stay on: every row read is checked against the block digests stored in
  the file (or HDF5's Fletcher32 for chunked columns), as for a local folder.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import MMUError
from mmu_core.storage import layout
from mmu_core.storage.index import FILES, POSITION_FILES
from mmu_core.storage.manifest import Manifest
from mmu_core.storage.positions_cache import cache_root

SCHEMES = ("https", "http", "hf", "s3")
_URL_RE = re.compile(r"^(https?|hf|s3)://", re.I)
REMOTE_DIR = "remote"
SOURCE_FILE = "source.json"
BLOCK_BYTES = 16 * 1024  # HDF5 metadata and chunked columns: fetched in blocks this large
MAX_BLOCKS = 256  # blocks kept per open file (4 MiB)
CONCURRENT_REQUESTS = 16  # range requests in flight at once (async backends)
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF = 30.0


class RemoteError(MMUError):
    """A remote read failed: names the URL, the byte range where one was asked, and why."""


class RemoteNotFound(RemoteError):
    """The URL names nothing (HTTP 404, no such object)."""


class ShortResponse(OSError):
    """A response carried fewer bytes than the range asked (retried, then a RemoteError)."""


def is_url(value: Any) -> bool:
    """Whether ``value`` is a URL the remote reader serves (``https://``, ``http://``,
    ``hf://``, ``s3://``)."""
    return isinstance(value, str) and bool(_URL_RE.match(value))


@dataclass(frozen=True)
class RemoteOptions:
    """How remote reads behave. ``retries``: attempts after the first for a transient failure,
    waiting ``backoff`` seconds before the first retry and twice as long before each next one
    (at most 30 s); ``timeout``: seconds without an answer before a request fails (HTTP:
    connecting and each read); ``storage_options``: passed to the fsspec file system (for
    example ``{"anon": True}`` for a public S3 bucket, ``{"token": ...}`` for a private HF
    repository). ``from_env`` reads ``MMU_REMOTE_TIMEOUT``, ``MMU_REMOTE_RETRIES`` and
    ``MMU_REMOTE_BACKOFF``."""

    timeout: float = 60.0
    retries: int = 4
    backoff: float = 0.5
    storage_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: Any) -> RemoteOptions:
        values: dict[str, Any] = {}
        for key, env, cast in (("timeout", "MMU_REMOTE_TIMEOUT", float),
                               ("retries", "MMU_REMOTE_RETRIES", int),
                               ("backoff", "MMU_REMOTE_BACKOFF", float)):
            raw = os.environ.get(env)
            if raw:
                try:
                    values[key] = cast(raw)
                except ValueError:
                    raise RemoteError(f"${env}={raw!r} is not a number") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _status(exc: BaseException) -> int | None:
    """The HTTP status a backend's exception carries, if any."""
    for attr in ("status", "status_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    value = getattr(getattr(exc, "response", None), "status_code", None)
    return value if isinstance(value, int) else None


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying: timeouts, dropped connections, cut-off or short bodies, HTTP
    408/425/429/5xx. Not: missing objects, refused permissions, other 4xx."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError,
                        NotADirectoryError)):
        return False
    if isinstance(exc, ShortResponse):
        return True
    status = _status(exc)
    if status is not None:
        return status in RETRY_STATUSES
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - fsspec's HTTP backend needs it
        aiohttp = None
    if aiohttp is not None and isinstance(exc, aiohttp.ClientError):
        return True
    return isinstance(exc, OSError)  # other backends' transport errors


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, FileNotFoundError):
        return "not found (HTTP 404, or no such object)"
    if isinstance(exc, ShortResponse):
        return str(exc)
    status = _status(exc)
    if status is not None:
        message = getattr(exc, "message", "") or ""
        return f"HTTP {status}" + (f" {message}" if message else "")
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s (timed out)"
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientPayloadError):
            return f"the response was cut off before its end (truncated: {exc})"
        if isinstance(exc, aiohttp.ClientConnectionError):
            return f"connection failed ({exc})"
    except ImportError:  # pragma: no cover
        pass
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Remote:
    """A dataset folder at a URL, read through fsspec: checked whole-file and byte-range
    reads with retries. Also the opener a remote :class:`~mmu_core.storage.reader.Dataset`
    reads its files through (:meth:`open_h5`, :meth:`ranges`, :meth:`name`); ``local_dir`` is
    the cache entry holding the manifest and ``_index/`` once :func:`connect` has made it.

    ``stats`` counts the requests answered and the bytes received, in this process."""

    def __init__(self, url: str, options: RemoteOptions | None = None):
        if not is_url(url):
            raise RemoteError(f"{url!r} is not a URL mmu reads (schemes: "
                              + ", ".join(f"{s}://" for s in SCHEMES) + ")")
        self.url = url.rstrip("/")
        self.options = options or RemoteOptions.from_env()
        self.local_dir: Path | None = None
        self.sizes: dict[str, int] = {}
        self.stats = {"requests": 0, "bytes": 0}
        self._fs: Any = None
        self._root = ""
        self._pid: int | None = None
        self._lock = threading.Lock()

    # ---- the file system -------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower()

    def _fs_options(self) -> dict[str, Any]:
        opts = dict(self.options.storage_options)
        if self.scheme in ("http", "https"):
            import aiohttp

            client = dict(opts.pop("client_kwargs", {}) or {})
            client.setdefault("timeout", aiohttp.ClientTimeout(
                total=None, sock_connect=self.options.timeout, sock_read=self.options.timeout))
            opts["client_kwargs"] = client
        elif self.scheme == "s3":
            config = dict(opts.pop("config_kwargs", {}) or {})
            config.setdefault("connect_timeout", self.options.timeout)
            config.setdefault("read_timeout", self.options.timeout)
            opts["config_kwargs"] = config
        opts.setdefault("skip_instance_cache", True)
        return opts

    def filesystem(self) -> tuple[Any, str]:
        """(fsspec file system, the folder's path on it); made again in a forked child (an
        async file system's event loop does not survive a fork)."""
        if self._fs is None or self._pid != os.getpid():
            try:
                import fsspec
            except ImportError:
                raise RemoteError(f"{self.url}: reading over the network needs fsspec "
                                  "(pip install fsspec aiohttp)") from None
            try:
                self._fs, root = fsspec.core.url_to_fs(self.url, **self._fs_options())
            except (ImportError, ValueError) as exc:
                raise RemoteError(f"{self.url}: no fsspec file system for {self.scheme}:// "
                                  f"({exc})") from None
            self._root = str(root).rstrip("/")
            self._pid = os.getpid()
        return self._fs, self._root

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fs"], state["_pid"], state["_lock"] = None, None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def name(self, relpath: str) -> str:
        """The URL of a file of the folder (what errors name)."""
        return f"{self.url}/{relpath}"

    def _count(self, n_bytes: int) -> None:
        with self._lock:
            self.stats["requests"] += 1
            self.stats["bytes"] += n_bytes

    # ---- checked reads ---------------------------------------------------------------------
    def fetch(self, relpath: str, start: int | None = None, end: int | None = None) -> bytes:
        """The bytes ``start:end`` of a file of the folder (the whole file when both are
        None), exactly; see :meth:`fetch_many`."""
        if start is None and end is None:
            return self._retrying(relpath, [None])[0]
        return self.fetch_many(relpath, [(int(start or 0), int(end))])[0]

    def fetch_many(self, relpath: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(start, end)`` range of one file, fetched concurrently where
        the backend can; each response must hold exactly ``end - start`` bytes."""
        return self._retrying(relpath, [(int(a), int(b)) for a, b in ranges])

    def _retrying(self, relpath: str, ranges: list[tuple[int, int] | None]) -> list[bytes]:
        url = self.name(relpath)
        out: list[bytes | None] = [None] * len(ranges)
        pending = [k for k, r in enumerate(ranges) if r is None or r[1] > r[0]]
        for k, r in enumerate(ranges):
            if r is not None and r[1] <= r[0]:
                out[k] = b""
        attempt = 0
        while pending:
            got = self._request(relpath, [ranges[k] for k in pending])
            failed: list[tuple[int, BaseException]] = []
            for k, value in zip(pending, got, strict=True):
                if isinstance(value, BaseException):
                    failed.append((k, value))
                    continue
                want = None if ranges[k] is None else ranges[k][1] - ranges[k][0]
                if want is not None and len(value) < want:
                    a, b = ranges[k]
                    failed.append((k, ShortResponse(
                        f"bytes {a}-{b - 1}: the server sent {len(value)} of {want} bytes "
                        "(a short, truncated response)")))
                    continue
                if want is not None and len(value) > want:
                    a, b = ranges[k]
                    raise RemoteError(f"{url}: bytes {a}-{b - 1}: the server sent "
                                      f"{len(value)} bytes for a range of {want} (it does not "
                                      "honour byte-range requests)")
                out[k] = value
            if not failed:
                break
            attempt += 1
            k, exc = failed[0]
            permanent = next((e for _, e in failed if not _is_transient(e)), None)
            if permanent is not None or attempt > self.options.retries:
                exc = permanent or exc
                where = "" if ranges[k] is None or isinstance(exc, ShortResponse) else \
                    f"bytes {ranges[k][0]}-{ranges[k][1] - 1}: "
                tries = f" ({attempt} attempt{'s' if attempt > 1 else ''})" if \
                    permanent is None else ""
                error = RemoteNotFound if isinstance(exc, FileNotFoundError) else RemoteError
                raise error(f"{url}: {where}{_describe(exc, self.options.timeout)}"
                            f"{tries}") from None
            time.sleep(min(MAX_BACKOFF, self.options.backoff * 2 ** (attempt - 1)))
            pending = [k for k, _ in failed]
        return out  # type: ignore[return-value]

    def _request(self, relpath: str,
                 ranges: list[tuple[int, int] | None]) -> list[bytes | BaseException]:
        fs, root = self.filesystem()
        path = f"{root}/{relpath}"
        results: list[bytes | BaseException] = []
        if len(ranges) > 1 and all(r is not None for r in ranges):
            extra = {"batch_size": CONCURRENT_REQUESTS} if getattr(fs, "async_impl", False) \
                else {}
            try:
                results = list(fs.cat_ranges([path] * len(ranges), [r[0] for r in ranges],
                                             [r[1] for r in ranges], on_error="return",
                                             **extra))
            except Exception as exc:  # noqa: BLE001 - the whole batch failed: each range
                results = [exc] * len(ranges)
        else:
            for r in ranges:
                try:
                    results.append(fs.cat_file(path) if r is None
                                   else fs.cat_file(path, start=r[0], end=r[1]))
                except Exception as exc:  # noqa: BLE001 - classified by the caller
                    results.append(exc)
        for value in results:
            if isinstance(value, (bytes, bytearray, memoryview)):
                self._count(len(value))
        return [bytes(v) if isinstance(v, (bytearray, memoryview)) else v for v in results]

    # ---- the reader's opener ---------------------------------------------------------------
    def open_h5(self, relpath: str) -> tuple[Any, FileRanges]:
        """An h5py file over the remote file (block-cached byte ranges), and the file's
        checked byte ranges (which column reads share, so that an HDF5 error the network
        caused is reported as the network's)."""
        import h5py

        size = self.sizes.get(relpath)
        if size is None:
            raise RemoteError(f"{self.name(relpath)}: not listed in the manifest")
        handle = RemoteFile(self, relpath, size)
        try:
            h = h5py.File(handle, "r", rdcc_nbytes=4 * 1024 * 1024)
        except (OSError, RuntimeError, ValueError) as exc:
            handle.ranges.check_failure()  # the network's error, if it caused this one
            raise RemoteError(f"{self.name(relpath)}: cannot be opened as HDF5 ({exc})") from None
        if handle.ranges.failure is not None:
            h.close()
            handle.ranges.check_failure()
        return h, handle.ranges


class FileRanges:
    """Checked byte ranges of one remote file, for :class:`~mmu_core.storage.access.
    ColumnAccess`: ``read(start, end)`` and ``read_many([(start, end), ...])`` (which raise
    :class:`RemoteError`). ``failure`` holds the last error and ``poisoned`` says that a read
    through h5py failed: HDF5 got zeros in place of the bytes (see :class:`RemoteFile`), so
    whatever h5py returned is discarded (:meth:`check_failure` raises the error) and the file
    must be opened again before it is read further."""

    def __init__(self, remote: Remote, relpath: str):
        self.remote, self.relpath = remote, relpath
        self.failure: RemoteError | None = None
        self.poisoned = False
        self.prefetched: dict[tuple[int, int], bytes] = {}  # exact ranges fetched ahead

    def prefetch(self, ranges: Sequence[tuple[int, int]]) -> None:
        """Fetch these ranges together, for :class:`RemoteFile` to serve the reads that ask
        exactly for one of them (HDF5 reads a compressed chunk whole)."""
        todo = sorted({(int(a), int(b)) for a, b in ranges} - set(self.prefetched))
        for r, data in zip(todo, self.read_many(todo), strict=True):
            self.prefetched[r] = data

    def check_failure(self) -> None:
        """Raise the error of a read that failed under h5py since the last call, if any."""
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure

    @property
    def url(self) -> str:
        return self.remote.name(self.relpath)

    def read(self, start: int, end: int) -> bytes:
        return self.read_many([(start, end)])[0]

    def read_many(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        try:
            return self.remote.fetch_many(self.relpath, ranges)
        except RemoteError as exc:
            self.failure = exc
            raise


class RemoteFile(io.RawIOBase):
    """A read-only, seekable file object over a remote file, in blocks cached by fsspec's
    ``BlockCache`` (what h5py opens for HDF5 metadata and chunked columns)."""

    def __init__(self, remote: Remote, relpath: str, size: int,
                 block_bytes: int = BLOCK_BYTES, max_blocks: int = MAX_BLOCKS):
        from fsspec.caching import BlockCache

        super().__init__()
        self.ranges = FileRanges(remote, relpath)
        self.size, self.pos = int(size), 0
        self.cache = BlockCache(block_bytes, self._fetch, self.size, maxblocks=max_blocks)

    def _fetch(self, start: int, end: int) -> bytes:
        return self.ranges.read(start, min(end, self.size))  # the last block ends at the size

    @property
    def failure(self) -> RemoteError | None:
        return self.ranges.failure

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + int(offset))
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self.size, self.pos + len(view))
        if end <= self.pos:
            return 0
        try:
            data = self.ranges.prefetched.pop((self.pos, end), None)
            if data is None and self.ranges.poisoned:  # failed already: fail fast, the
                data = bytes(end - self.pos)  # caller discards this file and its reads
            elif data is None:
                with _no_cyclic_gc():
                    if end - self.pos >= 2 * self.cache.blocksize:  # a chunk: one exact range
                        data = self.ranges.read(self.pos, end)
                    else:  # HDF5 metadata: small reads close together, from cached blocks
                        data = self.cache._fetch(self.pos, end)
        except RemoteError:
            # Never raise into HDF5: an exception inside h5py's file-object driver can leave
            # a half-open file behind that crashes the interpreter at exit. The read gets
            # zeros instead, the file is marked poisoned (HDF5 may have cached them), and
            # the caller raises ``failure`` once h5py returns (check_failure).
            self.ranges.poisoned = True
            data = bytes(end - self.pos)
        view[: len(data)] = data
        self.pos += len(data)
        return len(data)


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextlib.contextmanager
def _no_cyclic_gc():
    """No cyclic garbage collection while a read made under h5py waits for the network.

    h5py holds its global lock while HDF5 calls the file object, and the bytes arrive on
    fsspec's event-loop thread. Should the collector run there (or on any other thread) and
    free an h5py object, that object's finaliser would wait for the lock this thread holds
    while this thread waits for that thread: a deadlock (seen here, at random, after failed
    reads left h5py objects in reference cycles). Collection resumes when the read is done."""
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


# ---- the local cache of manifest and index ---------------------------------------------------
def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def parse_manifest(remote: Remote, raw: bytes) -> Manifest:
    """The manifest a server sent, or an error naming its URL."""
    url = remote.name(layout.MANIFEST_NAME)
    try:
        return Manifest.model_validate(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise RemoteError(f"{url}: not a readable manifest ({str(exc).splitlines()[0]})") from None


def fetch_manifest(remote: Remote) -> tuple[bytes, Manifest]:
    """The manifest's bytes and contents; a missing one is an error saying what was expected."""
    try:
        raw = remote.fetch(layout.MANIFEST_NAME)
    except RemoteNotFound as exc:
        raise RemoteNotFound(f"{exc}; is {remote.url} a dataset folder (ROOT/SURVEY/CONFIG, "
                             "with manifest.json, _index/ and healpix=N/ files)?") from None
    manifest = parse_manifest(remote, raw)
    for f in manifest.files:
        if layout.parse_relpath(f.path) is None:
            raise RemoteError(f"{remote.name(layout.MANIFEST_NAME)} lists {f.path!r}, which is "
                              "not a healpix=N/i-of-n.hdf5 file inside the dataset folder: "
                              "refused")
    return raw, manifest


def _load_npy(remote: Remote, relpath: str, raw: bytes) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise RemoteError(f"{remote.name(relpath)}: not a readable .npy array ({exc})") from None
    return arr


def _check_index(remote: Remote, manifest: Manifest, arrays: dict[str, np.ndarray]) -> None:
    """The fetched index must describe the manifest's files: one entry per row, file and row
    numbers in bounds, ids sorted; the positions sidecar, when there, one row per row."""
    where = remote.name(layout.INDEX_DIR)
    rows = np.array([f.rows for f in manifest.files], np.int64)
    ids, file, row = (arrays[f] for f in FILES)
    n = int(rows.sum())
    if not (len(ids) == len(file) == len(row) == n):
        raise RemoteError(f"{where}: the index holds {len(ids)}/{len(file)}/{len(row)} entries "
                          f"(ids/file/row), the manifest {n} rows: stale or corrupt")
    if n:
        if file.min() < 0 or file.max() >= len(rows) or row.min() < 0 or \
                np.any(row >= rows[file]):
            raise RemoteError(f"{where}: file or row numbers out of the manifest's bounds: "
                              "corrupt index")
        if np.any(ids[1:] < ids[:-1]):
            raise RemoteError(f"{where}: ids.npy is not sorted: corrupt index")
    if POSITION_FILES[0] in arrays:
        offsets = arrays["pos_offset.npy"]
        if (len(offsets) != len(rows) + 1 or not np.array_equal(np.diff(offsets), rows)
                or any(len(arrays[f]) != n for f in POSITION_FILES[:3])):
            raise RemoteError(f"{where}: pos_*.npy do not match the manifest's files (stale "
                              "sidecar)")


def connect(url: str, options: RemoteOptions | None = None) -> Remote:
    """A :class:`Remote` for the dataset folder at ``url``, with its manifest and ``_index/``
    in the local cache (fetched when this manifest has not been seen before)."""
    remote = Remote(url, options)
    raw, manifest = fetch_manifest(remote)
    digest = hashlib.sha256(raw).hexdigest()
    base = cache_root() / REMOTE_DIR / _url_key(remote.url)
    entry = base / digest
    if not (entry / layout.MANIFEST_NAME).is_file():
        _make_entry(remote, manifest, raw, entry)
    for old in base.iterdir() if base.is_dir() else []:  # other manifests of this URL: stale
        if old.name != digest and layout.TMP_MARK not in old.name:
            shutil.rmtree(old, ignore_errors=True)
    remote.local_dir = entry
    remote.sizes = {f.path: int(f.bytes) for f in manifest.files}
    return remote


def _make_entry(remote: Remote, manifest: Manifest, raw: bytes, entry: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name in FILES:
        rel = f"{layout.INDEX_DIR}/{name}"
        try:
            arrays[name] = _load_npy(remote, rel, remote.fetch(rel))
        except RemoteNotFound:
            raise RemoteNotFound(f"{remote.name(rel)}: not found; a dataset read over the "
                                 "network needs its _index/ (mmu build writes it)") from None
    for name in POSITION_FILES:  # optional: datasets written before the sidecar have none
        rel = f"{layout.INDEX_DIR}/{name}"
        try:
            arrays[name] = _load_npy(remote, rel, remote.fetch(rel))
        except RemoteNotFound:
            for other in POSITION_FILES:
                arrays.pop(other, None)
            break
    _check_index(remote, manifest, arrays)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.tmp_name(entry, uuid.uuid4().hex[:8])
    (tmp / layout.INDEX_DIR).mkdir(parents=True)
    try:
        for name, arr in arrays.items():
            np.save(tmp / layout.INDEX_DIR / name, arr)
        (tmp / layout.MANIFEST_NAME).write_bytes(raw)
        (tmp / SOURCE_FILE).write_text(json.dumps({"url": remote.url}))
        try:
            os.rename(tmp, entry)
        except OSError:  # another process made the same entry meanwhile
            if not (entry / layout.MANIFEST_NAME).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
