"""Stamps: centring, pixel rules (image, ivar, mask), PSF FWHM, edges, configs, options.

Expected values are computed here from the raw FITS arrays with astropy + numpy."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from mmu_hsc.convert import psf_fwhm

BANDS = "grizy"
STAMP = 160

C = STAMP // 2
BAD_BITS = (1 << 0) | (1 << 1) | (1 << 8)  # BAD, SAT, NO_DATA


def _planes_cache(hsc):
    cache = {}

    def get(raw, band, tract, patch):
        key = (band, int(tract), int(patch))
        if key not in cache:
            cache[key] = hsc.raw_planes(hsc.calexp_path(raw, band, int(tract), int(patch)))
        return cache[key]
    return get


# ---- centring -------------------------------------------------------------------------------
def test_every_stamp_is_centred_on_its_object(noiseless_raw, hsc):
    out, ctx = hsc.convert_all(noiseless_raw)
    assert len(out["object_id"]) == 24 and not ctx.skipped
    planes = _planes_cache(hsc)
    for r in range(len(out["object_id"])):
        for k, band in enumerate(BANDS):
            stamp = np.where(out["image_mask"][r, k], out["image_array"][r, k], -np.inf)
            py, px = np.unravel_index(np.argmax(stamp), stamp.shape)
            assert abs(py - C) <= 1 and abs(px - C) <= 1, (out["object_id"][r], band, py, px)
            # The centre pixel is the calexp pixel nearest the object's WCS position.
            image, _, _, wcs = planes(noiseless_raw, band, out["tract"][r], out["patch"][r])
            x, y = hsc.nearest_pixel(wcs, out["ra"][r], out["dec"][r])
            assert out["image_array"][r, k, C, C] == image[y, x]


# ---- pixel rules ----------------------------------------------------------------------------
def test_image_ivar_mask_follow_the_rules(noisy_raw, hsc):
    out, _ = hsc.convert_all(noisy_raw)
    planes = _planes_cache(hsc)
    seen = dict.fromkeys(["BAD", "SAT", "NO_DATA", "DETECTED good", "CR good"], 0)
    for r in range(len(out["object_id"])):
        for k, band in enumerate(BANDS):
            image, mask, var, wcs = planes(noisy_raw, band, out["tract"][r], out["patch"][r])
            x, y = hsc.nearest_pixel(wcs, out["ra"][r], out["dec"][r])
            img = hsc.padded_cut(image, x, y, np.nan)
            bits = hsc.padded_cut(mask, x, y, 0)
            inside = hsc.padded_cut(np.ones(image.shape, bool), x, y, False)
            v = hsc.padded_cut(var, x, y, np.nan)
            finite = np.isfinite(img)
            np.testing.assert_array_equal(out["image_array"][r, k], np.where(finite, img, 0))
            with np.errstate(divide="ignore", invalid="ignore"):
                ivar = np.where(np.isfinite(v) & (v > 0), 1.0 / v, 0.0).astype(np.float32)
            np.testing.assert_allclose(out["image_ivar"][r, k], ivar, rtol=1e-6)
            good = inside & ((bits & BAD_BITS) == 0) & finite
            np.testing.assert_array_equal(out["image_mask"][r, k], good)
            m = out["image_mask"][r, k]
            seen["BAD"] += int((bits & 1 > 0).sum())
            seen["SAT"] += int((bits & 2 > 0).sum())
            seen["NO_DATA"] += int((bits & 256 > 0).sum())
            seen["DETECTED good"] += int((m & (bits & 32 > 0)).sum())
            seen["CR good"] += int((m & (bits & 8 > 0)).sum())
    # The sample's artefacts do reach the stamps, so the rules above were exercised.
    assert all(v > 0 for v in seen.values()), seen


def test_ivar_and_mask_rules_on_planted_values(raw_copy, hsc):
    cat = hsc.read_catalog(raw_copy)
    row = cat[0]
    path = hsc.calexp_path(raw_copy, "r", row["tract"], row["patch"])
    with fits.open(path, mode="update") as hdul:
        from astropy.wcs import WCS
        x, y = hsc.nearest_pixel(WCS(hdul["IMAGE"].header), row["ra"], row["dec"])
        var, mask = hdul["VARIANCE"].data, hdul["MASK"].data
        var[y + 10, x + 10] = 0.0
        var[y + 11, x + 10] = -2.0
        var[y + 12, x + 10] = np.nan
        var[y + 13, x + 10] = np.inf
        var[y + 14, x + 10] = 0.25
        mask[y - 10, x - 10:x + 2] = 0
        for j, bit in enumerate((0, 1, 8, 2, 3, 4, 5, 7, 12, 13, 14)):
            mask[y - 10, x - 10 + j] = 1 << bit
        hdul.flush()
    out, _ = hsc.convert_all(raw_copy)
    r = int(np.flatnonzero(out["object_id"] == row["object_id"])[0])
    ivar = out["image_ivar"][r, 1]
    assert list(ivar[C + 10:C + 15, C + 10]) == [0.0, 0.0, 0.0, 0.0, 4.0]
    good = out["image_mask"][r, 1, C - 10, C - 10:C + 2]
    # bits 0 (BAD), 1 (SAT), 8 (NO_DATA) make a pixel bad; INTRP, CR, EDGE, DETECTED, ... do not
    assert list(good) == [False, False, False] + [True] * 8 + [True]


# ---- PSF ------------------------------------------------------------------------------------
def test_psf_fwhm_from_known_moments():
    got = psf_fwhm(np.array([4.0, 4.0, 1.0, np.nan]), np.array([9.0, 4.0, 1.0, 4.0]),
                   np.array([1.0, 0.0, 2.0, 0.0]))
    assert got[0] == pytest.approx(2.355 * 35**0.25 * 0.168)
    assert got[1] == pytest.approx(2.355 * 2.0 * 0.168)  # round PSF, sigma 2 px
    assert np.isnan(got[2]) and np.isnan(got[3])  # non-positive determinant, missing moment


def test_psf_fwhm_column_uses_each_objects_moments(raw_copy, hsc):
    cat = hsc.read_catalog(raw_copy)
    cat["r_sdssshape_psf_shape11"] = np.float32(4.0)
    cat["r_sdssshape_psf_shape22"] = np.float32(9.0)
    cat["r_sdssshape_psf_shape12"] = np.float32(1.0)
    cat.write(hsc.catalog_path(raw_copy), overwrite=True)
    out, _ = hsc.convert_all(raw_copy)
    np.testing.assert_allclose(out["image_psf_fwhm"][:, 1], 2.355 * 35**0.25 * 0.168, rtol=1e-6)
    rows = {oid: i for i, oid in enumerate(cat["object_id"])}
    idx = [rows[o] for o in out["object_id"]]
    for k, b in enumerate(BANDS):
        if b == "r":
            continue
        m11, m22, m12 = (np.asarray(cat[f"{b}_sdssshape_psf_shape{s}"][idx], float)
                         for s in ("11", "22", "12"))
        expected = 2.355 * (m11 * m22 - m12**2) ** 0.25 * 0.168
        np.testing.assert_allclose(out["image_psf_fwhm"][:, k], expected, rtol=1e-6)


def test_band_scale_and_extinction_columns(noisy_raw, hsc):
    out, _ = hsc.convert_all(noisy_raw)
    cat = hsc.read_catalog(noisy_raw)
    rows = {oid: i for i, oid in enumerate(cat["object_id"])}
    idx = [rows[o] for o in out["object_id"]]
    assert out["image_band"].tolist()[0] == [b"hsc-g", b"hsc-r", b"hsc-i", b"hsc-z", b"hsc-y"]
    np.testing.assert_allclose(out["image_scale"], 0.168, rtol=1e-6)
    for k, b in enumerate(BANDS):
        np.testing.assert_array_equal(out["image_extinction"][:, k], cat[f"a_{b}"][idx])
        # native catalog columns are carried under their own names
        np.testing.assert_array_equal(out[f"{b}_cmodel_mag"], cat[f"{b}_cmodel_mag"][idx])


# ---- edges ----------------------------------------------------------------------------------
def test_edge_objects_keep_their_centre_and_mask_the_outside(noiseless_raw, hsc):
    out, _ = hsc.convert_all(noiseless_raw)
    planes = _planes_cache(hsc)
    n_edge = 0
    for r in range(len(out["object_id"])):
        image, _, _, wcs = planes(noiseless_raw, "i", out["tract"][r], out["patch"][r])
        x, y = hsc.nearest_pixel(wcs, out["ra"][r], out["dec"][r])
        h, w = image.shape
        cols = np.arange(STAMP) + x - C  # image column of each stamp column
        rows = np.arange(STAMP) + y - C
        outside = ~(((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :])
        if not outside.any():
            continue
        n_edge += 1
        for k in range(5):
            assert out["image_array"][r, k, C, C] != 0  # centre kept, object not shifted
            assert not out["image_mask"][r, k][outside].any()
            assert (out["image_ivar"][r, k][outside] == 0).all()
            assert (out["image_array"][r, k][outside] == 0).all()
        inside_vals = out["image_array"][r, 2][~outside]
        expected = np.nan_to_num(hsc.padded_cut(image, x, y, 0), nan=0.0)  # NO_DATA holes -> 0
        np.testing.assert_array_equal(inside_vals, expected[~outside])
    assert n_edge >= 3


def test_object_two_pixels_from_the_left_edge(raw_copy, hsc):
    cat = hsc.read_catalog(raw_copy)
    image, _, _, wcs = hsc.raw_planes(hsc.calexp_path(raw_copy, "g", cat["tract"][0], cat["patch"][0]))
    ra, dec = wcs.pixel_to_world_values(2.2, image.shape[0] / 2)
    cat["ra"][0], cat["dec"][0] = ra, dec
    cat.write(hsc.catalog_path(raw_copy), overwrite=True)
    out, ctx = hsc.convert_all(raw_copy)
    r = int(np.flatnonzero(out["object_id"] == cat["object_id"][0])[0])
    # Stamp column j shows image column 2 - 80 + j: columns 0..77 lie outside the image.
    assert not out["image_mask"][r][:, :, :78].any()
    assert (out["image_ivar"][r][:, :, :78] == 0).all()
    assert out["image_mask"][r][:, :, 78:].mean() > 0.9
    expected = np.nan_to_num(hsc.padded_cut(image, 2, image.shape[0] // 2, 0), nan=0.0)
    np.testing.assert_array_equal(out["image_array"][r, 0, :, 78:], expected[:, 78:])


# ---- bad input ------------------------------------------------------------------------------
def _patch_of_first(raw, hsc):
    cat = hsc.read_catalog(raw)
    t, p = cat["tract"][0], cat["patch"][0]
    members = cat["object_id"][(cat["tract"] == t) & (cat["patch"] == p)]
    return t, p, set(members.tolist()), cat


def test_missing_band_is_fully_masked_with_a_warning(raw_copy, hsc):
    t, p, members, cat = _patch_of_first(raw_copy, hsc)
    before, _ = hsc.convert_all(raw_copy)
    hsc.calexp_path(raw_copy, "z", t, p).unlink()
    out, ctx = hsc.convert_all(raw_copy)
    np.testing.assert_array_equal(out["object_id"], before["object_id"])
    hit = np.isin(out["object_id"], list(members))
    assert hit.sum() == len(members)
    assert not out["image_mask"][hit, 3].any()
    assert (out["image_ivar"][hit, 3] == 0).all() and (out["image_array"][hit, 3] == 0).all()
    # everything else is as before: the other bands, and z of the other patches
    for name in ("image_array", "image_ivar", "image_mask"):
        np.testing.assert_array_equal(out[name][:, [0, 1, 2, 4]], before[name][:, [0, 1, 2, 4]])
        np.testing.assert_array_equal(out[name][~hit, 3], before[name][~hit, 3])
    assert before["image_mask"][hit, 3].any()
    assert any("HSC-Z" in w for w in ctx.warnings)


def test_missing_band_skips_objects_under_require_all_bands(raw_copy, hsc):
    t, p, members, cat = _patch_of_first(raw_copy, hsc)
    hsc.calexp_path(raw_copy, "z", t, p).unlink()
    out, ctx = hsc.convert_all(raw_copy, require_all_bands=True)
    assert set(out["object_id"].tolist()) == set(cat["object_id"].tolist()) - members
    assert {int(s.object) for s in ctx.skipped} == members
    assert all("HSC-Z" in s.message for s in ctx.skipped)
    assert not any("masked" in w for w in ctx.warnings)


def test_patch_without_any_calexp_lists_its_objects(raw_copy, hsc):
    t, p, members, cat = _patch_of_first(raw_copy, hsc)
    for band in BANDS:
        hsc.calexp_path(raw_copy, band, t, p).unlink()
    out, ctx = hsc.convert_all(raw_copy)
    assert set(out["object_id"].tolist()) == set(cat["object_id"].tolist()) - members
    assert {int(s.object) for s in ctx.skipped} == members
    assert all("no calexp" in s.message for s in ctx.skipped)


def test_object_outside_its_patch_image_is_reported(raw_copy, hsc):
    cat = hsc.read_catalog(raw_copy)
    cat["ra"][3] += 0.3
    cat.write(hsc.catalog_path(raw_copy), overwrite=True)
    out, ctx = hsc.convert_all(raw_copy)
    assert cat["object_id"][3] not in out["object_id"]
    assert len(out["object_id"]) == len(cat) - 1
    (skip,) = ctx.skipped
    assert skip.object == str(cat["object_id"][3])
    assert skip.file.endswith(".fits") and "outside" in skip.message


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_calexp_raises_naming_the_file(raw_copy, damage, hsc):
    from mmu_core.errors import InputError
    t, p, _, _ = _patch_of_first(raw_copy, hsc)
    path = hsc.calexp_path(raw_copy, "i", t, p)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a fits file" * 99)
    with pytest.raises(InputError) as err:
        hsc.convert_all(raw_copy)
    assert err.value.file == str(path)
    assert str(path) in str(err.value)


def test_corrupt_calexp_with_skip_bad_is_listed_and_masked(raw_copy, hsc):
    t, p, members, _ = _patch_of_first(raw_copy, hsc)
    path = hsc.calexp_path(raw_copy, "i", t, p)
    path.write_bytes(path.read_bytes()[:5000])
    out, ctx = hsc.convert_all(raw_copy, skip_bad=True)
    assert [s.file for s in ctx.skipped] == [str(path)]
    hit = np.isin(out["object_id"], list(members))
    assert hit.sum() == len(members) and not out["image_mask"][hit, 2].any()


def test_corrupt_catalog_raises_naming_the_file(raw_copy, hsc):
    from mmu_core.errors import InputError
    hsc.catalog_path(raw_copy).write_bytes(b"SIMPLE  =    garbage")
    with pytest.raises(InputError) as err:
        hsc.convert_all(raw_copy)
    assert err.value.file == str(hsc.catalog_path(raw_copy))


def test_duplicate_catalog_rows_are_kept_once(raw_copy, hsc):
    cat = hsc.read_catalog(raw_copy)
    from astropy.table import vstack
    vstack([cat, cat[:2]]).write(hsc.catalog_path(raw_copy), overwrite=True)
    out, ctx = hsc.convert_all(raw_copy)
    assert len(out["object_id"]) == len(set(out["object_id"].tolist())) == len(cat)
    assert any("twice" in w for w in ctx.warnings)


# ---- catalogs, configs, layouts, options ----------------------------------------------------
def test_configs_apply_the_i_band_cut(noisy_raw, hsc):
    cat = hsc.read_catalog(noisy_raw)
    bright = set(cat["object_id"][cat["i_cmodel_mag"] < 22.5].tolist())
    assert 0 < len(bright) < len(cat)  # the sample has objects on both sides of the cut
    dud, _ = hsc.convert_all(noisy_raw, config="pdr3_dud_22.5")
    wide, _ = hsc.convert_all(noisy_raw, config="pdr3_wide")
    assert set(dud["object_id"].tolist()) == bright
    assert set(wide["object_id"].tolist()) == set(cat["object_id"].tolist())


def test_csv_catalog_gives_the_same_rows_as_fits(tmp_path, noisy_raw, hsc):
    import shutil
    raw = tmp_path / "raw"
    shutil.copytree(noisy_raw, raw)
    from_fits, _ = hsc.convert_all(noisy_raw)  # FITS preferred when both are present
    (raw / "pdr3_dud_22.5.fits").unlink()
    from_csv, _ = hsc.convert_all(raw)
    assert set(from_csv) == set(from_fits)
    for name in from_fits:
        a, b = from_fits[name], from_csv[name]
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=1e-7, err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)


def test_csv_reader_handles_archive_conventions(tmp_path):
    from mmu_hsc.catalogs import read_catalog as read
    path = tmp_path / "q.csv"
    path.write_text("# object_id,ra,dec,tract,patch,g_cmodel_mag,flag\n"
                    "1,150.1,2.1,9813,305,21.5,t\n2,150.2,2.2,9813,305,,f\n")
    cols = read(path)
    assert cols["object_id"].dtype == np.int64 and cols["object_id"].tolist() == [1, 2]
    assert cols["g_cmodel_mag"][0] == 21.5 and np.isnan(cols["g_cmodel_mag"][1])
    assert cols["flag"].tolist() == [True, False]
    (tmp_path / "plain.csv").write_text("object_id,ra,dec,tract,patch\n5,1.0,2.0,3,4\n")
    assert read(tmp_path / "plain.csv")["patch"].tolist() == [4]
    (tmp_path / "bad.csv").write_text("object_id,ra,dec\n5,1.0,2.0\n")
    from mmu_core.errors import InputError
    with pytest.raises(InputError, match="tract"):
        read(tmp_path / "bad.csv")


def test_units_are_patches(noisy_raw, hsc):
    import mmu_hsc.hooks
    from mmu_core import testing
    units = testing.plugin_registry(mmu_hsc.hooks).discover("hsc", "pdr3_wide", noisy_raw, {})
    cat = hsc.read_catalog(noisy_raw)
    expected = {f"{t}-{p // 100},{p % 100}": int(((cat["tract"] == t) & (cat["patch"] == p)).sum())
                for t, p in set(zip(cat["tract"].tolist(), cat["patch"].tolist(), strict=True))}
    assert {u.key: u.meta["n_objects"] for u in units} == expected
    for u in units:
        assert all(f"-{u.meta['patch']}.fits" in f for f in u.files if "calexp" in f)
        assert len([f for f in u.files if "calexp" in f]) == 5


def test_flat_layout(tmp_path, hsc):
    raw = hsc.write_sample(tmp_path / "flat", n=8, seed=2, patch_size=300, layout="flat",
                           catalog_format="csv")
    assert not [p for p in raw.iterdir() if p.is_dir()]
    out, ctx = hsc.convert_all(raw)
    assert len(out["object_id"]) == 8 and not ctx.skipped and not ctx.warnings


def test_stamp_size_option(noisy_raw, hsc):
    small, _ = hsc.convert_all(noisy_raw, stamp_size=64)
    full, _ = hsc.convert_all(noisy_raw)
    assert small["image_array"].shape == (len(full["object_id"]), 5, 64, 64)
    np.testing.assert_array_equal(small["image_array"], full["image_array"][:, :, 48:112, 48:112])


def test_catalog_from_table_without_patch_integers(raw_copy, hsc):
    """A catalog saved with patch as the 'x,y' string still finds its calexps."""
    cat = hsc.read_catalog(raw_copy)
    labels = [f"{p // 100},{p % 100}" for p in cat["patch"]]
    cat.replace_column("patch", np.array(labels))
    Table(cat).write(hsc.catalog_path(raw_copy), overwrite=True)
    out, ctx = hsc.convert_all(raw_copy)
    assert len(out["object_id"]) == len(cat) and not ctx.skipped
