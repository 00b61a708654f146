"""Step 1, the plan: which pixels take part and how they are grouped into tasks.

Made from the manifests only (pixels and row counts), nothing is read. A left pixel takes part
when one of the pixels it can match against -- itself and its 8 neighbours for radii up to
``NEIGHBOUR_LIMIT_ARCSEC``, every pixel within reach of a disc otherwise -- holds right
objects. Those left pixels are grouped into blocks of the NESTED hierarchy (a whole order-k
pixel, split in four until its left rows plus the right rows it needs fit ``max_task_rows``);
each block is one task, which reads its left pixels and the right pixels they need. So only
pixels present in both datasets (with their neighbours) are opened, and memory per task is
bounded by ``max_task_rows`` (or by one pixel and its neighbours, whichever is larger), never
by the catalogs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mmu_core.storage import layout

if TYPE_CHECKING:
    from mmu_core.storage.reader import Dataset

ORDER = int(round(math.log2(layout.NSIDE)))  # HEALPix order of the stored pixels (4)
# Up to this radius the 8 neighbours of a pixel hold every possible partner of its objects: at
# NSIDE 16 the nearest pixel beyond the neighbours is >= 2.5 deg away from any point of it.
NEIGHBOUR_LIMIT_ARCSEC = 3600.0
DEFAULT_TASK_ROWS = 3_000_000  # left + right rows one task may hold (~100 bytes each)


@dataclass
class Block:
    """One task: the left pixels of the NESTED pixel ``index`` of order ``order`` that have
    right pixels within reach, the right pixels they need, and their rows together."""

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


def rows_per_pixel(ds: Dataset) -> dict[int, int]:
    """pixel -> the dataset's rows in it (from the manifest)."""
    rows: dict[int, int] = {}
    for pixel, n in zip(ds.file_pixels, ds.file_rows, strict=True):
        rows[pixel] = rows.get(pixel, 0) + int(n)
    return rows


def plan_blocks(
    left_rows: dict[int, int], right_rows: dict[int, int], radius_arcsec: float,
    max_task_rows: int = DEFAULT_TASK_ROWS, min_tasks: int = 1,
) -> list[Block]:
    """Group the left pixels that have right pixels within reach into NESTED blocks, in
    healpix order; at least ``min_tasks`` of them where the pixels allow it."""
    left = np.array(sorted(left_rows), dtype=np.int64)
    has_right = np.zeros(layout.NPIX, bool)
    has_right[np.array(sorted(right_rows), dtype=np.int64)] = True
    need: dict[int, np.ndarray] = {}
    for p, s in zip(left.tolist(), search_pixels(left, radius_arcsec), strict=True):
        s = s[has_right[s]]
        if len(s):
            need[p] = s
    active = np.array(sorted(need), dtype=np.int64)

    def block(order: int, index: int) -> Block | None:
        shift = 2 * (ORDER - order)
        a, b = np.searchsorted(active, [index << shift, (index + 1) << shift])
        lp = active[a:b].tolist()
        if not lp:
            return None
        rp = np.unique(np.concatenate([need[p] for p in lp])).tolist()
        cost = sum(left_rows[p] for p in lp) + sum(right_rows[p] for p in rp)
        return Block(order, index, lp, rp, cost)

    def children(b: Block) -> list[Block]:
        kids = (block(b.order + 1, 4 * b.index + k) for k in range(4))
        return [k for k in kids if k is not None]

    blocks: list[Block] = []
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
