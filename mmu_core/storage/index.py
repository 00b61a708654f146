"""The object_id index: sorted ids with the file and row of each, memory-mapped.

``_index/ids.npy`` (sorted object_id), ``_index/file.npy`` (int32, position in the
manifest's file list) and ``_index/row.npy`` (int64). A lookup is a ``searchsorted`` over the
memory-mapped ids: its cost grows with the number of ids asked for (log of the dataset size
per id), and only the pages touched are read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np

from mmu_core.errors import MMUError
from mmu_core.storage import layout

FILES = ("ids.npy", "file.npy", "row.npy")
# Positions sidecar, in file order (the manifest's file list, rows as stored): what
# cross-matching reads instead of opening every pixel file (opening, not bytes, dominates).
POSITION_FILES = ("pos_id.npy", "pos_ra.npy", "pos_dec.npy", "pos_offset.npy")


class IdIndex:
    def __init__(self, ids: np.ndarray, file: np.ndarray, row: np.ndarray,
                 positions: tuple[np.ndarray, ...] | None = None):
        self.ids, self.file, self.row = ids, file, row
        self.positions = positions  # (ids, ra, dec, offsets) in file order, when read

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, dataset_dir: Path) -> IdIndex | None:
        folder = Path(dataset_dir) / layout.INDEX_DIR
        if not all((folder / f).is_file() for f in FILES):
            return None
        arrays = [np.load(folder / f, mmap_mode="r") for f in FILES]
        return cls(*arrays)

    @classmethod
    def from_files(cls, dataset_dir: Path, relpaths: list[str]) -> IdIndex:
        """Build the index by reading every file's object_id (no index on disk)."""
        ids, files, rows, ras, decs = [], [], [], [], []
        for i, rel in enumerate(relpaths):
            with h5py.File(Path(dataset_dir) / rel, "r") as h:
                a = h["object_id"][...]
                ras.append(h["ra"][...].astype(np.float64))
                decs.append(h["dec"][...].astype(np.float64))
            ids.append(a)
            files.append(np.full(len(a), i, np.int32))
            rows.append(np.arange(len(a), dtype=np.int64))
        if not ids:
            return cls(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int64))
        all_ids = np.concatenate(ids)
        order = np.argsort(all_ids, kind="stable")
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in ids])]).astype(np.int64)
        positions = (all_ids, np.concatenate(ras), np.concatenate(decs), offsets)
        return cls(all_ids[order], np.concatenate(files)[order], np.concatenate(rows)[order],
                   positions)

    def save(self, dataset_dir: Path) -> None:
        folder = Path(dataset_dir) / layout.INDEX_DIR
        tmp = layout.tmp_name(folder, str(os.getpid()))
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        arrays = list(zip(FILES, (self.ids, self.file, self.row), strict=True))
        if self.positions is not None:
            arrays += list(zip(POSITION_FILES, self.positions, strict=True))
        for name, arr in arrays:
            arr = np.asarray(arr)
            np.save(tmp / name, arr.astype(arr.dtype.str))  # drop h5py dtype metadata
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(tmp, folder)

    def duplicates(self) -> np.ndarray:
        """Ids that appear more than once."""
        ids = np.asarray(self.ids)
        if len(ids) < 2:
            return ids[:0]
        return np.unique(ids[1:][ids[1:] == ids[:-1]])

    def locate(self, object_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(file, row, found) for each id; ``found`` False where the id is absent."""
        q = np.asarray(object_ids)
        if q.dtype.kind == "U":
            q = np.char.encode(q, "utf-8")
        if len(self.ids) == 0:
            z = np.zeros(len(q), np.int64)
            return z.astype(np.int32), z, np.zeros(len(q), bool)
        pos = np.searchsorted(self.ids, q)
        pos = np.clip(pos, 0, len(self.ids) - 1)
        found = np.asarray(self.ids[pos]) == q
        return np.asarray(self.file[pos]), np.asarray(self.row[pos]), found


def load_positions(dataset_dir: Path | str) -> tuple[np.ndarray, ...] | None:
    """(ids, ra, dec, offsets) memory-mapped, in file order; None if the dataset has none.

    Rows of the i-th file of the manifest are ``offsets[i]:offsets[i + 1]``.
    """
    return load_position_files(Path(dataset_dir) / layout.INDEX_DIR)


def load_position_files(folder: Path | str) -> tuple[np.ndarray, ...] | None:
    """The positions sidecar held in ``folder`` (``pos_*.npy``: a dataset's ``_index/``, or an
    entry of :mod:`mmu_core.storage.positions_cache`), memory-mapped; None if it has none."""
    folder = Path(folder)
    if not all((folder / f).is_file() for f in POSITION_FILES):
        return None
    return tuple(np.load(folder / f, mmap_mode="r") for f in POSITION_FILES)


POSITION_COLUMNS = (b"object_id", b"ra", b"dec")


class PositionsReadError(MMUError):
    """A file's object_id, ra and dec cannot be read (names the file and why)."""


def read_file_positions(path: Path | str, out: tuple[np.ndarray, ...] | None = None,
                        rows: int | None = None) -> tuple[np.ndarray, ...]:
    """``object_id``, ``ra`` and ``dec`` of one HDF5 file, as stored (or converted by HDF5 into
    the arrays ``out``, which then hold exactly ``rows`` rows each).

    h5py's low-level API: with thousands of small pixel files, opening and reading cost more
    in h5py's high-level wrappers than in HDF5 itself (~0.8 vs ~0.5 ms a file). Columns stored
    outside the file (external links, external raw storage, virtual datasets), which the
    reader refuses, are refused here too.
    """
    fid = h5py.h5f.open(str(path).encode(), h5py.h5f.ACC_RDONLY)
    try:
        cols = []
        for k, name in enumerate(POSITION_COLUMNS):
            what = name.decode()
            try:
                link = fid.links.get_info(name).type
            except (KeyError, RuntimeError):
                raise PositionsReadError(f"{path}: no {what} column") from None
            if link != h5py.h5l.TYPE_HARD:
                raise PositionsReadError(f"{path}: {what} is a link, not a column of the file")
            d = h5py.h5d.open(fid, name)
            if d.get_offset() is None:  # not one block inside the file: chunked, or else?
                plist = d.get_create_plist()
                if plist.get_layout() == h5py.h5d.VIRTUAL or plist.get_external_count():
                    raise PositionsReadError(f"{path}: {what} is stored outside the file")
            if len(d.shape) != 1 or (out is not None and d.shape[0] != rows):
                raise PositionsReadError(f"{path}: {what} has shape {d.shape}, expected "
                                         f"({'rows' if out is None else rows},)")
            arr = np.empty(d.shape, d.dtype) if out is None else out[k]
            if arr.size:
                d.read(h5py.h5s.ALL, h5py.h5s.ALL, arr)
            cols.append(arr)
        return tuple(cols)
    finally:
        fid.close()


def by_file(file_idx: np.ndarray, row_idx: np.ndarray):
    """Rows addressed as (file, row) pairs, grouped for reading: yields ``(file, rows, dest)``
    per file in file order, ``rows`` ascending and ``dest`` their places in the input order."""
    order = np.lexsort((row_idx, file_idx))  # file by file, rows ascending
    f_sorted, r_sorted = file_idx[order], row_idx[order]
    bounds = np.flatnonzero(np.diff(f_sorted)) + 1
    for sel in np.split(np.arange(len(order)), bounds):
        if len(sel):
            yield int(f_sorted[sel[0]]), r_sorted[sel], order[sel]
