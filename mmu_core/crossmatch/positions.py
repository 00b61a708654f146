"""What a match task reads: ``object_id``, ``ra`` and ``dec`` of some files of one dataset.

Only these three columns are read, from a positions sidecar, along with where each row is
stored (file, row), so the matched rows can later be gathered by random access. A build
writes its sidecar in ``_index/``; for a folder without one (MMU v1 files)
:func:`open_inputs` has one made once in the positions cache
(:mod:`mmu_core.storage.positions_cache`; two large folders are opened and read at once, on
two processes), and later cross-matches of the same files read it from there. Where no
sidecar can be had, a task reads the pixel files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmu_core.storage import layout
from mmu_core.storage.positions_cache import Folder, process_pool, sidecar_folders
from mmu_core.storage.reader import Dataset, as_dataset, open_dataset

# Opening a folder without a manifest reads every file's column list (~0.5 ms a file), and
# making its sidecar every file's positions (~0.2 ms); from this many pixel folders on each
# side, another process doing that for one of them (~0.3 s to start) wins.
OPEN_IN_PROCESS_MIN_PIXELS = 512

FileRef = tuple[int, str, int]  # (index in the dataset's file list, absolute path, pixel)


def _pixel_folders(value: Dataset | Path | str) -> int:
    """How many pixel folders a dataset folder given by path, without a manifest, holds (0
    for a Dataset, or a folder with a manifest, which opens at once)."""
    if isinstance(value, Dataset):
        return 0
    path = Path(value)
    if (path / layout.MANIFEST_NAME).is_file() or not path.is_dir():
        return 0
    with os.scandir(path) as entries:
        return sum(1 for e in entries if e.name.startswith(layout.PIXEL_PREFIX))


def _folder(ds: Dataset) -> Folder:
    return Folder.of(ds.path, ds.relpaths, ds.file_rows, ds.schema["object_id"].dtype)


def open_with_sidecar(path: str) -> tuple[Dataset, Path | None]:
    """Task: open a dataset folder and find (or make, reading its files here) its positions
    sidecar."""
    ds = open_dataset(path)
    return ds, sidecar_folders([_folder(ds)])[0]


def open_inputs(left: Dataset | Path | str, right: Dataset | Path | str, workers: int = 1,
                ) -> tuple[Dataset, Dataset, tuple[Path | None, Path | None]]:
    """The two datasets of a cross-match, open, and the folders of their positions sidecars
    (``None``: none to be had, the tasks read the files).

    With ``workers`` > 1, of two large folders given by path without a manifest (MMU v1
    files), the right one is opened on another process while the left one is opened here,
    each then making its folder's sidecar if the cache has none; otherwise the datasets are
    opened here and the missing sidecars made on ``workers`` processes
    (:func:`~mmu_core.storage.positions_cache.sidecar_folders`).
    """
    if workers > 1 and min(_pixel_folders(left), _pixel_folders(right)) \
            >= OPEN_IN_PROCESS_MIN_PIXELS:
        with process_pool(1) as pool:
            other = pool.submit(open_with_sidecar, str(right))
            lds, lside = open_with_sidecar(str(left))
            rds, rside = other.result()
        return lds, rds, (lside, rside)
    lds, rds = as_dataset(left), as_dataset(right)
    lside, rside = sidecar_folders([_folder(lds), _folder(rds)], workers)
    return lds, rds, (lside, rside)


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
        rank = np.empty(len(self.id), np.int64)
        if np.any(np.diff(self.pixel) < 0):
            pixel = np.repeat(self.pixel, np.diff(self.starts))
            rank[np.lexsort((self.id, pixel))] = np.arange(len(self.id))
            return rank
        # Files in pixel order (as listed): sort each pixel's rows on their own, ~10x faster
        # than one lexsort of the block (MMU v1 files need not be sorted by id).
        runs = self.starts[np.r_[0, np.flatnonzero(np.diff(self.pixel)) + 1, len(self.pixel)]]
        for a, b in zip(runs[:-1].tolist(), runs[1:].tolist(), strict=True):
            rank[a + np.argsort(self.id[a:b])] = np.arange(a, b)
        return rank


def read_positions(files: list[FileRef], id_dtype: str,
                   sidecar: Path | str | None = None) -> Positions:
    """object_id, ra and dec of every row of the files (all of one dataset): nothing else.

    Reads the positions sidecar in ``sidecar`` (see :func:`open_inputs`; by default the
    dataset's ``_index/``) where there is one: files that follow each other in the dataset
    are one slice of each memory map, so a block of pixels costs a few slices instead of
    opening its files. Otherwise it reads the files
    (:func:`~mmu_core.storage.index.read_file_positions`).
    """
    from mmu_core.storage.index import load_position_files, load_positions, read_file_positions

    index = np.array([f[0] for f in files], dtype=np.int64)
    pixels = np.array([f[2] for f in files], dtype=np.int64)
    side = None
    if files:
        side = (load_position_files(sidecar) if sidecar is not None
                else load_positions(Path(files[0][1]).parent.parent))
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
        cols = [read_file_positions(path) for _, path, _ in files]
        counts = np.array([len(c[0]) for c in cols], dtype=np.int64)
        ids, ra, dec = ((np.concatenate([c[k] for c in cols]) if files else np.empty(0))
                        for k in range(3))
    return Positions(
        id=ids.astype(id_dtype, copy=False), ra=ra.astype(np.float64, copy=False),
        dec=dec.astype(np.float64, copy=False), starts=np.r_[0, np.cumsum(counts)].astype(np.int64),
        file=index, pixel=pixels,
    )
