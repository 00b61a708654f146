"""Step 3, for ``how="nearest"``: the one-to-one rule.

Each left object proposes its nearest right object within the radius (ties: the smaller right
object_id) -- :func:`nearest_per_left`, unless the algorithm already proposes at most one.
When several left objects propose the same right object, only the closest of them keeps it
(ties: the smallest left object_id) -- :func:`one_to_one`; the others stay unmatched.

Each match task applies the rule to its own block's claims (in parallel). A right object in a
pixel that several blocks read may be claimed in more than one block; the driver settles those
claims afterwards (:func:`settle_across_blocks`), a range of right pixels at a time, so its
memory stays bounded whatever the catalogs.
"""

from __future__ import annotations

import numpy as np

from mmu_core.crossmatch.parts import BlockPart, to_numpy
from mmu_core.storage import layout


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


def nearest_per_left(left_row: np.ndarray, n_left: int, chord: np.ndarray,
                     right_id: np.ndarray) -> np.ndarray:
    """Sorted indices of each left object's nearest pair: the smallest chord, on an exact tie
    the smaller right object_id (``right_id`` of each pair)."""
    return best_per_group(left_row, n_left, chord, right_id)


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


def settle_across_blocks(parts: list[BlockPart], budget: int) -> None:
    """Of the right objects claimed in several blocks (each block applied the rule to its own
    claims), only the rule's winner keeps its pair: each part gets ``drop``, the rows of its
    pairs that lost, where there are any.

    Only the blocks' claims on pixels several blocks read are looked at, and a range of right
    pixels at a time (each holding at most about ``budget`` claims, read as slices of the
    claim files, which are sorted by pixel), so memory stays bounded whatever the catalogs."""
    import pyarrow as pa

    per_pixel = np.zeros(layout.NPIX, np.int64)
    for part in parts:
        if part.claims is not None:
            per_pixel[part.claims.pixels] += part.claims.counts
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
            claims = part.claims
            if claims is None or (claims.table is None and claims.path is None):
                continue
            source = claims.table
            mapped = None
            if source is None:  # memory-mapped, sliced, copied, unmapped: nothing stays
                mapped = pa.memory_map(claims.path, "r")
                source = pa.ipc.open_file(mapped).read_all()
            pixel = source.column("right_pixel").to_numpy()
            a, b = np.searchsorted(pixel, [lo, hi])
            if b > a:
                found["block"].append(np.full(b - a, part.block, np.int64))
                for c in ("row", "right_key", "separation_arcsec", "left_object_id"):
                    found[c].append(np.array(to_numpy(source.column(c).slice(a, b - a))))
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
        if part.block in drops:
            part.drop = np.concatenate(drops[part.block])
