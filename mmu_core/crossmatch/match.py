"""Step 2, the match: one task per block, in parallel through
:func:`mmu_core.executors.run_tasks` (on threads locally: matching is numpy sorting and
searching, which runs outside the GIL).

A task reads the positions of its block's left and right pixels
(:func:`~mmu_core.crossmatch.positions.read_positions`), has the
:class:`~mmu_core.crossmatch.algorithms.MatchAlgorithm` find the pairs, applies the
one-to-one rule within the block for ``nearest``, sorts the pairs by (healpix, left id, right
id) and hands them back as a :class:`~mmu_core.crossmatch.parts.BlockPart`, with the (file,
row) of every matched object on both sides, so the matched rows can be gathered later.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmu_core.crossmatch.algorithms import BlockPairs, MatchAlgorithm
from mmu_core.crossmatch.parts import BlockPart, Claims, write_part
from mmu_core.crossmatch.plan import Block
from mmu_core.crossmatch.positions import FileRef, files_by_pixel, read_positions
from mmu_core.crossmatch.resolve import nearest_per_left, one_to_one
from mmu_core.executors import run_tasks
from mmu_core.storage import layout
from mmu_core.storage.reader import Dataset


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


def match_task(
    block: int, left_files: list[FileRef], right_files: list[FileRef],
    id_dtypes: tuple[str, str], sidecars: tuple[str | None, str | None],
    radius_arcsec: float, algorithm: MatchAlgorithm,
    nearest: bool, shared_right_pixels: list[int], part_path: str | None, return_table: bool,
) -> BlockPart:
    """Task: the pairs whose left object lies in the left files' pixels, sorted by (healpix,
    left id, right id); with ``nearest`` each left object's nearest, already one-to-one
    within the block. They go to the Arrow file ``part_path`` when there is one, and are
    returned as an Arrow table with ``return_table`` (the driver writes them to the catalog
    as they come)."""
    import pyarrow as pa

    left = read_positions(left_files, id_dtypes[0], sidecars[0])
    right = read_positions(right_files, id_dtypes[1], sidecars[1])
    pairs = algorithm.match(left, right, radius_arcsec)
    if not isinstance(pairs, BlockPairs):
        raise TypeError(f"{algorithm!r}.match returned {type(pairs).__name__}, not BlockPairs")
    pairs.check(len(left), len(right))
    if nearest and not algorithm.one_per_left and len(pairs):
        pairs = pairs.take(nearest_per_left(pairs.left, len(left), pairs.chord,
                                            right.id[pairs.right]))
    li, ri, sep = pairs.left, pairs.right, pairs.separation_arcsec
    candidates = len(li)
    if nearest and len(li):
        # The rule within the block (in parallel); the driver settles right objects that
        # left objects of two blocks claim. A right row of this block is one right object.
        keep = one_to_one(ri, sep, left.id[li], n_keys=len(right))
        li, ri, sep = li[keep], ri[keep], sep[keep]
    order = pair_order(left.rank()[li], right.id[ri])
    li, ri, sep = li[order], ri[order], sep[order]
    lfile, lrow, lpixel = left.locate(li)
    rfile, rrow, rpixel = right.locate(ri)
    table = pa.table({
        "left_object_id": left.id[li], "right_object_id": right.id[ri],
        "separation_arcsec": sep, "ra": left.ra[li], "dec": left.dec[li],
        "healpix": lpixel, "right_ra": right.ra[ri], "right_dec": right.dec[ri],
        "left_file": lfile, "left_row": lrow, "right_file": rfile, "right_row": rrow,
    })
    part = BlockPart(block=block, candidates=candidates, rows=table.num_rows)
    if nearest:
        # Claims the driver must settle: pairs whose right object lies in a pixel other
        # blocks also read (so they may claim it too), sorted by that pixel.
        shared = np.zeros(layout.NPIX, bool)
        shared[np.asarray(shared_right_pixels, np.int64)] = True
        rows = np.flatnonzero(shared[rpixel])
        rows = rows[np.argsort(rpixel[rows], kind="stable")]
        claims = pa.table({
            "row": rows, "right_pixel": rpixel[rows],
            "right_key": (rfile[rows].astype(np.int64) << 32) | rrow[rows].astype(np.int64),
            "separation_arcsec": sep[rows], "left_object_id": left.id[li][rows],
        })
        pixels, counts = np.unique(rpixel[rows], return_counts=True)
        part.claims = Claims(pixels=pixels, counts=counts)
        if part_path is None:
            part.claims.table = claims
        elif len(rows):
            part.claims.path = part_path + ".claims"
            write_part(claims, part.claims.path)
    if return_table:
        part.table = table
    if part_path is not None and table.num_rows:
        write_part(table, part_path)
        part.path = part_path
    return part


def match_blocks(
    lds: Dataset, rds: Dataset, sidecars: tuple[Path | None, Path | None], blocks: list[Block],
    radius_arcsec: float,
    algorithm: MatchAlgorithm, nearest: bool, workers: int, scheduler: str | None,
    parts_dir: Path | None, return_tables: bool, largest_first: bool,
) -> Iterator[BlockPart]:
    """Run the match tasks; yield their parts as they finish (``part.block`` is the block's
    index in ``blocks``, which are in healpix order). ``sidecars``: the folders of the two
    sides' positions sidecars (:func:`~mmu_core.crossmatch.positions.open_inputs`)."""
    lfiles, rfiles = files_by_pixel(lds), files_by_pixel(rds)
    id_dtypes = (lds.schema["object_id"].dtype, rds.schema["object_id"].dtype)
    sides = tuple(None if s is None else str(s) for s in sidecars)
    readers: dict[int, int] = {}
    for b in blocks:
        for p in b.right:
            readers[p] = readers.get(p, 0) + 1
    args = [
        (i, [f for p in b.left for f in lfiles[p]], [f for p in b.right for f in rfiles[p]],
         id_dtypes, sides, float(radius_arcsec), algorithm, nearest,
         [p for p in b.right if readers[p] > 1],
         None if parts_dir is None else str(parts_dir / f"block-{i:05d}.arrow"),
         return_tables)
        for i, b in enumerate(blocks)
    ]
    if largest_first:
        args.sort(key=lambda a: -blocks[a[0]].cost)
    yield from run_tasks(match_task, args, workers=workers, scheduler=scheduler, threads=True)
