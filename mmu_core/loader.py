"""Training straight from the stored files: a map-style and an iterable dataset, no copy.

::

    from mmu_core.loader import MapDataset, StreamDataset, collate

    ds = MapDataset("data/desi/dr1_main", columns=["spectrum_flux", "z"])
    len(ds), ds[0]["spectrum_flux"]                  # one row: column -> numpy value
    ds.get_batch([5, 3, 9])["spectrum_flux"]         # (3, L), rows in the order asked
    # torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=4,
    #                             collate_fn=collate)   # dict column -> array, no re-stacking

    stream = StreamDataset(["data/desi/dr1_main", "data/hsc/pdr3"], columns=["ra", "dec"],
                           batch_size=256, weights=[0.7, 0.3], seed=1)
    stream.set_epoch(3)
    for batch in stream:                               # dict column -> numpy array
        ...
    # torch.utils.data.DataLoader(stream, batch_size=None, num_workers=4)

    pairs = MapDataset("xmatch")    # a cross-match OUT folder: both sides read from the sources
    pairs[0]["hsc.image_array"], pairs[0]["desi.spectrum_flux"], pairs[0]["separation_arcsec"]

Everything is read through :class:`~mmu_core.storage.reader.Dataset` (memory-mapped where the
columns are contiguous, every read checked against the stored checksums), and only the
columns asked for; dtypes are kept (``ra``, ``dec`` and MJDs stay float64). torch is optional:
without it both classes are plain Python objects; with it :class:`MapDataset` is a
``torch.utils.data.Dataset`` and :class:`StreamDataset` a ``torch.utils.data.IterableDataset``.

Files are opened lazily in the process that reads them: a dataset object built in the parent
and handed to ``DataLoader`` workers (``fork`` or ``spawn``) reopens its files in each worker,
and never pickles open files or the cross-match catalog's arrays.

**Row numbers.** Row ``i`` of a stored dataset is its global row number in the dataset's file
order (the manifest's file list, rows as stored). Row ``i`` of a cross-match output is the
catalog's row ``i`` (its ``match_id``).

**StreamDataset, the order of an epoch.** For each source, every file is cut into *blocks* of
``block_rows`` contiguous rows (the cut points shift by a random phase each epoch, so blocks
are not the same rows every epoch); the blocks are permuted; the concatenated block sequence
is cut into *windows* of ``buffer_rows`` rows (a multiple of ``batch_size``) and the rows of
each window permuted with an RNG seeded by ``(seed, epoch, source, window)``. This row
sequence is cut into batches; the batches are cut into ``world_size * num_workers``
contiguous *shares* of near-equal batch counts (share ``rank * num_workers + worker``). Every
step is a pure function of ``(seed, epoch)``, so the k-th batch of a share is computed without
reading the batches before it, and a resume reads nothing twice. A share reads one window at a
time (rows sorted by file and row, so each block is one sequential read), which bounds the
memory to about ``buffer_rows`` rows per source.

**A mixture** (several sources): each batch comes from one source. Every share gets the same
schedule (which source each of its batches comes from), a seeded permutation of exact counts:
source ``s`` supplies ``round(w_s * T)`` batches (largest remainders, so each count is within
one batch of ``w_s * T``), where ``T``, the epoch's batches per share, is the largest number for
which every source can supply its count of *full* batches to every share. So an epoch ends
when the first source (relative to its weight) runs out: that source is read (almost) whole,
the others partly, a different part each epoch. Every share yields exactly ``T`` batches.

**Resuming.** ``state_dict()`` / ``load_state_dict()`` hold the epoch and the batches yielded.
In a ``DataLoader`` the workers iterate copies of the stream, so save
``{"epoch": e, "batches": n}`` with ``n`` the batches the DataLoader yielded this epoch; on
resume each worker skips its own part and the worker shares are rotated so that the
DataLoader's round-robin (its default in-order delivery, the same ``num_workers``) continues
exactly where it stopped. With ``persistent_workers=True`` the workers keep their copies
across epochs, and ``set_epoch``/``load_state_dict`` on the main object never reach them: use
non-persistent workers.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.crossmatch.writers import CATALOG_NAME
from mmu_core.errors import MMUError
from mmu_core.storage import layout
from mmu_core.storage.examples import side_namespaces
from mmu_core.storage.hats import HatsDataset
from mmu_core.storage.reader import Dataset, open_dataset

try:  # optional: the classes become torch datasets when torch imports
    import torch.utils.data as _torch_data
except (ImportError, OSError):  # pragma: no cover - depends on the environment
    _torch_data = None

_MapBase: type = _torch_data.Dataset if _torch_data is not None else object
_IterBase: type = _torch_data.IterableDataset if _torch_data is not None else object

BLOCK_BYTES = 4 * 1024 * 1024  # default block: about this many bytes of the columns read
BUFFER_BYTES = 64 * 1024 * 1024  # default window (shuffle buffer): about this many bytes
MAX_BLOCK_ROWS = 65536
MAX_BUFFER_ROWS = 1 << 20
STATE_VERSION = 1
# purposes mixed into the RNG seeds, so the streams never share random numbers
_BLOCKS, _WINDOW, _SCHEDULE = 0, 1, 2


class LoaderError(MMUError):
    """A loader was given arguments it cannot honour (or a state it cannot resume)."""


# ---- sources: rows by global row number ---------------------------------------------------
class _Opener:
    """A :class:`Dataset` opened at most once per process (reopened after fork or spawn)."""

    def __init__(self, source: Dataset | HatsDataset | Path | str):
        ds = source if isinstance(source, (Dataset, HatsDataset)) else open_dataset(source)
        # a dataset opened from a URL reopens from it (its path is a local cache folder)
        self.path, self.memory_map = getattr(ds, "url", None) or ds.path, ds.memory_map
        self._ds: Dataset | None = ds
        self._pid: int | None = os.getpid()

    def get(self) -> Dataset:
        """The dataset, opened in this process."""
        if self._ds is None or self._pid != os.getpid():
            if self._ds is not None:  # inherited through fork: drop the parent's handles here
                self._ds.close()
            # open_dataset: a HATS catalog reopens as one too
            self._ds, self._pid = open_dataset(self.path, memory_map=self.memory_map), os.getpid()
        return self._ds

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "memory_map": self.memory_map, "_ds": None, "_pid": None}


class _Table:
    """What the loaders read: ``n`` rows by global row number, in ``segments`` (row counts
    of the contiguous pieces, e.g. files, that a block never straddles)."""

    name: str
    n: int
    segments: list[int]

    def resolve(self, name: str) -> None:
        """Raise ``KeyError`` (naming the source) unless ``name`` can be read."""
        raise NotImplementedError

    def default_columns(self) -> list[str]:
        """The columns read when none are named."""
        raise NotImplementedError

    def row_bytes(self, name: str) -> int:
        """Bytes per row of a column."""
        raise NotImplementedError

    def read(self, rows: np.ndarray, columns: list[str]) -> dict[str, np.ndarray]:
        """The rows (global numbers, any order, repeats allowed), in the order given."""
        raise NotImplementedError


class _StoredTable(_Table):
    """A stored dataset; rows in file order."""

    def __init__(self, source: Dataset | Path | str):
        self.opener = _Opener(source)
        ds = self.opener.get()
        self.name = str(ds.path)
        self.segments = ds.file_rows
        self.offsets = np.concatenate([[0], np.cumsum(self.segments, dtype=np.int64)])
        self.n = int(self.offsets[-1])
        self._schema = ds.schema
        self._columns = ds.columns

    def resolve(self, name: str) -> None:
        self.opener.get().resolve(name)

    def default_columns(self) -> list[str]:
        return list(self._columns)

    def row_bytes(self, name: str) -> int:
        return self._schema[self.opener.get().resolve(name)].row_bytes

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(file, row in file) of global row numbers."""
        f = np.searchsorted(self.offsets, rows, side="right") - 1
        return f, rows - self.offsets[f]

    def read(self, rows: np.ndarray, columns: list[str]) -> dict[str, np.ndarray]:
        f, r = self.locate(np.asarray(rows, dtype=np.int64))
        return self.opener.get().read_rows(f, r, columns)


