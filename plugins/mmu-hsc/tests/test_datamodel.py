"""Names and geometry helpers: patch spellings, calexp file names, stamp slices."""

import pytest

from mmu_hsc.datamodel import calexp_relpath, parse_calexp_name, parse_patch
from mmu_hsc.reader import centre_inside, stamp_slices


@pytest.mark.parametrize("value, label", [(305, "3,5"), (7, "0,7"), (800, "8,0"), ("3,5", "3,5"),
                                          (b"4,1", "4,1"), (" 2,6 ", "2,6"), ("506", "5,6")])
def test_patch_spellings(value, label):
    assert parse_patch(value) == label


@pytest.mark.parametrize("value", [-1, "a,b", "1.5"])
def test_bad_patch_values(value):
    with pytest.raises(ValueError):
        parse_patch(value)


def test_calexp_names_round_trip():
    rel = calexp_relpath("z", 9813, "4,5")
    assert str(rel) == "HSC-Z/9813/4,5/calexp-HSC-Z-9813-4,5.fits"
    assert parse_calexp_name(rel.name) == ("z", 9813, "4,5")
    assert parse_calexp_name("calexp-HSC-G-9813-4,5.fits.gz") is None
    assert parse_calexp_name("calexp-HSC-N921-9813-4,5.fits") is None


def test_stamp_slices_keep_the_centre():
    # interior: the pixel nearest (100.4, 50.6) is (100, 51) and lands on index (5, 5)
    sy, sx, iy, ix = stamp_slices(100.4, 50.6, 10, (200, 300))
    assert (sy, sx, iy, ix) == (slice(0, 10), slice(0, 10), slice(46, 56), slice(95, 105))
    # 2 px from the left edge: stamp columns 0..2 have no image pixel
    sy, sx, iy, ix = stamp_slices(2.0, 50.0, 10, (200, 300))
    assert sx == slice(3, 10) and ix == slice(0, 7)
    # odd size: the centre index is size // 2 as well
    sy, sx, iy, ix = stamp_slices(299.0, 199.0, 11, (200, 300))
    assert (sy, sx, iy, ix) == (slice(0, 6), slice(0, 6), slice(194, 200), slice(294, 300))
    assert stamp_slices(-50.0, 10.0, 10, (200, 300)) is None


def test_centre_inside():
    assert centre_inside(0.0, 0.0, (10, 10)) and centre_inside(9.49, 9.49, (10, 10))
    assert not centre_inside(9.5, 5.0, (10, 10)) and not centre_inside(-0.51, 5.0, (10, 10))
    assert not centre_inside(float("nan"), 5.0, (10, 10))
