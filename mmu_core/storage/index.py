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

from mmu_core.storage import layout

FILES = ("ids.npy", "file.npy", "row.npy")


class IdIndex:
    def __init__(self, ids: np.ndarray, file: np.ndarray, row: np.ndarray):
        self.ids, self.file, self.row = ids, file, row

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
        ids, files, rows = [], [], []
        for i, rel in enumerate(relpaths):
            with h5py.File(Path(dataset_dir) / rel, "r") as h:
                a = h["object_id"][...]
            ids.append(a)
            files.append(np.full(len(a), i, np.int32))
            rows.append(np.arange(len(a), dtype=np.int64))
        if not ids:
            return cls(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int64))
        all_ids = np.concatenate(ids)
        order = np.argsort(all_ids, kind="stable")
        return cls(all_ids[order], np.concatenate(files)[order], np.concatenate(rows)[order])

    def save(self, dataset_dir: Path) -> None:
        folder = Path(dataset_dir) / layout.INDEX_DIR
        tmp = layout.tmp_name(folder, str(os.getpid()))
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for name, arr in zip(FILES, (self.ids, self.file, self.row), strict=True):
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
