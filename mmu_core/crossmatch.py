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
2. **Match** (one task per block, in parallel through :func:`mmu_core.executors.run_tasks`):
   only ``object_id``, ``ra`` and ``dec`` are read; a :class:`scipy.spatial.cKDTree` on unit
   vectors finds pairs within the chord ``2 sin(r / 2)``. A pair belongs to the block of its
   left object, so every pair is found exactly once, as if there were no partitioning. Memory
   per task is bounded by ``max_task_rows`` (or by one pixel and its neighbours, whichever is
   larger), never by the catalogs.
3. **Resolve** (``how="nearest"``): see :func:`cross_match` for the one-to-one rule.
4. **Write** ``OUT/catalog.parquet`` and the matched dataset, whose rows are gathered from the
   two inputs by random access (the (file, row) of every matched object is known from step 2),
   one task per block again.
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
import typer

import mmu_core
from mmu_core.concat import as_dataset, finalize_dataset, prepare_output, side_info
from mmu_core.errors import MMUError
from mmu_core.executors import run_tasks
from mmu_core.schemas import SCHEMA_VERSION
from mmu_core.storage import layout
from mmu_core.storage.columns import ColumnSpec
from mmu_core.storage.reader import Dataset, open_dataset

HOW = ("nearest", "all")
ORDER = int(round(math.log2(layout.NSIDE)))  # HEALPix order of the stored pixels (4)
# Up to this radius the 8 neighbours of a pixel hold every possible partner of its objects: at
# NSIDE 16 the nearest pixel beyond the neighbours is >= 2.5 deg away from any point of it.
NEIGHBOUR_LIMIT_ARCSEC = 3600.0
DUAL_TREE_NEAREST_ARCSEC = 60.0  # nearest matches up to this radius use the all-pairs search
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
    import healpy

    pixels = np.asarray(pixels, dtype=np.int64)
    if len(pixels) == 0:
        return []
    if radius_arcsec <= NEIGHBOUR_LIMIT_ARCSEC:
        nb = healpy.get_all_neighbours(layout.NSIDE, pixels, nest=True).reshape(8, -1)
        return [np.unique(np.append(nb[:, k][nb[:, k] >= 0], p)) for k, p in enumerate(pixels)]
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
    for pixel, n in zip(ds._pixel_of, ds._rows, strict=True):
        rows[pixel] = rows.get(pixel, 0) + int(n)
    return rows


def plan_blocks(
    left_rows: dict[int, int], right_rows: dict[int, int], radius_arcsec: float,
    max_task_rows: int = DEFAULT_TASK_ROWS, min_tasks: int = 1,
) -> list[_Block]:
    """Group the left pixels that have right pixels within reach into NESTED blocks."""
    left = np.array(sorted(left_rows), dtype=np.int64)
    right = np.array(sorted(right_rows), dtype=np.int64)
    need: dict[int, np.ndarray] = {}
    for p, s in zip(left.tolist(), search_pixels(left, radius_arcsec), strict=True):
        s = s[np.isin(s, right)]
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
    # Largest first: the pool then finishes at about the same time on every worker.
    return sorted(blocks, key=lambda b: (-b.cost, b.left[0]))


# ---- match ------------------------------------------------------------------------------
def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(n, 3) unit vectors, computed as astropy does (so boundary cases agree)."""
    ra = np.radians(ra_deg)
    dec = np.radians(dec_deg)
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=1)


def chord_of(radius_arcsec: float) -> float:
    """Straight-line distance between unit vectors ``radius_arcsec`` apart."""
    return float(2.0 * np.sin(0.5 * np.radians(radius_arcsec / 3600.0)))


FileRef = tuple[int, str, int]  # (index in the dataset's file list, absolute path, pixel)


def files_by_pixel(ds: Dataset) -> dict[int, list[FileRef]]:
    """pixel -> the dataset's files of that pixel."""
    out: dict[int, list[FileRef]] = {}
    for i, (rel, pixel) in enumerate(zip(ds._relpaths, ds._pixel_of, strict=True)):
        out.setdefault(pixel, []).append((i, str(ds.path / rel), pixel))
    return out


def _read_column(fid: Any, name: bytes) -> np.ndarray:
    import h5py

    d = h5py.h5d.open(fid, name)
    out = np.empty(d.shape, d.dtype)
    if out.size:
        d.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


