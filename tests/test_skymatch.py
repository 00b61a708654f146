"""The zones matcher (mmu_core.crossmatch.zones) against astropy's search_around_sky, pair for pair."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord, search_around_sky
from stored import offset

from mmu_core.crossmatch.zones import chord_to_arcsec, pairs_within, ra_half_width


def astropy_pairs(lra, ldec, rra, rdec, radius_arcsec):
    i, j, sep, _ = search_around_sky(SkyCoord(lra * u.deg, ldec * u.deg),
                                     SkyCoord(rra * u.deg, rdec * u.deg),
                                     radius_arcsec * u.arcsec)
    return {(a, b): s for a, b, s in zip(i.tolist(), j.tolist(), sep.to_value(u.arcsec),
                                         strict=True)}


def check(lra, ldec, rra, rdec, radius_arcsec):
    li, ri, chord = pairs_within(lra, ldec, rra, rdec, radius_arcsec)
    got = list(zip(li.tolist(), ri.tolist(), strict=True))
    assert len(got) == len(set(got)), "a pair was found twice"
    expected = astropy_pairs(lra, ldec, rra, rdec, radius_arcsec)
    assert set(got) == set(expected)
    if got:
        np.testing.assert_allclose(chord_to_arcsec(chord), [expected[p] for p in got],
                                   rtol=0, atol=1e-6)
    return len(got)


def neighbours_of(rng, ra, dec, n, radius_arcsec, spread=1.5):
    """n objects within spread * radius of random ones of (ra, dec)."""
    src = rng.integers(0, len(ra), n)
    sep = rng.uniform(0, spread * radius_arcsec, n)
    return offset(ra[src], dec[src], sep, rng.uniform(0, 360, n))


@pytest.mark.parametrize("radius", [0.2, 1.0, 30.0])
def test_whole_sky_with_close_and_far_partners(radius):
    rng = np.random.default_rng(int(radius * 10))
    n = 40_000
    lra, ldec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    cra, cdec = neighbours_of(rng, lra, ldec, n // 2, radius)
    rra = np.concatenate([cra, rng.uniform(0, 360, n // 2)])
    rdec = np.concatenate([cdec, np.degrees(np.arcsin(rng.uniform(-1, 1, n // 2)))])
    assert check(lra, ldec, rra, rdec, radius) > n // 4


@pytest.mark.parametrize("dec0", [90.0, -90.0, 89.999, -89.9995])
@pytest.mark.parametrize("radius", [1.0, 20.0])
def test_around_the_poles(dec0, radius):
    """Caps holding a pole search whole zones; objects at every ra around it."""
    rng = np.random.default_rng(7)
    n = 600
    sep = rng.uniform(0, 4 * radius, n)
    lra, ldec = offset(np.zeros(n), np.full(n, dec0), sep, rng.uniform(0, 360, n))
    rra, rdec = neighbours_of(rng, lra, ldec, n, radius)
    assert check(lra, ldec, rra, rdec, radius) > 0


def test_across_ra_zero():
    rng = np.random.default_rng(3)
    n = 20_000
    dec = rng.uniform(-80, 80, n)
    lra = np.mod(rng.normal(0, 2.0 / 3600, n) / np.cos(np.radians(dec)), 360.0)
    lra = np.where(lra >= 360.0, 0.0, lra)
    rra, rdec = neighbours_of(rng, lra, dec, n, 1.0)
    assert (rra > 359).any() and (rra < 1).any()
    assert check(lra, dec, rra, rdec, 1.0) > n // 4


def test_pairs_exactly_at_the_radius_follow_astropy():
    """Partners placed at exactly the radius: rounding puts some in, some out; the matcher
    decides each one as astropy does (chord <= 2 sin(r/2) on the same unit vectors)."""
    rng = np.random.default_rng(11)
    n = 50_000
    lra, ldec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    rra, rdec = offset(lra, ldec, np.full(n, 1.0), rng.uniform(0, 360, n))
    found = check(lra, ldec, rra, rdec, 1.0)
    assert 0.2 * n < found < 0.8 * n  # genuinely on the edge, both ways


def test_large_radius_and_empty_inputs():
    rng = np.random.default_rng(5)
    lra, ldec = rng.uniform(0, 360, 600), np.degrees(np.arcsin(rng.uniform(-1, 1, 600)))
    rra, rdec = rng.uniform(0, 360, 600), np.degrees(np.arcsin(rng.uniform(-1, 1, 600)))
    assert check(lra, ldec, rra, rdec, 5 * 3600.0) > 0
    empty = np.empty(0)
    assert all(len(a) == 0 for a in pairs_within(empty, empty, rra, rdec, 1.0))
    assert all(len(a) == 0 for a in pairs_within(lra, ldec, empty, empty, 1.0))


def test_ra_half_width_bounds_the_cap():
    """Every point of a cap lies within the half-width in ra; whole circle at the poles."""
    r = 0.01
    for dec0 in (0.0, 45.0, -70.0, 89.0, 89.98):
        ra, _ = offset(np.full(5000, 180.0), np.full(5000, dec0), np.full(5000, r * 3600),
                       np.linspace(0, 360, 5000))
        widest = np.abs(ra - 180.0).max()
        bound = ra_half_width(np.array([dec0]), r)[0]
        assert widest <= bound
        if abs(dec0) <= 70:  # and not much wider away from the poles
            assert bound < widest * 1.01
    assert ra_half_width(np.array([89.995]), 0.01)[0] == pytest.approx(180.0, rel=1e-6)
