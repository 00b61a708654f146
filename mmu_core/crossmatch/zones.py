"""Every pair of sky positions closer than a radius, by the zones algorithm.

The sky is cut into declination zones of height ``h >= r``; both catalogs are sorted by
(zone, ra). A left object's partners can only lie in its own zone and, when its cap crosses a
zone edge, the zone above or below, inside an ra window of half-width
``alpha = asin(sin r / cos(|dec| + r))`` (the whole zone when the cap holds a pole; windows
crossing ra = 0/360 are searched on both sides). Each window is two binary searches in the
sorted right catalog; the objects inside are candidates, and a candidate is a pair when its
unit-vector chord is ``<= 2 sin(r / 2)`` — the test :func:`scipy.spatial.cKDTree` applies
for astropy's ``search_around_sky``, on unit vectors computed the way astropy computes them,
so the two agree pair for pair. The windows are padded (relative 1e-9 and a few ulps), so
rounding can only add candidates, never lose a pair.

Gray, Nieto-Santisteban & Szalay (2006), "The Zones Algorithm for Finding Points-Near-a-Point
or Cross-Matching Spatial Datasets", MSR-TR-2006-52.

For arcsecond radii this does about half the work of a dual KD-tree search (two sorts and
four binary searches per object instead of two tree builds and a tree walk), and nothing
here but numpy. :class:`mmu_core.crossmatch.algorithms.ZonesAllPairs` and ``ZonesNearest``
run it on each block of the cross-match.
"""

from __future__ import annotations

import numpy as np