def read_positions(files: list[FileRef], id_dtype: str) -> dict[str, np.ndarray]:
    """object_id, ra, dec and (file, row, pixel) of every row of the files: nothing else.

    Reads the dataset's positions sidecar (``_index/pos_*.npy``, written with the id index)
    where there is one: slicing memory maps instead of opening thousands of pixel files.
    Otherwise (e.g. MMU v1 folders) it uses h5py's low-level API: with thousands of small pixel files, opening and reading cost
    more in h5py's high-level wrappers than in HDF5 itself (~0.8 vs ~0.5 ms a file).
    """
    import h5py

    from mmu_core.storage.index import load_positions

    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("id", "ra", "dec", "file", "row", "pixel")}
    sidecars: dict[Path, Any] = {}
    for fi, path, pixel in files:
        dataset_dir = Path(path).parent.parent
        if dataset_dir not in sidecars:
            sidecars[dataset_dir] = load_positions(dataset_dir)
        side = sidecars[dataset_dir]
        if side is not None:  # the build's positions sidecar: slices of memory maps
            a, b = int(side[3][fi]), int(side[3][fi + 1])
            ids = np.asarray(side[0][a:b])
            parts["ra"].append(np.asarray(side[1][a:b]))
            parts["dec"].append(np.asarray(side[2][a:b]))
        else:
            fid = h5py.h5f.open(path.encode(), h5py.h5f.ACC_RDONLY)
            try:
                ids = _read_column(fid, b"object_id")
                parts["ra"].append(_read_column(fid, b"ra").astype(np.float64, copy=False))
                parts["dec"].append(_read_column(fid, b"dec").astype(np.float64, copy=False))
            finally:
                fid.close()
        n = len(ids)
        parts["id"].append(ids.astype(id_dtype, copy=False))
        parts["file"].append(np.full(n, fi, np.int32))
        parts["row"].append(np.arange(n, dtype=np.int32))
        parts["pixel"].append(np.full(n, pixel, np.int64))
    if not files:
        return {"id": np.empty(0, id_dtype), "ra": np.empty(0), "dec": np.empty(0),
                "file": np.empty(0, np.int32), "row": np.empty(0, np.int32),
                "pixel": np.empty(0, np.int64)}
    return {k: np.concatenate(v) for k, v in parts.items()}


