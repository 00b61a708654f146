"""Cross-matching two stored datasets by sky position, HEALPix block by HEALPix block.

How it works (each step lives in its own module):

1. **Plan** (:mod:`~mmu_core.crossmatch.plan`), from the manifests only: the left pixels with
   right objects within reach, grouped into NESTED blocks of at most ``max_task_rows`` left
   plus right rows; one task per block.
2. **Match** (:mod:`~mmu_core.crossmatch.match`), one task per block in parallel: read
   ``object_id``, ``ra`` and ``dec`` of the block's pixels
   (:mod:`~mmu_core.crossmatch.positions`), find the pairs with a :class:`MatchAlgorithm`
   (:mod:`~mmu_core.crossmatch.algorithms`; by default the zones matcher of
   :mod:`~mmu_core.crossmatch.zones`). A pair belongs to the block of its left object, so
   every pair is found exactly once, as if there were no partitioning.
3. **Resolve** (:mod:`~mmu_core.crossmatch.resolve`, ``how="nearest"``): the one-to-one
   rule, within each block and then for right objects claimed in several blocks.
4. **Write** (:mod:`~mmu_core.crossmatch.writers`): ``OUT/catalog.parquet`` and the matched
   dataset, gathered from the two inputs by random access, one task per block again.

:func:`cross_match` (:mod:`~mmu_core.crossmatch.driver`) runs them.
"""

from __future__ import annotations

from mmu_core.crossmatch.algorithms import (
    ZONES_NEAREST_ARCSEC,
    BlockPairs,
    KDTreeNearest,
    MatchAlgorithm,
    ZonesAllPairs,
    ZonesNearest,
    default_algorithm,
)
from mmu_core.crossmatch.driver import HOW, CrossMatchResult, cross_match
from mmu_core.crossmatch.errors import CrossMatchError
from mmu_core.crossmatch.match import pair_order
from mmu_core.crossmatch.plan import (
    DEFAULT_TASK_ROWS,
    NEIGHBOUR_LIMIT_ARCSEC,
    Block,
    plan_blocks,
    search_pixels,
)
from mmu_core.crossmatch.positions import Positions, files_by_pixel, read_positions
from mmu_core.crossmatch.resolve import best_per_group, nearest_per_left, one_to_one
from mmu_core.crossmatch.writers import (
    CATALOG_NAME,
    MATCHED_CONFIG,
    matched_dirname,
    namespaces,
    write_matched_dataset,
)

__all__ = [
    "CATALOG_NAME", "DEFAULT_TASK_ROWS", "HOW", "MATCHED_CONFIG", "NEIGHBOUR_LIMIT_ARCSEC",
    "ZONES_NEAREST_ARCSEC", "Block", "BlockPairs", "CrossMatchError", "CrossMatchResult",
    "KDTreeNearest", "MatchAlgorithm", "Positions", "ZonesAllPairs", "ZonesNearest",
    "best_per_group", "cross_match", "default_algorithm", "files_by_pixel", "matched_dirname",
    "namespaces", "nearest_per_left", "one_to_one", "pair_order", "plan_blocks",
    "read_positions", "search_pixels", "write_matched_dataset",
]
