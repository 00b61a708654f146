"""Cross-matching two stored datasets by sky position, HEALPix block by HEALPix block.

How it works
------------
1. **Plan** (from the manifests only, nothing is read): a left pixel takes part when one of
   the pixels it can match against — itself and its 8 neighbours for radii up to
   ``NEIGHBOUR_LIMIT_ARCSEC``, every pixel within reach of a disc otherwise — holds right
   objects. Those left pixels are grouped into blocks of the NESTED hierarchy (a whole
   order-k pixel, split in four until its left rows plus the right rows it needs fit
   ``max_task_rows``); each block is one task, which reads its left pixels and the right pixels
   they need. So only pixels present in both datasets (with their neighbours) are opened.
2. **Match** (one task per block, in parallel through :func:`mmu_core.executors.run_tasks`,
   on threads locally): only ``object_id``, ``ra`` and ``dec`` are read, from the positions
   sidecar the build writes (``_index/pos_*.npy``; the pixel files where there is none);
   :func:`mmu_core.skymatch.pairs_within` (the zones algorithm: sort by declination zone and
   ra, binary-search each object's window, test the unit-vector chord ``<= 2 sin(r / 2)`` as
   astropy's KD-tree does) finds the pairs. A pair belongs to the block of its left object,
   so every pair is found exactly once, as if there were no partitioning. Memory per task is
   bounded by ``max_task_rows`` (or by one pixel and its neighbours, whichever is larger),
   never by the catalogs. For ``how="all"`` the driver writes each block's pairs to the
   catalog as soon as the blocks before it are done, while later blocks are matched.
3. **Resolve** (``how="nearest"``): see :func:`cross_match` for the one-to-one rule.
4. **Write** ``OUT/catalog.parquet`` and the matched dataset, whose rows are gathered from the
   two inputs by random access (the (file, row) of every matched object is known from step 2,
   kept in temporary part files), one task per block again.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import MMUError
from mmu_core.executors import run_tasks
from mmu_core.schemas import SCHEMA_VERSION
from mmu_core.skymatch import chord_of, chord_to_arcsec, pairs_within, unit_vectors, zone_height
from mmu_core.storage import layout
from mmu_core.storage.columns import ColumnSpec
from mmu_core.storage.derived import finalize_dataset, prepare_output
from mmu_core.storage.reader import Dataset, as_dataset, open_dataset
from mmu_core.version import __version__

HOW = ("nearest", "all")
ORDER = int(round(math.log2(layout.NSIDE)))  # HEALPix order of the stored pixels (4)
# Up to this radius the 8 neighbours of a pixel hold every possible partner of its objects: at
# NSIDE 16 the nearest pixel beyond the neighbours is >= 2.5 deg away from any point of it.
NEIGHBOUR_LIMIT_ARCSEC = 3600.0
ZONES_NEAREST_ARCSEC = 60.0  # nearest matches up to this radius take all pairs, then the closest
DEFAULT_TASK_ROWS = 3_000_000  # left + right rows one task may hold (~100 bytes each)
GATHER_BATCH_BYTES = 128 * 1024 * 1024  # matched rows gathered and written per batch
CATALOG_NAME = "catalog.parquet"
MATCHED_CONFIG = "matched"
POSITION_COLUMNS = ("object_id", "ra", "dec")


class CrossMatchError(MMUError):
    """Bad cross-match arguments or output folder."""


@dataclass
class CrossMatchResult:
    """What :func:`cross_match` returns: counts, timings, paths and the catalog."""

    how: str
    radius_arcsec: float
    out: Path | None = None
    dataset_path: Path | None = None  # the matched dataset (None without ``out``)
    pairs: int = 0
    tasks: int = 0
    left_pixels_read: list[int] = field(default_factory=list)
    right_pixels_read: list[int] = field(default_factory=list)
    candidates: int = 0  # nearest: left objects with a match before the one-to-one rule
    match_seconds: float = 0.0
    write_seconds: float = 0.0
    table: Any = field(default=None, repr=False)  # the catalog, when not written to OUT

    @property
    def catalog_path(self) -> Path | None:
        return None if self.out is None else self.out / CATALOG_NAME

    @property
    def catalog(self) -> Any:
        """The catalog as a ``pyarrow.Table`` (read from OUT/catalog.parquet when written)."""
        if self.table is not None:
            return self.table
        import pyarrow.parquet as pq

        return pq.read_table(self.catalog_path, memory_map=True)

    def dataset(self) -> Dataset:
        """The matched dataset, opened."""
        if self.dataset_path is None:
            raise CrossMatchError("no matched dataset was written (out=None or catalog_only)")
        return open_dataset(self.dataset_path)

    def __len__(self) -> int:
        return self.pairs

    def __repr__(self) -> str:
        return (f"<CrossMatchResult {self.pairs:,} pairs ({self.how}, {self.radius_arcsec}\"), "
                f"{self.tasks} tasks, dataset {self.dataset_path}>")


# ---- plan -------------------------------------------------------------------------------
@dataclass
class _Block:
    order: int
    index: int
    left: list[int]
    right: list[int]
    cost: int


def search_pixels(pixels: np.ndarray, radius_arcsec: float) -> list[np.ndarray]:
    """For each pixel, the pixels that can hold an object within the radius of one of its own."""
    pixels = np.asarray(pixels, dtype=np.int64)
    if len(pixels) == 0:
        return []
    if radius_arcsec <= NEIGHBOUR_LIMIT_ARCSEC:
        nb = np.concatenate([pixels[:, None], layout.neighbours(pixels)], axis=1)
        nb.sort(axis=1)  # itself and its 8 (or 7) neighbours, all distinct; -1 first
        return [row[row >= 0] for row in nb]
    import healpy

    # Larger radii: every pixel touching a disc that covers the pixel grown by the radius
    # (max_pixrad bounds the centre-to-corner distance; 10% spare for the curved edges).
    reach = min(np.pi, np.radians(radius_arcsec / 3600.0)
                + 1.1 * healpy.max_pixrad(layout.NSIDE))
    return [
        healpy.query_disc(layout.NSIDE, healpy.pix2vec(layout.NSIDE, int(p), nest=True), reach,
                          inclusive=True, nest=True).astype(np.int64)
        for p in pixels
    ]


def _rows_per_pixel(ds: Dataset) -> dict[int, int]:
    rows: dict[int, int] = {}
    for pixel, n in zip(ds.file_pixels, ds.file_rows, strict=True):
        rows[pixel] = rows.get(pixel, 0) + int(n)
    return rows


def plan_blocks(
    left_rows: dict[int, int], right_rows: dict[int, int], radius_arcsec: float,
    max_task_rows: int = DEFAULT_TASK_ROWS, min_tasks: int = 1,
) -> list[_Block]:
    """Group the left pixels that have right pixels within reach into NESTED blocks."""
    left = np.array(sorted(left_rows), dtype=np.int64)
    has_right = np.zeros(layout.NPIX, bool)
    has_right[np.array(sorted(right_rows), dtype=np.int64)] = True
    need: dict[int, np.ndarray] = {}
    for p, s in zip(left.tolist(), search_pixels(left, radius_arcsec), strict=True):
        s = s[has_right[s]]
        if len(s):
            need[p] = s
    active = np.array(sorted(need), dtype=np.int64)

    def block(order: int, index: int) -> _Block | None:
        shift = 2 * (ORDER - order)
        a, b = np.searchsorted(active, [index << shift, (index + 1) << shift])
        lp = active[a:b].tolist()
        if not lp:
            return None
        rp = np.unique(np.concatenate([need[p] for p in lp])).tolist()
        cost = sum(left_rows[p] for p in lp) + sum(right_rows[p] for p in rp)
        return _Block(order, index, lp, rp, cost)

    def children(b: _Block) -> list[_Block]:
        kids = (block(b.order + 1, 4 * b.index + k) for k in range(4))
        return [k for k in kids if k is not None]

    blocks: list[_Block] = []
    stack = [b for b in (block(0, i) for i in range(12)) if b is not None]
    while stack:
        b = stack.pop()
        if b.cost <= max_task_rows or b.order == ORDER:
            blocks.append(b)
        else:
            stack.extend(children(b))
    # Enough tasks to keep every worker busy: split the largest splittable block.
    while len(blocks) < min_tasks:
        splittable = [b for b in blocks if b.order < ORDER]
        if not splittable:
            break
        big = max(splittable, key=lambda b: b.cost)
        blocks.remove(big)
        blocks.extend(children(big))
    # In healpix order: blocks are disjoint NESTED ranges, so their pairs, each block's
    # sorted, are the catalog in order.
    return sorted(blocks, key=lambda b: b.left[0])


# ---- match ------------------------------------------------------------------------------
FileRef = tuple[int, str, int]  # (index in the dataset's file list, absolute path, pixel)


def files_by_pixel(ds: Dataset) -> dict[int, list[FileRef]]:
    """pixel -> the dataset's files of that pixel."""
    out: dict[int, list[FileRef]] = {}
    for i, (rel, pixel) in enumerate(zip(ds.relpaths, ds.file_pixels, strict=True)):
        out.setdefault(pixel, []).append((i, str(ds.path / rel), pixel))
    return out