def _match_task(
    block: int, left_files: list[FileRef], right_files: list[FileRef],
    id_dtypes: tuple[str, str], radius_arcsec: float, how: str,
    shared_right_pixels: list[int], part_path: str | None,
) -> dict[str, Any]:
    """Task: the pairs whose left object lies in the left files' pixels, sorted by (healpix,
    left id, right id); for ``nearest`` already one-to-one within the block. They go to the
    Parquet file ``part_path`` (so the driver never holds every pair), or are returned as an
    Arrow table when it is None."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scipy.spatial import cKDTree

    left = read_positions(left_files, id_dtypes[0])
    right = read_positions(right_files, id_dtypes[1])
    chord = chord_of(radius_arcsec)
    li = ri = np.empty(0, np.int64)
    dist = np.empty(0)
    if len(left["id"]) and len(right["id"]):
        lxyz = unit_vectors(left["ra"], left["dec"])
        rtree = cKDTree(unit_vectors(right["ra"], right["dec"]), balanced_tree=False,
                        compact_nodes=False)
        if how == "all" or radius_arcsec <= DUAL_TREE_NEAREST_ARCSEC:
            # A dual-tree search (both catalogs in trees) is ~3x faster than querying one tree
            # point by point, so nearest matches at small radii also take every pair, then
            # each left object's closest (exact ties: the smaller right object_id).
            ltree = cKDTree(lxyz, balanced_tree=False, compact_nodes=False)
            found = ltree.sparse_distance_matrix(rtree, chord, output_type="ndarray")
            li, ri, dist = found["i"].astype(np.int64), found["j"].astype(np.int64), found["v"]
            if how == "nearest" and len(li):
                order = np.lexsort((right["id"][ri], dist, li))
                first = np.ones(len(order), bool)
                first[1:] = li[order][1:] != li[order][:-1]
                keep = order[first]
                li, ri, dist = li[keep], ri[keep], dist[keep]
        else:
            # Large radii: all pairs could be many; one nearest neighbour per left object.
            # (query's bound is strict: nudge it so "within" is chord <= 2 sin(r/2) here too.)
            d, j = rtree.query(lxyz, k=1, distance_upper_bound=np.nextafter(chord, np.inf))
            li = np.flatnonzero(d <= chord)
            ri, dist = j[li], d[li]
    sep = np.degrees(2.0 * np.arcsin(np.minimum(dist / 2.0, 1.0))) * 3600.0
    candidates = len(li)
    if how == "nearest" and len(li):
        # The rule within the block (in parallel); the driver settles right objects that
        # left objects of two blocks claim.
        rkey = (right["file"][ri].astype(np.int64) << 32) | right["row"][ri]
        keep = one_to_one(rkey, sep, left["id"][li])
        li, ri, sep = li[keep], ri[keep], sep[keep]
    order = np.lexsort((right["id"][ri], left["id"][li], left["pixel"][li]))
    li, ri, sep = li[order], ri[order], sep[order]
    table = pa.table({
        "left_object_id": left["id"][li], "right_object_id": right["id"][ri],
        "separation_arcsec": sep, "ra": left["ra"][li], "dec": left["dec"][li],
        "healpix": left["pixel"][li], "right_ra": right["ra"][ri], "right_dec": right["dec"][ri],
        "left_file": left["file"][li], "left_row": left["row"][li],
        "right_file": right["file"][ri], "right_row": right["row"][ri],
        # a right object in a pixel that other blocks also read may be claimed there too
        "contested": np.isin(right["pixel"][ri], np.asarray(shared_right_pixels, np.int64)),
    })
    part: dict[str, Any] = {"block": block, "candidates": candidates, "rows": table.num_rows}
    if part_path is None:
        part["table"] = table
    elif table.num_rows:
        pq.write_table(table, part_path, compression="lz4")
        part["path"] = part_path
    return part


CATALOG_FIELDS = ("match_id", "left_object_id", "right_object_id", "separation_arcsec", "ra",
                  "dec", "healpix", "right_ra", "right_dec")


def one_to_one(right_key: np.ndarray, separation: np.ndarray, left_id: np.ndarray) -> np.ndarray:
    """Indices of the candidates that keep their right object: for each right object, the
    candidate with the smallest separation (ties: the smallest left object_id)."""
    if len(right_key) == 0:
        return np.empty(0, np.int64)
    order = np.lexsort((left_id, separation, right_key))
    rk = right_key[order]
    first = np.ones(len(order), bool)
    first[1:] = rk[1:] != rk[:-1]
    return np.sort(order[first])


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
    copied into the matched dataset (default: all). Blocks of pixels run on ``workers``
    processes (or the dask ``scheduler``).
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
    parts_dir = catalog_tmp = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        parts_dir = layout.tmp_name(out / "parts", str(os.getpid()))
        parts_dir.mkdir()
    try:
        parts = _match_blocks(lds, rds, blocks, radius_arcsec, how, workers, scheduler, parts_dir)
        result.candidates = sum(part["candidates"] for part in parts)
        keep = _settle_across_blocks(parts) if how == "nearest" else {}
        result.match_seconds = time.perf_counter() - started
        written = time.perf_counter()
        if out is not None:
            catalog_tmp = layout.tmp_name(out / CATALOG_NAME, str(os.getpid()))
        first_ids = _write_catalog(parts, keep, result, lds, rds, catalog_tmp)
        if out is not None and not catalog_only:
            result.dataset_path = write_matched_dataset(
                lds, rds, out, [(p.get("path"), keep.get(p["block"]), first_ids[p["block"]])
                                for p in parts if p["rows"]],
                how=how, radius_arcsec=radius_arcsec, left_columns=left_columns,
                right_columns=right_columns, workers=workers, scheduler=scheduler,
                overwrite=overwrite,
            )
        if catalog_tmp is not None:  # last: a catalog.parquet means a finished result
            os.replace(catalog_tmp, out / CATALOG_NAME)
        result.write_seconds = time.perf_counter() - written
    finally:
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)
        if catalog_tmp is not None and catalog_tmp.exists():
            catalog_tmp.unlink()
    return result


def _match_blocks(
    lds: Dataset, rds: Dataset, blocks: list[_Block], radius_arcsec: float, how: str,
    workers: int, scheduler: str | None, parts_dir: Path | None,
) -> list[dict[str, Any]]:
    """Run the match tasks; their parts in block order (which is healpix order)."""
    lfiles, rfiles = files_by_pixel(lds), files_by_pixel(rds)
    id_dtypes = (lds.schema["object_id"].dtype, rds.schema["object_id"].dtype)
    readers: dict[int, int] = {}
    for b in blocks:
        for p in b.right:
            readers[p] = readers.get(p, 0) + 1
    args = [
        (i, [f for p in b.left for f in lfiles[p]], [f for p in b.right for f in rfiles[p]],
         id_dtypes, float(radius_arcsec), how, [p for p in b.right if readers[p] > 1],
         None if parts_dir is None else str(parts_dir / f"block-{i:05d}.parquet"))
        for i, b in enumerate(blocks)
    ]
    parts = list(run_tasks(_match_task, args, workers=workers, scheduler=scheduler))
    # Blocks are disjoint NESTED ranges, each sorted inside: in range order, all is sorted.
    parts.sort(key=lambda part: blocks[part["block"]].left[0])
    return parts


def _part_table(part: dict[str, Any], columns: list[str] | None = None) -> Any:
    import pyarrow.parquet as pq

    if "table" in part:
        return part["table"] if columns is None else part["table"].select(columns)
    return pq.read_table(part["path"], columns=columns)


def _settle_across_blocks(parts: list[dict[str, Any]]) -> dict[int, np.ndarray]:
    """block -> mask of its pairs to keep: of the right objects claimed in several blocks
    (each block applied the rule to its own claims), only the rule's winner keeps its pair.
    Only contested pairs (right object in a pixel several blocks read) are loaded."""
    cols = ["contested", "right_file", "right_row", "separation_arcsec", "left_object_id"]
    found: dict[str, list[np.ndarray]] = {k: [] for k in ("block", "row", *cols[1:])}
    for part in parts:
        if not part["rows"]:
            continue
        t = _part_table(part, cols)
        rows = np.flatnonzero(t.column("contested").to_numpy(zero_copy_only=False))
        found["block"].append(np.full(len(rows), part["block"], np.int64))
        found["row"].append(rows)
        for c in cols[1:]:
            found[c].append(_numpy(t.column(c))[rows])
    if not found["row"]:
        return {}
    arr = {k: np.concatenate(v) for k, v in found.items()}
    rkey = (arr["right_file"].astype(np.int64) << 32) | arr["right_row"].astype(np.int64)
    order = np.argsort(rkey, kind="stable")
    same = rkey[order][1:] == rkey[order][:-1]
    shared = np.zeros(len(order), bool)
    shared[1:] |= same
    shared[:-1] |= same
    contested = order[shared]
    if not len(contested):
        return {}
    winners = contested[one_to_one(rkey[contested], arr["separation_arcsec"][contested],
                                   arr["left_object_id"][contested])]
    losers = np.setdiff1d(contested, winners)
    keep: dict[int, np.ndarray] = {}
    by_block = {p["block"]: p["rows"] for p in parts}
    for block in np.unique(arr["block"][losers]).tolist():
        mask = np.ones(by_block[block], bool)
        mask[arr["row"][losers][arr["block"][losers] == block]] = False
        keep[block] = mask
    return keep


def _numpy(column: Any) -> np.ndarray:
    """An Arrow column as numpy (binary ids as fixed-width bytes)."""
    import pyarrow as pa

    if pa.types.is_binary(column.type) or pa.types.is_string(column.type):
        return np.array(column.to_pylist(), dtype=bytes)
    return column.to_numpy()


def _write_catalog(parts: list[dict[str, Any]], keep: dict[int, np.ndarray],
                   result: CrossMatchResult, lds: Dataset, rds: Dataset,
                   path: Path | None) -> dict[int, int]:
    """The catalog, part by part in block order, to the Parquet file ``path`` or (None) an
    in-memory table. Returns each block's first match_id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = {"how": result.how, "radius_arcsec": result.radius_arcsec,
            "core_version": mmu_core.__version__,
            "left": f"{lds.survey}/{lds.config}", "right": f"{rds.survey}/{rds.config}",
            "left_path": str(lds.path.resolve()), "right_path": str(rds.path.resolve())}
    schema = pa.schema([
        ("match_id", pa.int64()), ("left_object_id", _id_type(lds)),
        ("right_object_id", _id_type(rds)), ("separation_arcsec", pa.float64()),
        ("ra", pa.float64()), ("dec", pa.float64()), ("healpix", pa.int64()),
        ("right_ra", pa.float64()), ("right_dec", pa.float64()),
    ], metadata={"mmu": json.dumps(meta)})
    writer = None if path is None else pq.ParquetWriter(path, schema)
    tables = []
    first: dict[int, int] = {}
    n = 0
    try:
        for part in parts:
            first[part["block"]] = n
            if not part["rows"]:
                continue
            t = _part_table(part)
            if part["block"] in keep:
                t = t.filter(pa.array(keep[part["block"]]))
            t = t.append_column("match_id", pa.array(np.arange(n, n + t.num_rows)))
            n += t.num_rows
            t = t.select(list(CATALOG_FIELDS)).cast(schema)
            if writer is not None:
                writer.write_table(t)
            else:
                tables.append(t)
    finally:
        if writer is not None:
            writer.close()
    result.pairs = n
    if path is None:
        result.table = pa.concat_tables(tables) if tables else schema.empty_table()
    return first


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

    ``parts`` are the match tasks' Parquet parts: (path, mask of the pairs kept or None, first
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
    sides = {lns: {"role": "left", **side_info(lds)}, rns: {"role": "right", **side_info(rds)}}
    ns_modalities = {ns: s["modality"] for ns, s in sides.items() if s["modality"]}
    survey = f"{lns}_x_{rns}"
    attrs = {"survey": survey, "config": MATCHED_CONFIG, "modality": "matched",
             "namespaces": ns_modalities, "core_version": mmu_core.__version__,
             "schema_version": SCHEMA_VERSION, "nside": layout.NSIDE, "ordering": layout.ORDERING}
    row_bytes = sum(s.row_bytes for s in schema.values())
    batch_rows = max(1, GATHER_BATCH_BYTES // max(row_bytes, 1))

    args = [(str(lds.path), str(rds.path), str(dataset_dir), f"part-{i:05d}", path, mask, first,
             lcols, rcols, lns, rns, attrs, batch_rows)
            for i, (path, mask, first) in enumerate(parts)]
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
    mask: np.ndarray | None, first_match_id: int, lcols: list[str], rcols: list[str], lns: str,
    rns: str, attrs: dict, batch_rows: int,
) -> int:
    """Task: gather one block's matched rows from both inputs (random access) and write them."""
    import pyarrow.parquet as pq

    from mmu_core.storage.writer import write_rows

    table = pq.read_table(part_path, columns=["ra", "dec", "separation_arcsec", "left_file",
                                              "left_row", "right_file", "right_row"])
    pairs = {name: table.column(name).to_numpy() for name in table.column_names}
    if mask is not None:
        pairs = {k: v[mask] for k, v in pairs.items()}
    n = len(pairs["ra"])
    pairs["match_id"] = np.arange(first_match_id, first_match_id + n, dtype=np.int64)
    lds, rds = open_dataset(left_path), open_dataset(right_path)

    def batches() -> Iterator[dict[str, np.ndarray]]:
        for a in range(0, n, batch_rows):
            s = slice(a, a + batch_rows)
            lrows = lds._gather(pairs["left_file"][s], pairs["left_row"][s].astype(np.int64),
                                [(c, c) for c in lcols])
            rrows = rds._gather(pairs["right_file"][s], pairs["right_row"][s].astype(np.int64),
                                [(c, c) for c in rcols])
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