class MatchedPairs(_Table):
    """The pairs of a cross-match output, read from the two SOURCE datasets (no copy).

    Row ``i`` is the catalog's row ``i`` (``OUT/catalog.parquet``, its ``match_id``). Columns
    are named as in the matched dataset: ``match_id`` (``object_id`` is a synonym, as in the
    matched dataset), ``separation_arcsec``, ``ra``, ``dec``, ``healpix`` (the left object's),
    the catalog's other columns (``left_object_id``, ``right_object_id``, ``right_ra``,
    ``right_dec``), and ``<namespace>.<column>`` for either side (``hsc.image_array``,
    ``desi.spectrum_flux``, standard names too: ``desi.z``), read by object id from that side's
    dataset (``Dataset.get``).

    The sources are, in this order of preference: ``left``/``right`` when given; the matched
    dataset's record of its sides (``extra["sides"]`` of ``OUT/<l>_x_<r>/matched``); the
    ``left_path``/``right_path`` the catalog's Parquet metadata records (``catalog_only``
    outputs). A side whose dataset was rebuilt since the match (another fingerprint) gives a
    warning. The catalog's columns are loaded into memory in each process on first use (8
    bytes per pair and column; under ``fork`` they are shared with the parent).

    :param out: the cross-match output folder (or its ``catalog.parquet``).
    :param left, right: the source datasets (folders or :class:`Dataset`), overriding what
        the output records.
    """

    TOP = ("match_id", "separation_arcsec", "ra", "dec", "healpix")
    CATALOG_ONLY = ("left_object_id", "right_object_id", "right_ra", "right_dec")

    def __init__(self, out: Path | str, left: Dataset | Path | str | None = None,
                 right: Dataset | Path | str | None = None):
        import pyarrow.parquet as pq

        out = Path(out)
        self.catalog_path = out if out.is_file() else out / CATALOG_NAME
        if not self.catalog_path.is_file():
            raise LoaderError(f"{out}: no {CATALOG_NAME}; is this a cross-match output?")
        out = self.catalog_path.parent
        self.name = str(out)
        meta_raw = (pq.read_schema(self.catalog_path).metadata or {}).get(b"mmu")
        meta = json.loads(meta_raw) if meta_raw else {}
        recorded = self._recorded_sides(out)
        paths: dict[str, Any] = {}
        for role, given in (("left", left), ("right", right)):
            rec = recorded.get(role)
            path = given if given is not None else (
                rec["path"] if rec else meta.get(f"{role}_path"))
            if path is None:
                raise LoaderError(
                    f"{self.catalog_path} records no {role} dataset (no matched dataset and "
                    f"no '{role}_path' in its metadata): pass {role}=PATH")
            paths[role] = path
        lopen, ropen = _Opener(paths["left"]), _Opener(paths["right"])
        lds, rds = lopen.get(), ropen.get()
        if "left" in recorded and "right" in recorded:
            lns, rns = recorded["left"]["namespace"], recorded["right"]["namespace"]
        else:
            lns, rns = side_namespaces(lds, rds)
        for role, ds in (("left", lds), ("right", rds)):
            rec = recorded.get(role)
            want = rec.get("fingerprint") if rec else None
            if want and ds.manifest is not None and ds.manifest.fingerprint() != want:
                warnings.warn(f"{ds.path} was rebuilt after the cross-match {out} "
                              f"(fingerprint {ds.manifest.fingerprint()}, the match used {want}); "
                              "its rows may differ from the matched ones", stacklevel=3)
        self.sides = {lns: ("left", lopen), rns: ("right", ropen)}
        self._schemas = {lns: lds.schema, rns: rds.schema}
        self._side_columns = {lns: lds.columns, rns: rds.columns}
        self.n = int(pq.ParquetFile(self.catalog_path).metadata.num_rows)
        self.segments = [self.n]
        self._cat: dict[str, np.ndarray] = {}

    @staticmethod
    def _recorded_sides(out: Path) -> dict[str, dict[str, Any]]:
        """role -> {namespace, path, fingerprint} from the matched dataset's record of its
        sides (``Dataset.sides()``), if OUT holds one."""
        for folder in layout.find_datasets(out):
            sides = Dataset(folder).sides()
            if sides and all(info.get("role") and info.get("path") for info in sides.values()):
                return {info["role"]: {"namespace": ns, "path": info["path"],
                                       "fingerprint": info.get("fingerprint")}
                        for ns, info in sides.items()}
        return {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cat"] = {}  # reloaded in the process that reads
        return state

    def _split(self, name: str) -> tuple[str | None, str]:
        if name == "object_id":
            return None, "match_id"
        if name in self.TOP or name in self.CATALOG_ONLY:
            return None, name
        ns, _, col = name.partition(".")
        if col and ns in self.sides:
            return ns, col
        raise KeyError(f"{self.name}: no column {name!r} (catalog: "
                       f"{', '.join(self.TOP + self.CATALOG_ONLY)}; sides: "
                       f"{', '.join(ns + '.<column>' for ns in self.sides)})")

    def resolve(self, name: str) -> None:
        """Raise ``KeyError`` unless ``name`` is a catalog column or ``<namespace>.<column>``
        of a side (stored or standard name)."""
        ns, col = self._split(name)
        if ns is not None:
            self.sides[ns][1].get().resolve(col)

    def default_columns(self) -> list[str]:
        """``match_id``, ``separation_arcsec``, ``ra``, ``dec``, ``healpix`` and every column of
        both sides, namespaced."""
        return [*self.TOP] + [f"{ns}.{c}" for ns, cols in self._side_columns.items()
                              for c in cols]

    def row_bytes(self, name: str) -> int:
        """Bytes per row of a column (what the default block and window sizes count)."""
        ns, col = self._split(name)
        if ns is None:
            return 8
        return self._schemas[ns][self.sides[ns][1].get().resolve(col)].row_bytes

    def catalog(self, name: str) -> np.ndarray:
        """One catalog column as a numpy array (string ids as bytes), loaded once."""
        if name not in self._cat:
            import pyarrow as pa
            import pyarrow.parquet as pq

            col = pq.read_table(self.catalog_path, columns=[name]).column(name)
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                arr = np.asarray(col.cast(pa.binary()).to_numpy(zero_copy_only=False))
                self._cat[name] = arr.astype(bytes)
            else:
                self._cat[name] = np.asarray(col.to_numpy())
        return self._cat[name]

    def read(self, rows: np.ndarray, columns: list[str]) -> dict[str, np.ndarray]:
        """Pairs ``rows`` (catalog rows, any order, repeats allowed) in the order given: the
        catalog's columns from the catalog, each side's by object id from its dataset
        (``Dataset.get``: one id lookup and one checked row read per pair and side)."""
        rows = np.asarray(rows, dtype=np.int64)
        out: dict[str, np.ndarray] = {}
        per_side: dict[str, list[tuple[str, str]]] = {}
        for name in columns:
            ns, col = self._split(name)
            if ns is None:
                out[name] = self.catalog(col)[rows]
            else:
                per_side.setdefault(ns, []).append((name, col))
        for ns, wanted in per_side.items():
            role, opener = self.sides[ns]
            ids = self.catalog(f"{role}_object_id")[rows]
            got = opener.get().get(ids, columns=list(dict.fromkeys(c for _, c in wanted)))
            for name, col in wanted:
                out[name] = got[col]
        return {name: out[name] for name in columns}


def _table(source: Any, left: Any = None, right: Any = None) -> _Table:
    """A readable source for a path, a :class:`Dataset` or a :class:`MatchedPairs`."""
    if isinstance(source, _Table):
        return source
    if isinstance(source, (Dataset, HatsDataset)):
        return _StoredTable(source)
    path = Path(source)
    if (path.is_file() and path.name == CATALOG_NAME) or (path / CATALOG_NAME).is_file():
        return MatchedPairs(path, left=left, right=right)
    if left is not None or right is not None:
        raise LoaderError(f"{path}: left=/right= apply to cross-match outputs only")
    return _StoredTable(path)


def _columns(table: _Table, columns: Iterable[str] | str | None) -> list[str]:
    cols = table.default_columns() if columns is None else (
        [columns] if isinstance(columns, str) else list(columns))
    if not cols:
        raise LoaderError("no columns to read")
    for c in cols:
        table.resolve(c)
    return cols


def _to_torch(batch: dict[str, Any]) -> dict[str, Any]:
    """numpy arrays -> torch tensors (same dtypes); strings and what torch refuses stay numpy."""
    import torch

    out = {}
    for k, v in batch.items():
        if isinstance(v, np.ndarray) and v.dtype.kind in "biufc":
            try:
                out[k] = torch.from_numpy(np.ascontiguousarray(v))
                continue
            except TypeError:  # e.g. a dtype torch lacks
                pass
        out[k] = v
    return out


# ---- map-style ------------------------------------------------------------------------------
class RowBatch(list):
    """A list of rows (what ``__getitems__`` returns, so ``DataLoader``'s default collate
    works) that also carries the batch as dict column -> stacked array (``arrays``; None when
    a per-row ``transform`` changed the rows). :func:`collate` returns ``arrays`` directly."""

    def __init__(self, rows: Iterable[Any], arrays: dict[str, np.ndarray] | None = None):
        super().__init__(rows)
        self.arrays = arrays


def collate(batch: Sequence[Any]) -> Any:
    """A ``collate_fn`` giving dict column -> numpy array: a :class:`RowBatch`'s arrays as
    they are (no re-stacking); other lists of row dicts are stacked per column. String
    columns stay numpy byte arrays (torch's default collate refuses them)."""
    arrays = getattr(batch, "arrays", None)
    if arrays is not None:
        return arrays
    if batch and isinstance(batch[0], dict):
        return {k: np.stack([np.asarray(row[k]) for row in batch]) for k in batch[0]}
    raise LoaderError("collate: expected rows as dicts (a per-row transform returned "
                      f"{type(batch[0]).__name__ if batch else 'nothing'}); pass a collate_fn "
                      "of your own")


def collate_torch(batch: Sequence[Any]) -> Any:
    """Like :func:`collate`, with numeric columns as torch tensors (same dtypes)."""
    return _to_torch(collate(batch))


class MapDataset(_MapBase):
    """Random access to the rows of a stored dataset or of a cross-match output (its pairs,
    read from the source datasets: see :class:`MatchedPairs`).

    :param path: a dataset folder, a :class:`Dataset`, a cross-match ``OUT`` folder (pairs
        read from the sources; open ``OUT/<l>_x_<r>/matched`` itself to read the matched
        copy), or a :class:`MatchedPairs`.
    :param columns: columns to read (stored or standard names; ``"desi.z"`` for a side of a
        cross-match); None reads every column.
    :param transform: applied to each row (dict column -> numpy value) by ``ds[i]`` and
        ``__getitems__``; not by :meth:`get_batch`.
    :param batch_transform: applied to each dict-of-arrays batch by :meth:`get_batch`.
    :param left, right: the source datasets of a cross-match output, when the output does not
        record them (or they moved).
    """

    def __init__(self, path: Any, columns: Iterable[str] | str | None = None,
                 transform: Callable[[dict[str, Any]], Any] | None = None, *,
                 batch_transform: Callable[[dict[str, np.ndarray]], Any] | None = None,
                 left: Any = None, right: Any = None):
        self.table = _table(path, left, right)
        self.columns = _columns(self.table, columns)
        self.transform = transform
        self.batch_transform = batch_transform

    def __len__(self) -> int:
        """Rows (pairs, for a cross-match output)."""
        return self.table.n

    def __repr__(self) -> str:
        return f"<MapDataset {self.table.name}: {len(self):,} rows, {len(self.columns)} columns>"

    def _indices(self, indices: Any) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise TypeError(f"row indices must be integers, got {indices!r:.80}")
        idx = idx.astype(np.int64)
        idx = np.where(idx < 0, idx + self.table.n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= self.table.n):
            bad = idx[(idx < 0) | (idx >= self.table.n)][:5].tolist()
            raise IndexError(f"row(s) {bad} out of range for {self.table.n} rows")
        return idx

    def read(self, indices: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """The rows ``indices`` as dict column -> stacked array, in the order asked, with no
        transform (reads grouped by file, each file's rows in ascending order)."""
        return self.table.read(self._indices(indices), self.columns)

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> Any:
        """The rows ``indices`` as dict column -> stacked array, in the order asked, then
        ``batch_transform`` if given."""
        batch = self.read(indices)
        return self.batch_transform(batch) if self.batch_transform else batch

    def __getitem__(self, i: int) -> Any:
        """Row ``i`` (negative counts from the end): dict column -> numpy value, then
        ``transform``."""
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"MapDataset index must be an integer, got {type(i).__name__}; "
                            "use get_batch() for several rows")
        row = {k: v[0] for k, v in self.read([int(i)]).items()}
        return self.transform(row) if self.transform else row

    def __getitems__(self, indices: Sequence[int]) -> RowBatch:
        """Rows ``indices`` in the order asked, read in one pass: a :class:`RowBatch` (a list
        of rows, each transformed if ``transform``, as ``DataLoader``'s batched fetch and
        default collate expect, plus the stacked ``arrays`` when there is no transform)."""
        batch = self.read(indices)
        n = len(next(iter(batch.values())))
        rows = [{k: v[j] for k, v in batch.items()} for j in range(n)]
        if self.transform:
            return RowBatch([self.transform(r) for r in rows])
        return RowBatch(rows, batch)


# ---- iterable -------------------------------------------------------------------------------
def _blocks(counts: np.ndarray, block_rows: int, phases: np.ndarray) -> tuple[np.ndarray, ...]:
    """(global start, length) of every block: segment f is cut at ``phases[f]`` (if > 0)
    and then every ``block_rows`` rows."""
    counts = np.asarray(counts, dtype=np.int64)
    first = np.minimum(np.where(phases > 0, phases, block_rows), counts)
    rest = np.maximum(counts - first, 0)
    nb = np.where(counts > 0, 1 + (rest + block_rows - 1) // block_rows, 0)
    seg = np.repeat(np.arange(len(counts)), nb)
    j = np.arange(int(nb.sum())) - np.repeat(np.cumsum(nb) - nb, nb)
    f = first[seg]
    start = np.where(j == 0, 0, f + (j - 1) * block_rows)
    stop = np.minimum(counts[seg], f + j * block_rows)
    offsets = np.concatenate([[0], np.cumsum(counts)])[:-1]
    return offsets[seg] + start, stop - start


class _Order:
    """One source's row sequence in one epoch (blocks permuted, rows shuffled per window)."""

    def __init__(self, table: _Table, block_rows: int, window_rows: int, shuffle: bool,
                 key: tuple[int, ...]):
        self.n, self.window_rows, self.shuffle, self.key = table.n, window_rows, shuffle, key
        counts = np.asarray(table.segments, dtype=np.int64)
        if shuffle:
            rng = np.random.default_rng([*key, _BLOCKS])
            phases = rng.integers(0, block_rows, len(counts))
            start, length = _blocks(counts, block_rows, phases)
            perm = rng.permutation(len(start))
            start, length = start[perm], length[perm]
        else:
            start, length = _blocks(counts, block_rows, np.zeros(len(counts), np.int64))
        self.start = start
        self.cum = np.concatenate([[0], np.cumsum(length)])
        self._window: tuple[int, np.ndarray | None] = (-1, None)

    def window_perm(self, w: int) -> np.ndarray | None:
        if self._window[0] != w:
            size = min(self.n, (w + 1) * self.window_rows) - w * self.window_rows
            perm = (np.random.default_rng([*self.key, _WINDOW, w]).permutation(size)
                    if self.shuffle else None)
            self._window = (w, perm)
        return self._window[1]

    def rows(self, p0: int, p1: int) -> np.ndarray:
        """Global rows at sequence positions ``p0:p1`` (inside one window)."""
        w = p0 // self.window_rows
        w0 = w * self.window_rows
        perm = self.window_perm(w)
        q = np.arange(p0, p1) if perm is None else w0 + perm[p0 - w0:p1 - w0]
        b = np.searchsorted(self.cum, q, side="right") - 1
        return self.start[b] + (q - self.cum[b])


def _share_range(n_batches: int, n_shares: int, share: int, equal: bool) -> tuple[int, int]:
    """(first batch, batch count) of a share: contiguous, counts differing by at most one
    (larger shares first), or all equal (the remainder dropped)."""
    if equal:
        q = n_batches // n_shares
        return share * q, q
    q, r = divmod(n_batches, n_shares)
    return share * q + min(share, r), q + (1 if share < r else 0)


def _allocate(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to ``total``, each within one of ``weights * total`` (largest
    remainders, ties to the lower index)."""
    exact = weights * total
    base = np.floor(exact).astype(np.int64)
    extra = total - int(base.sum())
    if extra > 0:
        order = np.lexsort((np.arange(len(weights)), -(exact - base)))
        base[order[:extra]] += 1
    return base


def _worker() -> tuple[int, int] | None:
    """(worker id, workers) inside a torch DataLoader worker, else None."""
    if _torch_data is None:
        return None
    info = _torch_data.get_worker_info()
    return None if info is None else (int(info.id), int(info.num_workers))


def _distributed() -> tuple[int, int] | None:
    """(rank, world size) from torch.distributed when it is initialised, else None."""
    if _torch_data is None:
        return None
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    return None


class StreamDataset(_IterBase):
    """Batches streamed from one dataset or a mixture, shuffled by blocks and windows,
    sharded over ranks and workers, resumable mid-epoch (the module docstring has the
    scheme).

    Iterating yields batches: dict column -> numpy array (torch tensors with
    ``format="torch"``), then ``transform`` (per batch) if given. With torch, use it as
    ``DataLoader(stream, batch_size=None, num_workers=k)``: each worker reads its own share.

    :param paths: a dataset folder, :class:`Dataset`, cross-match ``OUT`` folder or
        :class:`MatchedPairs`; or a list of them (a mixture).
    :param columns: columns to read (stored or standard names). Each must exist in every
        source (the names asked are the batch's keys). None: every column of the first source
        that every source has.
    :param batch_size: rows per batch.
    :param shuffle: shuffle blocks and windows (False: each source's rows in file order,
        still sharded; a mixture's schedule stays the seeded interleaving).
    :param seed: a non-negative integer; with the epoch it fixes the order.
    :param rank, world_size: this process's rank among ``world_size``; None: from
        ``torch.distributed`` when initialised (read when the object is built, and again when
        iterated outside DataLoader workers), else 0 and 1.
    :param worker_id, num_workers: which share of the rank to read; None: from
        ``torch.utils.data.get_worker_info()`` inside a DataLoader worker. Outside one, with
        ``worker_id`` None, iterating yields all ``num_workers`` shares of the rank
        round-robin, the order a DataLoader with that many workers yields them in
        (``num_workers`` None or 0: one share).
    :param drop_last: only full batches, and every share the same number of them (what DDP
        needs); otherwise the epoch's last batch may be short and shares differ by at most
        one batch (larger shares on the lower ranks and workers).
    :param weights: a mixture's weight per source (normalised; default: the sources' row
        counts). A source of weight 0 is never read.
    :param block_rows: rows per block (contiguous rows of a file, read together); default
        about 4 MiB of the columns read.
    :param buffer_rows: rows per shuffle window (rounded up to a multiple of ``batch_size``);
        about the rows held in memory per source; default about 64 MiB of the columns read.
    :param format: ``"numpy"`` or ``"torch"``.
    :param transform: applied to each batch (dict of arrays) before it is yielded.
    :param source_column: in a mixture, also give each batch this column: the index of its
        source in ``paths`` (int16, one per row).
    """

    def __init__(
        self,
        paths: Any,
        columns: Iterable[str] | str | None = None,
        batch_size: int = 256,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        worker_id: int | None = None,
        num_workers: int | None = None,
        drop_last: bool = False,
        weights: Sequence[float] | None = None,
        block_rows: int | None = None,
        buffer_rows: int | None = None,
        *,
        format: str = "numpy",
        transform: Callable[[dict[str, Any]], Any] | None = None,
        source_column: str | None = None,
    ):
        items = list(paths) if isinstance(paths, (list, tuple)) else [paths]
        if not items:
            raise LoaderError("StreamDataset needs at least one source")
        self.tables = [_table(p) for p in items]
        if columns is None:
            first = self.tables[0].default_columns()
            columns = [c for c in first if all(_has(t, c) for t in self.tables[1:])]
        cols = [columns] if isinstance(columns, str) else list(columns)
        if not cols:
            raise LoaderError("no columns to read")
        for t in self.tables:
            for c in cols:
                try:
                    t.resolve(c)
                except KeyError as exc:
                    raise KeyError(f"column {c!r} is not in every source: {exc.args[0]}") from None
        self.columns = cols
        if int(batch_size) < 1:
            raise LoaderError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise LoaderError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed, self.shuffle, self.drop_last = int(seed), bool(shuffle), bool(drop_last)
        if format not in ("numpy", "torch"):
            raise LoaderError(f"format must be 'numpy' or 'torch', got {format!r}")
        if format == "torch" and _torch_data is None:
            raise LoaderError("format='torch' needs torch installed")
        self.format, self.transform, self.source_column = format, transform, source_column
        self._auto_rank = rank is None and world_size is None
        found = _distributed() if self._auto_rank else None
        self.rank, self.world_size = found if found else (
            int(rank or 0), int(world_size if world_size is not None else 1))
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise LoaderError(f"need 0 <= rank < world_size, got {self.rank}, {self.world_size}")
        self.num_workers = None if num_workers is None else max(1, int(num_workers))
        if worker_id is not None and not 0 <= worker_id < (self.num_workers or 1):
            raise LoaderError(f"need 0 <= worker_id < num_workers (0 and None: one worker), got "
                              f"{worker_id} of {num_workers}")
        self.worker_id = worker_id
        self.weights = self._weights(weights)
        self.block_rows = [self._default(block_rows, t, BLOCK_BYTES, MAX_BLOCK_ROWS, 1)
                           for t in self.tables]
        self.buffer_rows = []
        for t in self.tables:
            rows = self._default(buffer_rows, t, BUFFER_BYTES, MAX_BUFFER_ROWS, self.batch_size)
            self.buffer_rows.append(-(-rows // self.batch_size) * self.batch_size)
        self._epoch = 0
        self._pending: dict[str, Any] | None = None  # a loaded state, applied by the next iter
        self._position: dict[str, Any] = {"epoch": 0, "batches": 0}

    # ---- configuration ----------------------------------------------------------------------
    def _weights(self, weights: Sequence[float] | None) -> np.ndarray:
        if len(self.tables) == 1:
            if weights is not None and len(weights) != 1:
                raise LoaderError("weights: one source, one weight")
            return np.ones(1)
        w = np.asarray([t.n for t in self.tables] if weights is None else weights, float)
        if w.shape != (len(self.tables),) or not np.all(np.isfinite(w)) or (w < 0).any() \
                or w.sum() <= 0:
            raise LoaderError(f"weights must be {len(self.tables)} non-negative numbers, not "
                              f"all zero; got {weights!r}")
        return w / w.sum()

    def _default(self, given: int | None, table: _Table, budget: int, cap: int,
                 floor: int) -> int:
        if given is not None:
            if int(given) < 1:
                raise LoaderError(f"block_rows and buffer_rows must be >= 1, got {given}")
            return max(int(given), floor)
        row_bytes = max(1, sum(table.row_bytes(c) for c in self.columns))
        return max(floor, min(cap, budget // row_bytes))

    def set_epoch(self, epoch: int) -> None:
        """Use this epoch's order from the next iteration on (call before each epoch, before
        the DataLoader's iterator is made: workers get a copy of the dataset then). A loaded
        state for another epoch is discarded."""
        self._epoch = int(epoch)
        if self._pending is not None and self._pending["epoch"] != self._epoch:
            self._pending = None
        self._position = {"epoch": self._epoch, "batches": 0}

    @property
    def epoch(self) -> int:
        """The epoch the next iteration yields."""
        return self._epoch

    def _resolve(self) -> tuple[int, int, int | None, int]:
        """(rank, world size, worker id or None, workers) for this iteration."""
        rank, world = self.rank, self.world_size
        inside = _worker()
        if inside is None and self._auto_rank:
            found = _distributed()
            if found:
                rank, world = found
        if self.worker_id is not None:
            return rank, world, self.worker_id, int(self.num_workers or 1)
        if inside is not None:
            if self.num_workers not in (None, inside[1]):
                raise LoaderError(f"num_workers={self.num_workers} but the DataLoader has "
                                  f"{inside[1]} workers")
            return rank, world, inside[0], inside[1]
        return rank, world, None, self.num_workers or 1

    def _source_range(self, s: int, n_shares: int, share: int) -> tuple[int, int]:
        n_batches = (self.tables[s].n // self.batch_size if (self.drop_last or self._mixture)
                     else -(-self.tables[s].n // self.batch_size))
        equal = self.drop_last and not self._mixture
        return _share_range(n_batches, n_shares, share, equal)

    @property
    def _mixture(self) -> bool:
        return len(self.tables) > 1

    def schedule(self, n_shares: int, epoch: int | None = None) -> np.ndarray:
        """A mixture's schedule: the source of each batch of a share (the same for every
        share) for ``n_shares = world_size * num_workers`` shares."""
        epoch = self._epoch if epoch is None else int(epoch)
        caps = np.array([self._source_range(s, n_shares, n_shares - 1)[1]
                         for s in range(len(self.tables))], np.int64)  # the smallest share
        w = self.weights
        live = w > 0
        total = int(np.floor(np.min(caps[live] / w[live]) + 1e-9))
        counts = _allocate(w, total)
        while total > 0 and (counts > caps).any():
            total -= 1
            counts = _allocate(w, total)
        sched = np.repeat(np.arange(len(self.tables), dtype=np.int64), counts)
        return np.random.default_rng([self.seed, epoch, _SCHEDULE]).permutation(sched)

    def share_batches(self, share: int, n_shares: int) -> int:
        """How many batches share ``share`` of ``n_shares`` yields in an epoch."""
        if self._mixture:
            return len(self.schedule(n_shares))
        return self._source_range(0, n_shares, share)[1]

    def num_batches(self, num_workers: int | None = None) -> int:
        """Batches this rank yields in an epoch with ``num_workers`` DataLoader workers
        (default: ``num_workers`` as given, else 1)."""
        w = max(1, int(num_workers or self.num_workers or 1))
        n_shares = self.world_size * w
        return sum(self.share_batches(self.rank * w + k, n_shares) for k in range(w))

    # ---- iteration ----------------------------------------------------------------------------
    def _share_iter(self, epoch: int, share: int, n_shares: int,
                    skip: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """(source, batch) for the batches of one share from batch ``skip`` on."""
        orders: dict[int, _Order] = {}

        def order(s: int) -> _Order:
            if s not in orders:
                orders[s] = _Order(self.tables[s], self.block_rows[s], self.buffer_rows[s],
                                   self.shuffle, (self.seed, epoch, s))
            return orders[s]

        if not self._mixture:
            lo, count = self._source_range(0, n_shares, share)
            for batch in self._batches(0, order, lo + min(skip, count), lo + count):
                yield 0, batch
            return
        sched = self.schedule(n_shares, epoch)
        done = np.bincount(sched[:skip], minlength=len(self.tables))
        gens = {}
        for s in range(len(self.tables)):
            lo, count = self._source_range(s, n_shares, share)
            gens[s] = self._batches(s, order, lo + int(done[s]), lo + count)
        for s in sched[skip:].tolist():
            yield s, next(gens[s])

    def _batches(self, s: int, order: Callable[[int], _Order], j0: int,
                 j1: int) -> Iterator[dict[str, np.ndarray]]:
        """Batches ``j0:j1`` of source ``s``'s sequence, read one window at a time."""
        b, n = self.batch_size, self.tables[s].n
        p, end = j0 * b, min(n, j1 * b)
        if p >= end:
            return
        o = order(s)
        while p < end:
            stop = min(end, (p // o.window_rows + 1) * o.window_rows)
            data = self.tables[s].read(o.rows(p, stop), self.columns)
            for a in range(0, stop - p, b):
                yield {k: v[a:a + b] for k, v in data.items()}
            p = stop

    def _finish(self, s: int, batch: dict[str, np.ndarray]) -> Any:
        if self.source_column is not None and self._mixture:
            n = len(next(iter(batch.values())))
            batch = {**batch, self.source_column: np.full(n, s, np.int16)}
        if self.format == "torch":
            batch = _to_torch(batch)
        return self.transform(batch) if self.transform else batch

    def __iter__(self) -> Iterator[Any]:
        """This rank's (or worker's) batches of the current epoch, from the loaded state's
        position if :meth:`load_state_dict` was called for this epoch."""
        rank, world, worker, n_workers = self._resolve()
        epoch, pending = self._epoch, self._pending
        self._pending = None
        n_shares = world * n_workers
        if worker is not None:  # one share
            share = rank * n_workers + worker
            skip = 0
            if pending is not None:
                if pending.get("scope") == "share":
                    if int(pending.get("shares", n_shares)) != n_shares:
                        raise LoaderError(f"the state is of one of {pending['shares']} shares, "
                                          f"this iteration has {n_shares}")
                    share, skip = int(pending["share"]), int(pending["batches"])
                else:
                    rot, skips = self._rank_resume(pending, rank, n_workers, n_shares)
                    share = rank * n_workers + (worker + rot) % n_workers
                    skip = skips[(worker + rot) % n_workers]
            scope = {"scope": "share", "share": share, "shares": n_shares}
            self._position = {"epoch": epoch, "batches": skip, **scope}
            for s, batch in self._share_iter(epoch, share, n_shares, skip):
                self._position["batches"] += 1
                yield self._finish(s, batch)
            return
        # the whole rank: its workers' shares round-robin, as a DataLoader yields them
        rot, skips = 0, [0] * n_workers
        if pending is not None:
            if pending.get("scope") == "share":
                raise LoaderError("a state of one share (scope 'share') resumes one worker: "
                                  "give worker_id, or load it inside that DataLoader worker")
            rot, skips = self._rank_resume(pending, rank, n_workers, n_shares)
        self._position = {"epoch": epoch, "batches": int(sum(skips)), "scope": "rank",
                          "num_workers": n_workers, "world_size": world}
        order = [(k + rot) % n_workers for k in range(n_workers)]
        live = [(k, self._share_iter(epoch, rank * n_workers + k, n_shares, skips[k]))
                for k in order]
        while live:
            still = []
            for k, it in live:
                item = next(it, None)
                if item is None:
                    continue
                self._position["batches"] += 1
                yield self._finish(*item)
                still.append((k, it))
            live = still

    def _rank_resume(self, state: dict[str, Any], rank: int, n_workers: int,
                     n_shares: int) -> tuple[int, list[int]]:
        """(rotation, batches to skip per worker share) for a rank-level state of ``n``
        batches: worker shares are yielded round-robin, so share k has yielded
        ``n // W + (k < n % W)`` and the next batch is share ``n % W``'s."""
        if "world_size" in state and int(state["world_size"]) != n_shares // n_workers:
            raise LoaderError(f"the state was saved with world_size {state['world_size']}, this "
                              f"iteration has {n_shares // n_workers}")
        if "num_workers" in state and int(state["num_workers"]) != n_workers:
            raise LoaderError(f"the state was saved with {state['num_workers']} workers, this "
                              f"iteration has {n_workers}: the shares differ")
        n = int(state["batches"])
        total = sum(self.share_batches(rank * n_workers + k, n_shares) for k in range(n_workers))
        if not 0 <= n <= total:
            raise LoaderError(f"the state is at batch {n}, but this rank has {total} batches")
        q, m = divmod(n, n_workers)
        return m, [q + (1 if k < m else 0) for k in range(n_workers)]

    def _check(self, state: dict[str, Any]) -> None:
        for key, value in self._identity().items():
            if key in state and state[key] != value:
                raise LoaderError(f"the state was saved with {key}={state[key]!r}, this "
                                  f"dataset has {value!r}")

    def _identity(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "seed": self.seed, "batch_size": self.batch_size,
                "shuffle": self.shuffle, "drop_last": self.drop_last,
                "rows": [t.n for t in self.tables],
                "weights": [float(x) for x in self.weights],
                "block_rows": list(self.block_rows), "buffer_rows": list(self.buffer_rows)}

    # ---- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Where the iteration is: ``epoch`` and ``batches`` yielded so far (``scope``
        ``"rank"``: the rank's batches, the count a DataLoader over this dataset yields;
        ``"share"``: one worker's), with what fixes the order (seed, sizes...), checked on
        load. Inside a DataLoader the workers' copies iterate, not this object: save
        ``{"epoch": e, "batches": n}`` with ``n`` the batches the DataLoader yielded (its
        default in-order delivery, same ``num_workers`` on resume)."""
        position = dict(self._pending if self._pending is not None else self._position)
        return {**self._identity(), **position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state`` (from :meth:`state_dict`, or ``{"epoch": e, "batches": n}``
        for a rank): the next iteration yields exactly the batches an uninterrupted run
        yields after that point, reading none of those before it."""
        if "epoch" not in state or "batches" not in state:
            raise LoaderError("a state needs 'epoch' and 'batches'")
        self._check(state)
        self._epoch = int(state["epoch"])
        self._pending = {k: v for k, v in state.items()
                         if k in ("epoch", "batches", "scope", "share", "shares", "num_workers",
                                  "world_size")}
        self._pending.setdefault("scope", "rank")

    def __repr__(self) -> str:
        names = ", ".join(t.name for t in self.tables)
        return (f"<StreamDataset [{names}]: batch_size {self.batch_size}, epoch {self._epoch}, "
                f"rank {self.rank}/{self.world_size}>")


def _has(table: _Table, name: str) -> bool:
    try:
        table.resolve(name)
    except KeyError:
        return False
    return True
