"""The cross-match's algorithm interface: a brute-force matcher behind it gives the zones
matcher's pairs and catalogs exactly.

The catalogs are test_crossmatch's (pairs on NSIDE-16 pixel borders, around both poles,
across ra = 0/360, left twins competing for one right object), at a tenth of the size so that
testing every (left, right) chord of a block stays cheap.
"""

from __future__ import annotations

import numpy as np
import pytest
from stored import store
from test_crossmatch import LEFT_ONLY, RIGHT_ONLY, in_cap, make_catalogs

from mmu_core.crossmatch import (
    BlockPairs,
    CrossMatchError,
    KDTreeNearest,
    MatchAlgorithm,
    Positions,
    ZonesAllPairs,
    ZonesNearest,
    cross_match,
    default_algorithm,
)

RADIUS = 1.0  # arcsec


def unit(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, ...]:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)


class BruteForce(MatchAlgorithm):
    """Every pair: the unit-vector chord of every (left, right) of the block, O(n m)."""

    chunk = 1 << 20  # (left, right) chords computed at once

    def match(self, left: Positions, right: Positions, radius_arcsec: float) -> BlockPairs:
        limit = 2.0 * np.sin(0.5 * np.radians(radius_arcsec / 3600.0))
        lx, ly, lz = unit(left.ra, left.dec)
        rx, ry, rz = unit(right.ra, right.dec)
        step = max(1, self.chunk // max(len(right), 1))
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for a in range(0, len(left), step):
            s = slice(a, a + step)
            dx, dy, dz = (lx[s, None] - rx[None], ly[s, None] - ry[None], lz[s, None] - rz[None])
            d2 = dx * dx + dy * dy + dz * dz
            i, j = np.nonzero(d2 <= limit * limit)
            found.append((i + a, j, np.sqrt(d2[i, j])))
        if not found:
            return BlockPairs.empty()
        return BlockPairs(*(np.concatenate(c) for c in zip(*found, strict=True)))


class BruteForceNearest(BruteForce):
    """Each left object's nearest right object (ties: the smaller right id), from every pair."""

    one_per_left = True

    def match(self, left: Positions, right: Positions, radius_arcsec: float) -> BlockPairs:
        pairs = super().match(left, right, radius_arcsec)
        order = np.lexsort((right.id[pairs.right], pairs.chord, pairs.left))
        first = np.r_[True, pairs.left[order][1:] != pairs.left[order][:-1]]
        return pairs.take(order[first])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("xmatch-small")
    left, right = make_catalogs(scale=0.1)
    return (store(root / "lsurvey" / "test", left, "lsurvey"),
            store(root / "rsurvey" / "test", right, "rsurvey"))


def test_defaults_follow_how_and_radius():
    assert isinstance(default_algorithm("all", 3.5 * 3600), ZonesAllPairs)
    assert isinstance(default_algorithm("nearest", 60.0), ZonesNearest)
    assert isinstance(default_algorithm("nearest", 61.0), KDTreeNearest)
    assert not ZonesAllPairs.one_per_left and ZonesNearest.one_per_left


@pytest.mark.parametrize("blocks", [{}, {"max_task_rows": 2_000, "workers": 2}])
def test_brute_force_gives_the_zones_catalog_for_all(small, blocks):
    zones = cross_match(*small, radius_arcsec=RADIUS, how="all", **blocks)
    brute = cross_match(*small, radius_arcsec=RADIUS, how="all", algorithm=BruteForce(),
                        **blocks)
    assert zones.algorithm == "ZonesAllPairs()" and brute.algorithm == "BruteForce()"
    assert brute.tasks == zones.tasks and len(zones) > 5_000
    assert brute.catalog.equals(zones.catalog)
    # pairs across pixel borders, around the poles, across ra = 0/360
    cat = zones.catalog.to_pydict()
    import healpy

    rpix = healpy.ang2pix(16, cat["right_ra"], cat["right_dec"], lonlat=True, nest=True)
    assert np.sum(rpix != np.array(cat["healpix"])) > 500
    assert np.sum(np.abs(cat["dec"]) > 88.0) > 500
    assert np.sum((np.array(cat["ra"]) > 359.0) != (np.array(cat["right_ra"]) > 359.0)) > 20


@pytest.mark.parametrize("algorithm", [BruteForce(), BruteForceNearest()], ids=repr)
def test_brute_force_gives_the_zones_catalog_for_the_nearest_rule(small, algorithm):
    """All pairs (the driver keeps each left object's nearest) or the nearest already: with
    single-pixel blocks, so claims are settled across blocks too."""
    zones = cross_match(*small, radius_arcsec=RADIUS, how="nearest", max_task_rows=1)
    brute = cross_match(*small, radius_arcsec=RADIUS, how="nearest", max_task_rows=1,
                        algorithm=algorithm)
    assert brute.candidates == zones.candidates > len(zones) + 50  # the rule had conflicts
    assert brute.catalog.equals(zones.catalog)


def test_brute_force_writes_the_same_files(small, tmp_path):
    """The catalog and the matched dataset's files (all but the manifest, which records
    when and where) are byte for byte the same."""
    files = {}
    for name, algorithm in (("zones", None), ("brute", BruteForce())):
        out = tmp_path / name
        cross_match(*small, out, radius_arcsec=RADIUS, how="nearest", workers=2,
                    max_task_rows=5_000, algorithm=algorithm)
        files[name] = {str(p.relative_to(out)): p.read_bytes()
                       for p in sorted(out.rglob("*")) if p.is_file() and p.suffix != ".json"}
    assert "catalog.parquet" in files["brute"] and len(files["brute"]) > 5
    assert files["zones"] == files["brute"]


def test_large_radius_the_kd_tree_and_brute_force_agree(tmp_path):
    rng = np.random.default_rng(3)
    ids = np.arange(1_500, dtype=np.int64)
    sides = []
    for name in ("a", "b"):
        ra, dec = in_cap(rng, 1_500, 10.0, 80.0, 12.0)
        sides.append(store(tmp_path / name / "test", {"object_id": ids, "ra": ra, "dec": dec},
                           name))
    radius = 3.5 * 3600
    zones = cross_match(*sides, radius_arcsec=radius, how="all")
    brute = cross_match(*sides, radius_arcsec=radius, how="all", algorithm=BruteForce())
    assert len(zones) > 50_000 and brute.catalog.equals(zones.catalog)

    kd = cross_match(*sides, radius_arcsec=radius, how="nearest", max_task_rows=500)
    nearest = cross_match(*sides, radius_arcsec=radius, how="nearest", max_task_rows=500,
                          algorithm=BruteForce())
    assert kd.algorithm == "KDTreeNearest()" and kd.tasks > 4
    a, b = kd.catalog, nearest.catalog
    for column in ("left_object_id", "right_object_id", "healpix", "match_id"):
        np.testing.assert_array_equal(np.asarray(a[column]), np.asarray(b[column]))
    # the KD-tree sums the chord's squares in its own order: the last bit may differ
    np.testing.assert_allclose(np.asarray(a["separation_arcsec"]),
                               np.asarray(b["separation_arcsec"]), rtol=1e-12, atol=0)


class Misbehaving(MatchAlgorithm):
    def __init__(self, result):
        self.result = result

    def match(self, left, right, radius_arcsec):
        return self.result(left, right)


def test_the_interface_is_checked(small):
    with pytest.raises(CrossMatchError, match="at most one"):
        cross_match(*small, how="all", algorithm=BruteForceNearest())
    with pytest.raises(CrossMatchError, match="must be a MatchAlgorithm"):
        cross_match(*small, how="all", algorithm="zones")
    with pytest.raises(TypeError, match="not BlockPairs"):
        cross_match(*small, how="all", algorithm=Misbehaving(lambda left, right: ([], [], [])))
    with pytest.raises(CrossMatchError, match="right rows outside"):
        cross_match(*small, how="all", algorithm=Misbehaving(
            lambda left, right: BlockPairs([0], [len(right)], [0.0])))
    with pytest.raises(CrossMatchError, match="one length"):
        BlockPairs([0, 1], [0], [0.0])
    with pytest.raises(TypeError):
        MatchAlgorithm()


def test_only_pixels_with_both_sides_reach_the_algorithm(small):
    """The plan, not the algorithm, decides which pixels are read: the left-only and
    right-only regions never reach it."""
    import healpy

    seen: list[tuple[set, set]] = []

    class Spy(BruteForce):
        def match(self, left, right, radius_arcsec):
            seen.append((set(left.pixel.tolist()), set(right.pixel.tolist())))
            return super().match(left, right, radius_arcsec)

    cross_match(*small, radius_arcsec=RADIUS, how="all", algorithm=Spy())
    lonly = healpy.ang2pix(16, *LEFT_ONLY[:2], lonlat=True, nest=True)
    ronly = healpy.ang2pix(16, *RIGHT_ONLY[:2], lonlat=True, nest=True)
    assert seen and all(lonly not in lp and ronly not in rp for lp, rp in seen)