# ---- command line -----------------------------------------------------------------------
def crossmatch_command(
    left: Path = typer.Argument(..., help="left dataset folder (ROOT/SURVEY/CONFIG)"),
    right: Path = typer.Argument(..., help="right dataset folder"),
    radius: float = typer.Option(1.0, "--radius", help="match radius, arcsec"),
    how: str = typer.Option("nearest", "--how", help="nearest (one-to-one) or all (every pair)"),
    out: Path = typer.Option(..., "--out", help="output folder: catalog.parquet + matched dataset"),
    workers: int = typer.Option(1, "--workers", help="worker processes"),
    catalog_only: bool = typer.Option(False, "--catalog-only",
                                      help="write catalog.parquet only, no matched dataset"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an earlier result in OUT"),
) -> None:
    """Cross-match two datasets by sky position: OUT/catalog.parquet and a matched dataset
    holding both sides' columns (namespaced by survey) in the same HEALPix layout."""
    from rich.console import Console

    console = Console()
    try:
        result = cross_match(left, right, out, radius_arcsec=radius, how=how, workers=workers,
                             catalog_only=catalog_only, overwrite=overwrite)
    except (MMUError, KeyError) as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    extra = (f" ({result.candidates:,} candidates before the one-to-one rule)"
             if how == "nearest" else "")
    console.print(f"{len(result):,} pairs within {radius}\" ({how}){extra}; "
                  f"{result.tasks} tasks, {len(result.left_pixels_read)} left and "
                  f"{len(result.right_pixels_read)} right pixels read; "
                  f"match {result.match_seconds:.1f} s, write {result.write_seconds:.1f} s",
                  highlight=False)
    console.print(f"catalog: {result.catalog_path}", highlight=False)
    if result.dataset_path is not None:
        console.print(f"matched dataset: {result.dataset_path}", highlight=False)
