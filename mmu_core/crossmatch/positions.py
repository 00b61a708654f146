"""What a match task reads: ``object_id``, ``ra`` and ``dec`` of some files of one dataset.

Only these three columns are read, from the positions sidecar the build writes
(``_index/pos_*.npy``; the pixel files where there is none), along with where each row is
stored (file, row), so the matched rows can later be gathered by random access.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mmu_core.storage.reader import Dataset

FileRef = tuple[int, str, int]  # (index in the dataset's file list, absolute path, pixel)


def files_by_pixel(ds: Dataset) -> dict[int, list[FileRef]]:
    """pixel -> the dataset's files of that pixel."""
    out: dict[int, list[FileRef]] = {}
    for i, (rel, pixel) in enumerate(zip(ds.relpaths, ds.file_pixels, strict=True)):
        out.setdefault(pixel, []).append((i, str(ds.path / rel), pixel))
    return out


@dataclass
class Positions:
    """object_id, ra and dec of every row of some files of one dataset (in the files' order),
    and where each row is stored."""

    id: np.ndarray
    ra: np.ndarray  # degrees, float64
    dec: np.ndarray  # degrees, float64
    starts: np.ndarray  # the first row of each file here, then the total (len(files) + 1)
    file: np.ndarray  # each file's index in the dataset's file list
    pixel: np.ndarray  # each file's pixel

    def __len__(self) -> int:
        return len(self.ra)

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(file index, row in that file, pixel) of rows of this table."""
        k = np.searchsorted(self.starts, rows, side="right") - 1
        return (self.file[k].astype(np.int32), (rows - self.starts[k]).astype(np.int32),
                self.pixel[k])

    def sorted_by_pixel_and_id(self) -> bool:
        """Whether the rows run in (pixel, object_id) order, as the sharder stores them."""
        if len(self.id) < 2:
            return True
        if np.any(np.diff(self.pixel) < 0):
            return False
        breaks = np.flatnonzero(~(self.id[1:] > self.id[:-1])) + 1
        new_pixel = self.starts[1:-1][self.pixel[1:] != self.pixel[:-1]]
        return bool(np.isin(breaks, new_pixel).all())

    def rank(self) -> np.ndarray:
        """Each row's position in (pixel, object_id) order."""
        if self.sorted_by_pixel_and_id():
            return np.arange(len(self.id))
        pixel = np.repeat(self.pixel, np.diff(self.starts))
        rank = np.empty(len(self.id), np.int64)
        rank[np.lexsort((self.id, pixel))] = np.arange(len(self.id))
        return rank


def _read_column(fid: Any, name: bytes) -> np.ndarray:
    import h5py

    d = h5py.h5d.open(fid, name)
    out = np.empty(d.shape, d.dtype)
    if out.size:
        d.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


def read_positions(files: list[FileRef], id_dtype: str) -> Positions:
    """object_id, ra and dec of every row of the files (all of one dataset): nothing else.

    Reads the dataset's positions sidecar (``_index/pos_*.npy``, written with the id index)
    where there is one: files that follow each other in the dataset are one slice of each
    memory map, so a block of pixels costs a few slices instead of opening its files.
    Otherwise (e.g. MMU v1 folders) it reads the files with h5py's low-level API: with
    thousands of small pixel files, opening and reading cost more in h5py's high-level
    wrappers than in HDF5 itself (~0.8 vs ~0.5 ms a file).
    """
    import h5py

    from mmu_core.storage.index import load_positions

    index = np.array([f[0] for f in files], dtype=np.int64)
    pixels = np.array([f[2] for f in files], dtype=np.int64)
    side = load_positions(Path(files[0][1]).parent.parent) if files else None
    if side is not None:
        first, last = side[3][index], side[3][index + 1]
        counts = last - first
        cut = np.flatnonzero(np.diff(index) != 1) + 1  # runs of consecutive files
        runs = [(int(first[a]), int(last[b - 1]))
                for a, b in zip(np.r_[0, cut], np.r_[cut, len(index)], strict=True)]

        def take(column: np.ndarray) -> np.ndarray:
            if len(runs) == 1:
                return np.asarray(column[runs[0][0]:runs[0][1]])
            return np.concatenate([column[a:b] for a, b in runs])

        ids, ra, dec = take(side[0]), take(side[1]), take(side[2])
    else:
        cols: dict[str, list[np.ndarray]] = {"id": [], "ra": [], "dec": []}
        for _, path, _ in files:
            fid = h5py.h5f.open(path.encode(), h5py.h5f.ACC_RDONLY)
            try:
                for key, name in (("id", b"object_id"), ("ra", b"ra"), ("dec", b"dec")):
                    cols[key].append(_read_column(fid, name))
            finally:
                fid.close()
        counts = np.array([len(c) for c in cols["id"]], dtype=np.int64)
        ids, ra, dec = ((np.concatenate(cols[k]) if files else np.empty(0))
                        for k in ("id", "ra", "dec"))
    return Positions(
        id=ids.astype(id_dtype, copy=False), ra=ra.astype(np.float64, copy=False),
        dec=dec.astype(np.float64, copy=False), starts=np.r_[0, np.cumsum(counts)].astype(np.int64),
        file=index, pixel=pixels,
    )
