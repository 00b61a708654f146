"""Step 2's core, the match algorithm: one block's pairs from its left and right positions.

A :class:`MatchAlgorithm` gets the :class:`~mmu_core.crossmatch.positions.Positions` of a
block's left objects (those of its left pixels) and right objects (those of every right pixel
within reach of them) and the radius, and returns a :class:`BlockPairs`: rows of the two
tables and the unit-vector chord of each pair. "Within the radius" means a chord
``<= 2 sin(radius / 2)`` (:func:`~mmu_core.crossmatch.zones.chord_of`), the test astropy's
KD-tree applies. A pair belongs to the block of its left object and every block sees all the
right objects its left objects can reach, so every pair is found exactly once, as if there
were no partitioning.

An algorithm either finds every pair within the radius (``one_per_left = False``), or at
most one pair per left object (``one_per_left = True``): its nearest right object within the
radius, on an exact distance tie the smaller right object_id. The driver takes all pairs as
they are for ``how="all"``, and for ``how="nearest"`` keeps each left object's nearest pair
itself when the algorithm gives all, then applies the one-to-one rule
(:mod:`mmu_core.crossmatch.resolve`). Tasks may run on other processes or a dask cluster: an
algorithm must be picklable (plain attributes, its class importable there).

The defaults (:func:`default_algorithm`): :class:`ZonesAllPairs` for ``how="all"``;
:class:`ZonesNearest` for ``how="nearest"`` up to ``ZONES_NEAREST_ARCSEC`` (all pairs by
zones, then the closest), :class:`KDTreeNearest` beyond (all pairs could be very many there).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mmu_core.crossmatch.errors import CrossMatchError
from mmu_core.crossmatch.positions import Positions
from mmu_core.crossmatch.resolve import nearest_per_left
from mmu_core.crossmatch.zones import (
    chord_of,
    chord_to_arcsec,
    pairs_within,
    unit_vectors,
    zone_height,
)
from mmu_core.storage import layout

ZONES_NEAREST_ARCSEC = 60.0  # nearest matches up to this radius take all pairs, then the closest


@dataclass(frozen=True)
class BlockPairs:
    """A block's pairs: ``left[k]`` and ``right[k]`` are rows of the block's left and right
    :class:`Positions`, ``chord[k]`` their unit-vector chord; in any order."""

    left: np.ndarray  # int64
    right: np.ndarray  # int64
    chord: np.ndarray  # float64

    def __post_init__(self) -> None:
        for name, dtype in (("left", np.int64), ("right", np.int64), ("chord", np.float64)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=dtype))
        if not (self.left.ndim == self.right.ndim == self.chord.ndim == 1
                and len(self.left) == len(self.right) == len(self.chord)):
            raise CrossMatchError("a block's left rows, right rows and chords must be 1-d "
                                  "arrays of one length")

    @classmethod
    def empty(cls) -> BlockPairs:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))

    def __len__(self) -> int:
        return len(self.left)

    @property
    def separation_arcsec(self) -> np.ndarray:
        """Each pair's angular separation in arcsec."""
        return chord_to_arcsec(self.chord)

    def take(self, index: np.ndarray) -> BlockPairs:
        """These pairs at ``index`` (indices or a mask)."""
        return BlockPairs(self.left[index], self.right[index], self.chord[index])

    def check(self, n_left: int, n_right: int) -> None:
        """Refuse rows outside the block's tables."""
        for rows, n, side in ((self.left, n_left, "left"), (self.right, n_right, "right")):
            if len(rows) and (rows.min() < 0 or rows.max() >= n):
                raise CrossMatchError(f"the match algorithm returned {side} rows outside "
                                      f"[0, {n})")


class MatchAlgorithm(ABC):
    """How the pairs of one block are found. Subclass it and implement :meth:`match`; set
    ``one_per_left = True`` if it returns at most one pair per left object, that object's
    nearest right object within the radius (exact ties: the smaller right object_id)."""

    one_per_left: ClassVar[bool] = False

    @abstractmethod
    def match(self, left: Positions, right: Positions, radius_arcsec: float) -> BlockPairs:
        """The pairs of one block within ``radius_arcsec`` (chord ``<= chord_of(radius)``):
        every one, or with ``one_per_left`` each left object's nearest."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def right_density(right: Positions) -> float | None:
    """Right objects per square degree over the pixels they come from."""
    area = len(np.unique(right.pixel)) * layout.PIXEL_AREA_DEG2
    return len(right) / area if area else None


class ZonesAllPairs(MatchAlgorithm):
    """Every pair, by the zones algorithm (:func:`mmu_core.crossmatch.zones.pairs_within`:
    sort by declination zone and ra, binary-search each object's window, test the chord),
    with zones no taller than the right objects' density makes useful."""

    one_per_left = False

    def match(self, left: Positions, right: Positions, radius_arcsec: float) -> BlockPairs:
        li, ri, chord = pairs_within(
            left.ra, left.dec, right.ra, right.dec, radius_arcsec,
            zone_height_deg=zone_height(radius_arcsec, right_density(right)))
        return BlockPairs(li, ri, chord)


class ZonesNearest(ZonesAllPairs):
    """Each left object's nearest right object: every pair by zones, then the closest of each
    left object's (cheap for the few pairs of arcsecond radii)."""

    one_per_left = True

    def match(self, left: Positions, right: Positions, radius_arcsec: float) -> BlockPairs:
        pairs = super().match(left, right, radius_arcsec)
        if not len(pairs):
            return pairs
        return pairs.take(nearest_per_left(pairs.left, len(left), pairs.chord,
                                           right.id[pairs.right]))


class KDTreeNearest(MatchAlgorithm):
    """Each left object's nearest right object by a KD-tree of the right unit vectors (one
    query per left object): for large radii, whose pairs could be very many."""

    one_per_left = True

    def match(self, left: Positions, right: Positions, radius_arcsec: float) -> BlockPairs:
        from scipy.spatial import cKDTree

        # (query's bound is strict: nudge it so "within" is chord <= 2 sin(r/2) here too.)
        limit = chord_of(radius_arcsec)
        tree = cKDTree(unit_vectors(right.ra, right.dec), balanced_tree=False,
                       compact_nodes=False)
        d, j = tree.query(unit_vectors(left.ra, left.dec), k=1,
                          distance_upper_bound=np.nextafter(limit, np.inf))
        li = np.flatnonzero(d <= limit)
        return BlockPairs(li, j[li].astype(np.int64), d[li])


def default_algorithm(how: str, radius_arcsec: float) -> MatchAlgorithm:
    """The algorithm ``cross_match`` uses for ``how`` at this radius."""
    if how == "all":
        return ZonesAllPairs()
    if radius_arcsec <= ZONES_NEAREST_ARCSEC:
        return ZonesNearest()
    return KDTreeNearest()
