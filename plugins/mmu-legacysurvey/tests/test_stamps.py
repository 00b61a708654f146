"""dr10_south_21 stamps and columns, against the sample's files read independently: astropy
``Cutout2D`` of the decompressed ``.fits.fz`` images, the Tractor table read by astropy."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.nddata import Cutout2D


@pytest.fixture(scope="module")
def converted(raw, ls):
    out, ctx = ls.convert_all(raw)
    return out, ctx


@pytest.fixture(scope="module")
def planes(raw, ls):
    cache = {}

    def get(brick, kind, band=None):
        key = (brick, kind, band)
        if key not in cache:
            cache[key] = ls.read_plane(ls.coadd_path(raw, brick, kind, band))
        return cache[key]
    return get


def _rows_by_id(out):
    return {oid: r for r, oid in enumerate(out["object_id"])}


def test_stamps_equal_astropy_cutouts(converted, planes, ls):
    out, ctx = converted
    assert len(out["object_id"]) >= 20 and not ctx.skipped and not ctx.warnings
    n_edge = 0
    for r, oid in enumerate(out["object_id"]):
        brick = oid.decode().split("-")[0]
        ra, dec = out["ra"][r], out["dec"][r]
        bits_img, _, wcs = planes(brick, "maskbits")
        bits = ls.cutout(bits_img.astype(np.int64), wcs, ra, dec, 0)
        inside = ls.cutout(np.ones(bits_img.shape, bool), wcs, ra, dec, False)
        n_edge += int(not inside.all())
        for k, band in enumerate(ls.BANDS):
            image, _, iwcs = planes(brick, "image", band)
            ivar, _, vwcs = planes(brick, "invvar", band)
            np.testing.assert_array_equal(out["image_array"][r, k],
                                          ls.cutout(image, iwcs, ra, dec, 0.0))
            np.testing.assert_array_equal(out["image_ivar"][r, k],
                                          ls.cutout(ivar, vwcs, ra, dec, 0.0))
            np.testing.assert_array_equal(out["image_mask"][r, k],
                                          inside & ((bits & ls.BAD_BITS) == 0))
            if k == 0:  # the stamp's WCS is the cutout's
                cut_wcs = Cutout2D(image, iwcs.world_to_pixel_values(ra, dec), ls.STAMP,
                                   wcs=iwcs, mode="partial").wcs
                np.testing.assert_allclose([out["wcs_crpix1"][r], out["wcs_crpix2"][r]],
                                           cut_wcs.wcs.crpix)
                np.testing.assert_allclose([out["wcs_crval1"][r], out["wcs_crval2"][r]],
                                           cut_wcs.wcs.crval)
                np.testing.assert_allclose(out["wcs_cd"][r], cut_wcs.pixel_scale_matrix)
            # edge pixels: outside the brick's images nothing is kept
            assert (out["image_array"][r, k][~inside] == 0).all()
            assert (out["image_ivar"][r, k][~inside] == 0).all()
    assert n_edge >= 3  # the sample put objects near image edges


def test_mask_follows_mmu_v1_bits(raw_copy, ls):
    """Planted maskbits around one object: bits 0-7, 11, 14, 15 make a pixel bad, the
    others (WISEM1, WISEM2, BAILOUT, GALAXY, CLUSTER, SUB_BLOB) do not."""
    out, _ = ls.convert_all(raw_copy)
    away = (out["bx"] > 90) & (out["bx"] < 310) & (out["by"] > 90) & (out["by"] < 310)
    r0 = int(np.flatnonzero(away)[0])  # a stamp entirely inside its brick's 400 px images
    oid = out["object_id"][r0]
    brick = oid.decode().split("-")[0]
    path = ls.coadd_path(raw_copy, brick, "maskbits")
    data, _, wcs = ls.read_plane(path)
    x, y = wcs.world_to_pixel_values(out["ra"][r0], out["dec"][r0])
    px, py = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    planted = list(range(17))
    data = data.copy()
    data[py + 3, px - 8:px + 9] = 0
    for j, bit in enumerate(planted):
        data[py + 3, px - 8 + j] = 1 << bit
    ls.rewrite_plane(path, data)
    again, _ = ls.convert_all(raw_copy)
    r = int(np.flatnonzero(again["object_id"] == oid)[0])
    x0, y0 = Cutout2D(data, (float(x), float(y)), ls.STAMP, mode="partial").origin_original
    sy, sx = py + 3 - y0, px - 8 - x0  # the planted pixels in the stamp
    good = again["image_mask"][r, 2, sy, sx:sx + 17]
    assert list(good) == [bit not in (0, 1, 2, 3, 4, 5, 6, 7, 11, 14, 15) for bit in planted]
    # one mask for all bands, as MMU v1
    assert (again["image_mask"][r] == again["image_mask"][r, :1]).all()


def test_catalog_columns_are_the_tractor_rows(converted, raw, ls):
    out, _ = converted
    rows = _rows_by_id(out)
    seen = 0
    for brick in ls.bricks(raw):
        cat = ls.catalog(raw, brick)
        ids = ls.object_ids(cat)
        for i in np.flatnonzero(ls.selected(cat)):
            r = rows[ids[i]]
            seen += 1
            for name in cat.colnames:
                if cat[name].ndim > 1:
                    assert name not in out  # array columns (dchisq) are not stored
                    continue
                got, want = out[name][r], cat[name][i]
                if isinstance(want, str):
                    want = want.encode()
                assert got == want, (name, got, want)
    assert seen == len(out["object_id"])


def test_derived_and_per_band_columns(converted, ls):
    out, _ = converted
    n = len(out["object_id"])
    assert out["image_band"].tolist()[0] == [b"des-g", b"des-r", b"des-i", b"des-z"]
    assert out["image_units"].tolist()[0] == [b"nanomaggy"] * 4
    np.testing.assert_allclose(out["image_scale"], 0.262, rtol=1e-6)
    for k, b in enumerate(ls.BANDS):
        np.testing.assert_array_equal(out["image_psf_fwhm"][:, k], out[f"psfsize_{b}"])
        ext = -2.5 * np.log10(out[f"mw_transmission_{b}"].astype(float))
        np.testing.assert_allclose(out["image_extinction"][:, k], ext, rtol=1e-5)
        np.testing.assert_allclose(out[f"mw_extinction_{b}"], ext, rtol=1e-5)
        flux = out[f"flux_{b}"].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mag = np.where(flux > 0, 22.5 - 2.5 * np.log10(flux), np.nan)
            err = np.where(flux > 0, 2.5 / np.log(10) / flux / np.sqrt(out[f"flux_ivar_{b}"]), np.nan)
        np.testing.assert_allclose(out[f"model_mag_{b}"], mag, rtol=1e-6)
        np.testing.assert_allclose(out[f"model_mag_err_{b}"], err, rtol=1e-5)
    assert out["object_id"].dtype == np.dtype("S20") and len(set(out["object_id"])) == n


def test_selection_is_mmu_v1s(converted, raw, ls):
    out, _ = converted
    expected = set()
    total = 0
    for brick in ls.bricks(raw):
        cat = ls.catalog(raw, brick)
        total += len(cat)
        expected |= set(ls.object_ids(cat)[ls.selected(cat)].tolist())
    assert set(out["object_id"].tolist()) == expected
    assert len(expected) < total  # the sample has objects each cut removes


@pytest.mark.parametrize("column, value, kept", [
    ("brick_primary", False, False), ("nobs_i", 0, False), ("type", "PSF", False),
    ("maskbits", 1 << 11, False), ("maskbits", 1 << 14, False), ("maskbits", 1 << 8, True),
    ("maskbits", 1 << 12, True), ("flux_z", -1.0, False)])
def test_each_cut_on_one_object(raw_copy, ls, column, value, kept):
    out, _ = ls.convert_all(raw_copy)
    oid = out["object_id"][0]
    brick = oid.decode().split("-")[0]
    cat = ls.catalog(raw_copy, brick)
    i = int(np.flatnonzero(ls.object_ids(cat) == oid)[0])
    ls.edit_catalog(raw_copy, brick, column, i, value)
    again, _ = ls.convert_all(raw_copy)
    assert (oid in set(again["object_id"].tolist())) is kept