STRIDE = 512.0  # sort key = zone * STRIDE + ra: zones never overlap (ra < 360)
ZONE_FACTOR = 8.0  # default zone height in radii: 1 in 8 objects' caps cross a zone edge
EDGE_FUDGE = 1e-6  # a cap within this fraction of a zone of the edge also searches across


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(n, 3) unit vectors, computed as astropy does (so boundary cases agree)."""
    return np.stack(_xyz(ra_deg, dec_deg), axis=1)


def _xyz(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, ...]:
    ra = np.radians(ra_deg)
    dec = np.radians(dec_deg)
    cos_dec = np.cos(dec)
    return cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)


def chord_of(radius_arcsec: float) -> float:
    """Straight-line distance between unit vectors ``radius_arcsec`` apart."""
    return float(2.0 * np.sin(0.5 * np.radians(radius_arcsec / 3600.0)))


def chord_to_arcsec(chord: np.ndarray) -> np.ndarray:
    """Angular separation (arcsec) of unit vectors a chord apart."""
    return np.degrees(2.0 * np.arcsin(np.minimum(np.asarray(chord) / 2.0, 1.0))) * 3600.0


def ra_half_width(dec_deg: np.ndarray, radius_deg: float) -> np.ndarray:
    """An upper bound of |ra - ra0| (deg) over a cap of the radius centred at (ra0, dec);
    180 when the cap (nearly) holds a pole."""
    dec_deg = np.asarray(dec_deg, dtype=np.float64)
    edge = np.abs(dec_deg) + radius_deg
    out = np.full(dec_deg.shape, 180.0)
    ok = edge < 89.9999
    s = np.sin(np.radians(radius_deg)) / np.cos(np.radians(edge[ok]))
    out[ok] = np.where(s < 1.0, np.degrees(np.arcsin(np.minimum(s, 1.0))), 180.0)
    return out * (1.0 + 1e-9) + 1e-9


def zone_height(radius_arcsec: float, density_per_deg2: float | None = None) -> float:
    """Zone height (deg): ``ZONE_FACTOR`` radii, fewer where the right catalog is so dense
    that a window would hold more than about one unrelated object; never below the radius."""
    r = radius_arcsec / 3600.0
    factor = ZONE_FACTOR
    if density_per_deg2:
        factor = min(ZONE_FACTOR, max(1.0, 0.5 / (density_per_deg2 * r * r)))
    return factor * r


def _window_counts(keys: np.ndarray, lo: np.ndarray, hi_key: np.ndarray,
                   probes: int = 4) -> np.ndarray:
    """How many sorted ``keys`` from ``lo`` on are ``<= hi_key``: windows hold few objects,
    so step forward a few times, then binary-search the windows still open."""
    count = np.zeros(len(lo), np.int64)
    open_ = np.arange(len(lo))
    last = len(keys) - 1
    for _ in range(probes):
        at = lo[open_] + count[open_]
        inside = (at <= last) & (keys[np.minimum(at, last)] <= hi_key[open_])
        open_ = open_[inside]
        count[open_] += 1
        if not len(open_):
            return count
    count[open_] = np.searchsorted(keys, hi_key[open_], "right") - lo[open_]
    return count


def pairs_within(
    lra: np.ndarray, ldec: np.ndarray, rra: np.ndarray, rdec: np.ndarray,
    radius_arcsec: float, *, zone_height_deg: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, chord)``: every (left i, right j) whose unit-vector chord is
    ``<= chord_of(radius_arcsec)``, with that chord; in no particular order.

    ra in [0, 360), dec in [-90, 90] degrees (float64), as stored.
    """
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    if len(lra) == 0 or len(rra) == 0:
        return empty
    r = radius_arcsec / 3600.0
    h = max(zone_height_deg or zone_height(radius_arcsec), r)
    lzone = np.floor((ldec + 90.0) / h).astype(np.int64)
    rzone = np.floor((rdec + 90.0) / h).astype(np.int64)
    z0 = min(int(lzone.min()), int(rzone.min())) - 1  # keys stay small: fine resolution
    top = (max(int(lzone.max()), int(rzone.max())) - z0 + 2) * STRIDE
    eps = 8.0 * float(np.spacing(top))

    rkey = (rzone - z0) * STRIDE + rra
    rorder = np.argsort(rkey)
    rkey = rkey[rorder]
    # The left side only needs grouping by zone: queries of one zone share their binary
    # search's path down to that zone's few keys, so they run as fast as fully sorted ones;
    # a stable sort of 16-bit zone numbers is numpy's radix sort, ~5x faster than argsort.
    span = int(lzone.max()) - z0
    if span < 2**16:
        lorder = np.argsort((lzone - z0).astype(np.uint16), kind="stable")
    else:
        lorder = np.argsort(lzone, kind="stable")
    zone = lzone[lorder]
    ra = lra[lorder]
    dec = ldec[lorder]
    # ra half-widths once a zone, for a cap on the zone's edge nearer a pole (an upper bound
    # for every object of the zone) -- or once an object where zones outnumber objects
    first_zone, last_zone = int(zone[0]), int(zone[-1])
    if last_zone - first_zone < len(zone):
        edges = np.arange(first_zone, last_zone + 2) * h - 90.0
        per_zone = ra_half_width(np.maximum(np.abs(edges[:-1]), np.abs(edges[1:])), r)
        alpha = per_zone[zone - first_zone]
    else:
        alpha = ra_half_width(dec, r)
    whole = alpha >= 179.9999  # (windows that nearly wrap: the whole zone, never twice)
    where = (dec + 90.0) / h - zone  # position inside the zone, 0..1
    rows, los, his = [], [], []
    for step, sel in (
        (0, None),  # every object: its own zone (no copies)
        (-1, np.flatnonzero(where < r / h + EDGE_FUDGE)),
        (1, np.flatnonzero(where > 1.0 - r / h - EDGE_FUDGE)),
    ):
        if sel is None:
            sel, base, at, half, full = np.arange(len(ra)), (zone - z0) * STRIDE, ra, alpha, whole
        else:
            base = (zone[sel] + step - z0) * STRIDE
            at, half, full = ra[sel], alpha[sel], whole[sel]
        a, w = at - half, at + half
        rows.append(sel)
        if full.any():
            los.append(np.where(full, base, base + np.maximum(a, 0.0)) - eps)
            his.append(np.where(full, base + 360.0, base + np.minimum(w, 360.0)) + eps)
            low, high = ~full & (a < 0.0), ~full & (w >= 360.0)
        else:
            los.append(base + np.maximum(a, 0.0) - eps)
            his.append(base + np.minimum(w, 360.0) + eps)
            low, high = a < 0.0, w >= 360.0
        # a window running past ra = 0 also searches its part below 360, and vice versa
        rows.append(sel[low])
        los.append(base[low] + a[low] + 360.0 - eps)
        his.append(base[low] + 360.0 + eps)
        rows.append(sel[high])
        los.append(base[high] - eps)
        his.append(base[high] + w[high] - 360.0 + eps)
    rows_ = np.concatenate(rows)
    his_ = np.concatenate(his)
    lo = np.searchsorted(rkey, np.concatenate(los), "left")
    count = _window_counts(rkey, lo, his_)
    some = count > 0
    rows_, lo, count = rows_[some], lo[some], count[some]
    total = int(count.sum())
    if total == 0:
        return empty
    li = lorder[np.repeat(rows_, count)]
    ri = rorder[np.arange(total) - np.repeat(np.cumsum(count) - count - lo, count)]
    lx, ly, lz = _xyz(lra[li], ldec[li])
    rx, ry, rz = _xyz(rra[ri], rdec[ri])
    dx, dy, dz = lx - rx, ly - ry, lz - rz
    d2 = dx * dx + dy * dy + dz * dz  # the sum in cKDTree's order
    chord = chord_of(radius_arcsec)
    keep = d2 <= chord * chord
    return li[keep], ri[keep], np.sqrt(d2[keep])