def _read_column(fid: Any, name: bytes) -> np.ndarray:
    import h5py

    d = h5py.h5d.open(fid, name)
    out = np.empty(d.shape, d.dtype)
    if out.size:
        d.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


@dataclass
class Positions:
    """object_id, ra and dec of every row of some files of one dataset (in the files' order),
    and where each row is stored."""

    id: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
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


def _pairs(left: Positions, right: Positions, radius_arcsec: float, how: str,
           density: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left row, right row, chord) of the block's pairs: all of them, or each left object's
    nearest (exact ties: the smaller right object_id)."""
    if how == "all" or radius_arcsec <= ZONES_NEAREST_ARCSEC:
        li, ri, chord = pairs_within(left.ra, left.dec, right.ra, right.dec, radius_arcsec,
                                     zone_height_deg=zone_height(radius_arcsec, density))
        if how == "nearest" and len(li):
            keep = best_per_group(li, len(left), chord, right.id[ri])
            li, ri, chord = li[keep], ri[keep], chord[keep]
        return li, ri, chord
    # Large radii: all pairs could be very many; one nearest neighbour per left object.
    # (query's bound is strict: nudge it so "within" is chord <= 2 sin(r/2) here too.)
    from scipy.spatial import cKDTree

    limit = chord_of(radius_arcsec)
    tree = cKDTree(unit_vectors(right.ra, right.dec), balanced_tree=False, compact_nodes=False)
    d, j = tree.query(unit_vectors(left.ra, left.dec), k=1,
                      distance_upper_bound=np.nextafter(limit, np.inf))
    li = np.flatnonzero(d <= limit)
    return li, j[li].astype(np.int64), d[li]


def pair_order(left_rank: np.ndarray, right_id: np.ndarray) -> np.ndarray:
    """The order of pairs by (left rank, right object_id): a stable sort on the left, then
    the few left objects with several pairs put in right-id order among themselves."""
    order = np.argsort(left_rank, kind="stable")
    ranks = left_rank[order]
    dup = np.flatnonzero(ranks[1:] == ranks[:-1])
    if len(dup):
        at = np.unique(np.concatenate([dup, dup + 1]))
        group = order[at]
        order[at] = group[np.lexsort((right_id[group], left_rank[group]))]
    return order


def _match_task(
    block: int, left_files: list[FileRef], right_files: list[FileRef],
    id_dtypes: tuple[str, str], radius_arcsec: float, how: str,
    shared_right_pixels: list[int], part_path: str | None, return_table: bool,
) -> dict[str, Any]:
    """Task: the pairs whose left object lies in the left files' pixels, sorted by (healpix,
    left id, right id); for ``nearest`` already one-to-one within the block. They go to the
    Arrow file ``part_path`` when there is one (for the driver to settle ``nearest`` claims
    without holding every pair, and for the matched-dataset writers), and are returned as an
    Arrow table with ``return_table`` (the driver writes them to the catalog as they come)."""
    import pyarrow as pa

    left = read_positions(left_files, id_dtypes[0])
    right = read_positions(right_files, id_dtypes[1])
    area = len(np.unique(right.pixel)) * layout.PIXEL_AREA_DEG2
    density = len(right) / area if area else None
    li, ri, chord = _pairs(left, right, radius_arcsec, how, density)
    sep = chord_to_arcsec(chord)
    candidates = len(li)
    if how == "nearest" and len(li):
        # The rule within the block (in parallel); the driver settles right objects that
        # left objects of two blocks claim. A right row of this block is one right object.
        keep = one_to_one(ri, sep, left.id[li], n_keys=len(right))
        li, ri, sep = li[keep], ri[keep], sep[keep]
    order = pair_order(left.rank()[li], right.id[ri])
    li, ri, sep = li[order], ri[order], sep[order]
    lfile, lrow, lpixel = left.locate(li)
    rfile, rrow, rpixel = right.locate(ri)
    shared = np.zeros(layout.NPIX, bool)
    shared[np.asarray(shared_right_pixels, np.int64)] = True
    table = pa.table({
        "left_object_id": left.id[li], "right_object_id": right.id[ri],
        "separation_arcsec": sep, "ra": left.ra[li], "dec": left.dec[li],
        "healpix": lpixel, "right_ra": right.ra[ri], "right_dec": right.dec[ri],
        "left_file": lfile, "left_row": lrow, "right_file": rfile, "right_row": rrow,
    })
    part: dict[str, Any] = {"block": block, "candidates": candidates, "rows": table.num_rows}
    if how == "nearest":
        # Claims the driver must settle: pairs whose right object lies in a pixel other
        # blocks also read (so they may claim it too), sorted by that pixel.
        rows = np.flatnonzero(shared[rpixel])
        rows = rows[np.argsort(rpixel[rows], kind="stable")]
        claims = pa.table({
            "row": rows, "right_pixel": rpixel[rows],
            "right_key": (rfile[rows].astype(np.int64) << 32) | rrow[rows].astype(np.int64),
            "separation_arcsec": sep[rows], "left_object_id": left.id[li][rows],
        })
        part["claim_pixels"], part["claim_counts"] = np.unique(rpixel[rows], return_counts=True)
        if part_path is None:
            part["claims"] = claims
        elif len(rows):
            part["claims_path"] = part_path + ".claims"
            write_part(claims, part["claims_path"])
    if return_table:
        part["table"] = table
    if part_path is not None and table.num_rows:
        write_part(table, part_path)
        part["path"] = part_path
    return part


def write_part(table: Any, path: str) -> None:
    """A temporary part: an uncompressed Arrow IPC file, written as fast as memory is copied
    and read back through a memory map without decoding."""
    import pyarrow as pa

    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_part(path: str, columns: list[str] | None = None) -> Any:
    import pyarrow as pa

    table = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
    return table if columns is None else table.select(columns)


# The catalog: uncompressed (every Parquet reader reads that), dictionaries only where values
# repeat: ids, coordinates and separations hardly compress, and snappy plus dictionary
# attempts on every column cost 2-3x the write.
CATALOG_PARQUET = {"compression": "none", "use_dictionary": ["healpix"]}


CATALOG_FIELDS = ("match_id", "left_object_id", "right_object_id", "separation_arcsec", "ra",
                  "dec", "healpix", "right_ra", "right_dec")


def best_per_group(group: np.ndarray, n_groups: int, *keys: np.ndarray) -> np.ndarray:
    """Sorted indices of the best element of each group (``group`` in ``[0, n_groups)``): the
    smallest by ``keys[0]``, then ``keys[1]``... Most groups have one element; only the others
    are sorted."""
    count = np.bincount(group, minlength=n_groups)
    several = count[group] > 1
    best = np.flatnonzero(~several)
    crowd = np.flatnonzero(several)
    if len(crowd):
        order = np.lexsort(tuple(k[crowd] for k in reversed(keys)) + (group[crowd],))
        g = group[crowd][order]
        first = np.ones(len(order), bool)
        first[1:] = g[1:] != g[:-1]
        best = np.concatenate([best, crowd[order[first]]])
    return np.sort(best)


def one_to_one(right_key: np.ndarray, separation: np.ndarray, left_id: np.ndarray,
               n_keys: int | None = None) -> np.ndarray:
    """Indices of the candidates that keep their right object: for each right object, the
    candidate with the smallest separation (ties: the smallest left object_id). ``right_key``
    identifies right objects; with ``n_keys`` it is already a number in ``[0, n_keys)``."""
    if len(right_key) == 0:
        return np.empty(0, np.int64)
    if n_keys is None:
        _, right_key = np.unique(right_key, return_inverse=True)
        n_keys = int(right_key.max()) + 1
    return best_per_group(right_key, n_keys, separation, left_id)


# ---- driver -----------------------------------------------------------------------------
def cross_match(
    left: Dataset | Path | str,
    right: Dataset | Path | str,
    out: Path | str | None = None,
    radius_arcsec: float = 1.0,
    how: str = "nearest",
    workers: int = 1,
    *,
    scheduler: str | None = None,
    left_columns: Iterable[str] | None = None,
    right_columns: Iterable[str] | None = None,
    catalog_only: bool = False,
    overwrite: bool = False,
    max_task_rows: int = DEFAULT_TASK_ROWS,
) -> CrossMatchResult:
    """Cross-match two stored datasets by sky position.

    ``how="all"``: every (left, right) pair closer than ``radius_arcsec`` (the pairs astropy's
    ``search_around_sky`` returns). ``how="nearest"``: one-to-one matches by this rule —

        Each left object proposes its nearest right object within the radius (the match
        astropy's ``match_to_catalog_sky`` gives, cut at the radius; on an exact distance tie,
        the smaller right object_id). When several left objects
        propose the same right object, only the closest of them keeps it (on an exact tie,
        the smallest left object_id); the others stay unmatched — they do not fall back to
        their second-nearest right object. So every left and every right object appears in
        at most one pair.

    "Within the radius" means a unit-vector chord ``<= 2 sin(radius / 2)``, in both modes.

    With ``out``, writes ``OUT/catalog.parquet`` (``match_id``, ``left_object_id``,
    ``right_object_id``, ``separation_arcsec``, ``ra``, ``dec`` and ``healpix`` of the left
    object, ``right_ra``, ``right_dec``) and, unless ``catalog_only``, the matched dataset
    ``OUT/<left>_x_<right>/matched`` (see :func:`write_matched_dataset`). Without ``out`` only
    the catalog is computed and returned. ``left_columns``/``right_columns`` limit the columns
    copied into the matched dataset (default: all). Blocks of pixels are matched on
    ``workers`` threads (or the dask ``scheduler``); the matched dataset is written by
    ``workers`` processes.
    """
    started = time.perf_counter()
    if how not in HOW:
        raise CrossMatchError(f"how must be one of {HOW}, got {how!r}")
    if not (isinstance(radius_arcsec, (int, float)) and math.isfinite(radius_arcsec)
            and radius_arcsec > 0):
        raise CrossMatchError(f"radius must be a positive number of arcsec, got {radius_arcsec!r}")
    lds, rds = as_dataset(left), as_dataset(right)
    out = None if out is None else Path(out)
    if out is not None:
        _check_out(out, out / matched_dirname(lds, rds), overwrite)

    blocks = plan_blocks(_rows_per_pixel(lds), _rows_per_pixel(rds), radius_arcsec,
                         max_task_rows, min_tasks=1 if workers <= 1 else 4 * workers)
    result = CrossMatchResult(
        how=how, radius_arcsec=float(radius_arcsec), out=out, tasks=len(blocks),
        left_pixels_read=sorted({p for b in blocks for p in b.left}),
        right_pixels_read=sorted({p for b in blocks for p in b.right}),
    )
    # "all": blocks run in healpix order and the catalog is written as they finish, while
    # later blocks are matched. "nearest": claims are settled across blocks first, so blocks
    # keep their pairs in part files (largest blocks first, to balance the workers).
    stream = how == "all"
    parts_dir = catalog_tmp = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        catalog_tmp = layout.tmp_name(out / CATALOG_NAME, str(os.getpid()))
        if not stream or not catalog_only:
            parts_dir = layout.tmp_name(out / "parts", str(os.getpid()))
            parts_dir.mkdir()
    try:
        catalog = _CatalogWriter(result, lds, rds, catalog_tmp)
        parts: list[dict[str, Any] | None] = [None] * len(blocks)
        written = 0
        try:
            for part in _match_blocks(lds, rds, blocks, radius_arcsec, how, workers, scheduler,
                                      parts_dir, return_tables=stream or parts_dir is None,
                                      largest_first=not stream):
                parts[part["block"]] = part
                while stream and written < len(parts) and parts[written] is not None:
                    catalog.add(written, parts[written].pop("table"))
                    written += 1
            done = [p for p in parts if p is not None]
            result.candidates = sum(p["candidates"] for p in done)
            result.match_seconds = time.perf_counter() - started
            wrote_from = time.perf_counter()
            if not stream:
                _settle_across_blocks(done, max_task_rows)
                for p in done:
                    catalog.add(p["block"], _part_table(p) if p["rows"] else None,
                                p.get("drop"))
        finally:
            catalog.close()
        if out is not None and not catalog_only:
            result.dataset_path = write_matched_dataset(
                lds, rds, out, [(p["path"], p.get("drop"), catalog.first[p["block"]])
                                for p in done if p["rows"]],
                how=how, radius_arcsec=radius_arcsec, left_columns=left_columns,
                right_columns=right_columns, workers=workers, scheduler=scheduler,
                overwrite=overwrite,
            )
        if catalog_tmp is not None:  # last: a catalog.parquet means a finished result
            os.replace(catalog_tmp, out / CATALOG_NAME)
        result.write_seconds = time.perf_counter() - wrote_from
    finally:
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)
        if catalog_tmp is not None and catalog_tmp.exists():
            catalog_tmp.unlink()
    return result


def _match_blocks(
    lds: Dataset, rds: Dataset, blocks: list[_Block], radius_arcsec: float, how: str,
    workers: int, scheduler: str | None, parts_dir: Path | None, return_tables: bool,
    largest_first: bool,
) -> Iterator[dict[str, Any]]:
    """Run the match tasks; yield their parts as they finish (``part["block"]`` is the
    block's index in ``blocks``, which are in healpix order)."""
    lfiles, rfiles = files_by_pixel(lds), files_by_pixel(rds)
    id_dtypes = (lds.schema["object_id"].dtype, rds.schema["object_id"].dtype)
    readers: dict[int, int] = {}
    for b in blocks:
        for p in b.right:
            readers[p] = readers.get(p, 0) + 1
    args = [
        (i, [f for p in b.left for f in lfiles[p]], [f for p in b.right for f in rfiles[p]],
         id_dtypes, float(radius_arcsec), how, [p for p in b.right if readers[p] > 1],
         None if parts_dir is None else str(parts_dir / f"block-{i:05d}.arrow"),
         return_tables)
        for i, b in enumerate(blocks)
    ]
    if largest_first:
        args.sort(key=lambda a: -blocks[a[0]].cost)
    # Threads locally: matching is numpy sorting and searching, which runs outside the GIL.
    yield from run_tasks(_match_task, args, workers=workers, scheduler=scheduler, threads=True)


def _part_table(part: dict[str, Any], columns: list[str] | None = None) -> Any:
    if "table" in part:
        return part["table"] if columns is None else part["table"].select(columns)
    return read_part(part["path"], columns)


def _settle_across_blocks(parts: list[dict[str, Any]], budget: int) -> None:
    """Of the right objects claimed in several blocks (each block applied the rule to its own
    claims), only the rule's winner keeps its pair: each part gets ``"drop"``, the rows of its
    pairs that lost, where there are any.

    Only the blocks' claims on pixels several blocks read are looked at, and a range of right
    pixels at a time (each holding at most about ``budget`` claims, read as slices of the
    claim files, which are sorted by pixel), so memory stays bounded whatever the catalogs."""
    import pyarrow as pa

    per_pixel = np.zeros(layout.NPIX, np.int64)
    for part in parts:
        if "claim_pixels" in part:
            per_pixel[part["claim_pixels"]] += part["claim_counts"]
    if not per_pixel.any():
        return
    # contiguous pixel ranges of at most ``budget`` claims (a single pixel may hold more)
    edges, total = [0], 0
    for pixel, n in enumerate(per_pixel.tolist()):
        if total and total + n > budget:
            edges.append(pixel)
            total = 0
        total += n
    edges.append(layout.NPIX)
    drops: dict[int, list[np.ndarray]] = {}
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        found: dict[str, list[np.ndarray]] = {k: [] for k in ("block", "row", "right_key",
                                                              "separation_arcsec",
                                                              "left_object_id")}
        for part in parts:
            if "claims" not in part and "claims_path" not in part:
                continue
            source = part.get("claims")
            mapped = None
            if source is None:  # memory-mapped, sliced, copied, unmapped: nothing stays
                mapped = pa.memory_map(part["claims_path"], "r")
                source = pa.ipc.open_file(mapped).read_all()
            pixel = source.column("right_pixel").to_numpy()
            a, b = np.searchsorted(pixel, [lo, hi])
            if b > a:
                found["block"].append(np.full(b - a, part["block"], np.int64))
                for c in ("row", "right_key", "separation_arcsec", "left_object_id"):
                    found[c].append(np.array(_numpy(source.column(c).slice(a, b - a))))
            del source, pixel
            if mapped is not None:
                mapped.close()
        if not found["row"]:
            continue
        arr = {k: np.concatenate(v) for k, v in found.items()}
        rkey = arr["right_key"]
        order = np.argsort(rkey, kind="stable")
        same = rkey[order][1:] == rkey[order][:-1]
        several = np.zeros(len(order), bool)
        several[1:] |= same
        several[:-1] |= same
        contested = order[several]
        if not len(contested):
            continue
        winners = contested[one_to_one(rkey[contested], arr["separation_arcsec"][contested],
                                       arr["left_object_id"][contested])]
        losers = np.setdiff1d(contested, winners)
        for block in np.unique(arr["block"][losers]).tolist():
            drops.setdefault(block, []).append(arr["row"][losers][arr["block"][losers] == block])
    for part in parts:
        if part["block"] in drops:
            part["drop"] = np.concatenate(drops[part["block"]])


def _numpy(column: Any) -> np.ndarray:
    """An Arrow column as numpy (binary ids as fixed-width bytes)."""
    import pyarrow as pa

    if pa.types.is_binary(column.type) or pa.types.is_string(column.type):
        return np.array(column.to_pylist(), dtype=bytes)
    return column.to_numpy()


class _CatalogWriter:
    """The catalog, block by block in healpix order, to the Parquet file ``path`` or (None)
    an in-memory table (``result.table``); ``first[block]`` is each block's first match_id."""

    def __init__(self, result: CrossMatchResult, lds: Dataset, rds: Dataset,
                 path: Path | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        meta = {"how": result.how, "radius_arcsec": result.radius_arcsec,
                "core_version": __version__,
                "left": f"{lds.survey}/{lds.config}", "right": f"{rds.survey}/{rds.config}",
                "left_path": str(lds.path.resolve()), "right_path": str(rds.path.resolve())}
        self.schema = pa.schema([
            ("match_id", pa.int64()), ("left_object_id", _id_type(lds)),
            ("right_object_id", _id_type(rds)), ("separation_arcsec", pa.float64()),
            ("ra", pa.float64()), ("dec", pa.float64()), ("healpix", pa.int64()),
            ("right_ra", pa.float64()), ("right_dec", pa.float64()),
        ], metadata={"mmu": json.dumps(meta)})
        self.result, self.path = result, path
        self.writer = None if path is None else pq.ParquetWriter(path, self.schema,
                                                                 **CATALOG_PARQUET)
        self.tables: list[Any] = []
        self.first: dict[int, int] = {}
        self.n = 0

    def add(self, block: int, table: Any, drop: np.ndarray | None = None) -> None:
        import pyarrow as pa

        self.first[block] = self.n
        if table is None or not table.num_rows:
            return
        if drop is not None:
            table = table.filter(pa.array(_keep_mask(table.num_rows, drop)))
        table = table.append_column("match_id", pa.array(np.arange(self.n,
                                                                   self.n + table.num_rows)))
        self.n += table.num_rows
        table = table.select(list(CATALOG_FIELDS)).cast(self.schema)
        if self.writer is not None:
            self.writer.write_table(table)
        else:
            self.tables.append(table)

    def close(self) -> None:
        import pyarrow as pa

        if self.writer is not None:
            self.writer.close()
        self.result.pairs = self.n
        if self.path is None:
            self.result.table = (pa.concat_tables(self.tables) if self.tables
                                 else self.schema.empty_table())


def _keep_mask(rows: int, drop: np.ndarray) -> np.ndarray:
    mask = np.ones(rows, bool)
    mask[drop] = False
    return mask


def _id_type(ds: Dataset) -> Any:
    import pyarrow as pa

    return pa.string() if ds.schema["object_id"].np_dtype.kind == "S" else pa.int64()


def _check_out(out: Path, matched: Path, overwrite: bool) -> None:
    """Refuse to mix a new result with an old one; with ``overwrite`` remove the old one."""
    if out.exists() and not out.is_dir():
        raise CrossMatchError(f"{out} exists and is not a folder")
    old = [p for p in (out / CATALOG_NAME, matched) if p.exists()]
    if old and not overwrite:
        raise CrossMatchError(f"{old[0]} already exists; pass overwrite=True (--overwrite) or "
                              "choose another --out")
    for p in old:
        shutil.rmtree(p) if p.is_dir() else p.unlink()


# ---- the matched dataset ----------------------------------------------------------------
def namespaces(lds: Dataset, rds: Dataset) -> tuple[str, str]:
    """Column prefixes of the two sides: the survey names, made distinct if need be."""
    a, b = lds.survey, rds.survey
    if a == b:
        a, b = f"{lds.survey}_{lds.config}", f"{rds.survey}_{rds.config}"
    if a == b:
        a, b = "left", "right"
    return a.replace(".", "_"), b.replace(".", "_")


def matched_dirname(lds: Dataset, rds: Dataset) -> str:
    lns, rns = namespaces(lds, rds)
    return f"{lns}_x_{rns}/{MATCHED_CONFIG}"


def _side_columns(ds: Dataset, columns: Iterable[str] | None) -> list[str]:
    if columns is None:
        return list(ds.columns)
    chosen = [ds.resolve(c) for c in ([columns] if isinstance(columns, str) else columns)]
    return list(dict.fromkeys([*POSITION_COLUMNS, *chosen]))


def write_matched_dataset(
    lds: Dataset, rds: Dataset, out: Path, parts: list[tuple[str, np.ndarray | None, int]],
    *, how: str, radius_arcsec: float, left_columns: Iterable[str] | None = None,
    right_columns: Iterable[str] | None = None, workers: int = 1, scheduler: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``OUT/<left>_x_<right>/matched``: one row per pair, in the stored HEALPix layout.

    Top-level columns: ``object_id`` (= the catalog's ``match_id``, int64), ``ra``, ``dec`` and
    ``healpix`` of the left object, ``separation_arcsec``; then every selected column of each
    side under ``<namespace>.<column>`` (``hsc.image_array``, ``desi.spectrum_flux``,
    ``desi.object_id`` ...). Namespaces are the survey names. The HDF5 attribute
    ``namespaces`` maps each side with a modality to it (what the validator reads); the
    manifest has modality ``"matched"``, the sides' aliases under their namespaces and both
    sides' provenance (``provenance.left``/``right``, ``extra.sides``).

    ``parts`` are the match tasks' Arrow parts: (path, rows of the pairs dropped or None, first
    match_id). A part holds the pairs of one block of pixels, so each task writes whole pixels
    and no two tasks write the same one.
    """
    lns, rns = namespaces(lds, rds)
    dataset_dir = out / matched_dirname(lds, rds)
    prepare_output(dataset_dir, overwrite)
    lcols, rcols = _side_columns(lds, left_columns), _side_columns(rds, right_columns)
    schema = {"object_id": ColumnSpec("<i8", ()), "ra": ColumnSpec("<f8", ()),
              "dec": ColumnSpec("<f8", ()), "separation_arcsec": ColumnSpec("<f8", ())}
    schema.update({f"{lns}.{c}": lds.schema[c] for c in lcols})
    schema.update({f"{rns}.{c}": rds.schema[c] for c in rcols})
    sides = {lns: {"role": "left", **lds.side_info()}, rns: {"role": "right", **rds.side_info()}}
    ns_modalities = {ns: s["modality"] for ns, s in sides.items() if s["modality"]}
    survey = f"{lns}_x_{rns}"
    attrs = {"survey": survey, "config": MATCHED_CONFIG, "modality": "matched",
             "namespaces": ns_modalities, "core_version": __version__,
             "schema_version": SCHEMA_VERSION, "nside": layout.NSIDE, "ordering": layout.ORDERING}
    row_bytes = sum(s.row_bytes for s in schema.values())
    batch_rows = max(1, GATHER_BATCH_BYTES // max(row_bytes, 1))

    args = [(str(lds.path), str(rds.path), str(dataset_dir), f"part-{i:05d}", path, drop, first,
             lcols, rcols, lns, rns, attrs, batch_rows)
            for i, (path, drop, first) in enumerate(parts)]
    for _ in run_tasks(_write_task, args, workers=workers, scheduler=scheduler):
        pass

    aliases = {}
    for ns, ds, cols in ((lns, lds, lcols), (rns, rds, rcols)):
        aliases.update({f"{ns}.{native}": f"{ns}.{standard}"
                        for native, standard in ds.aliases.items() if native in cols})
    finalize_dataset(
        dataset_dir, survey=survey, config=MATCHED_CONFIG, modality="matched", columns=schema,
        aliases=aliases,
        provenance={"left": sides[lns], "right": sides[rns], "namespaces": ns_modalities,
                    "how": how, "radius_arcsec": radius_arcsec,
                    "catalog": str((out / CATALOG_NAME).resolve())},
        build_options={"how": how, "radius_arcsec": radius_arcsec, "left_columns": lcols,
                       "right_columns": rcols},
        extra={"sides": sides},
    )
    return dataset_dir


def _write_task(
    left_path: str, right_path: str, dataset_dir: str, key: str, part_path: str,
    drop: np.ndarray | None, first_match_id: int, lcols: list[str], rcols: list[str], lns: str,
    rns: str, attrs: dict, batch_rows: int,
) -> int:
    """Task: gather one block's matched rows from both inputs (random access) and write them."""
    from mmu_core.storage.writer import write_rows

    table = read_part(part_path, ["ra", "dec", "separation_arcsec", "left_file", "left_row",
                                  "right_file", "right_row"])
    pairs = {name: table.column(name).to_numpy() for name in table.column_names}
    if drop is not None:
        keep = _keep_mask(len(pairs["ra"]), drop)
        pairs = {k: v[keep] for k, v in pairs.items()}
    n = len(pairs["ra"])
    pairs["match_id"] = np.arange(first_match_id, first_match_id + n, dtype=np.int64)
    lds, rds = open_dataset(left_path), open_dataset(right_path)

    def batches() -> Iterator[dict[str, np.ndarray]]:
        for a in range(0, n, batch_rows):
            s = slice(a, a + batch_rows)
            lrows = lds.read_rows(pairs["left_file"][s], pairs["left_row"][s], lcols)
            rrows = rds.read_rows(pairs["right_file"][s], pairs["right_row"][s], rcols)
            batch = {"object_id": pairs["match_id"][s], "ra": pairs["ra"][s],
                     "dec": pairs["dec"][s], "separation_arcsec": pairs["separation_arcsec"][s]}
            batch.update({f"{lns}.{c}": v for c, v in lrows.items()})
            batch.update({f"{rns}.{c}": v for c, v in rrows.items()})
            yield batch

    try:
        write_rows(Path(dataset_dir), batches(), attrs, key=key)
    finally:
        lds.close()
        rds.close()
    return n
