"""``mmu sample hsc``: the synthetic files follow the archive layout and are self-consistent."""

from __future__ import annotations

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

BANDS = "grizy"


FORMATS_COLUMNS = (
    ["object_id", "ra", "dec", "tract", "patch"]
    + [f"a_{b}" for b in BANDS]
    + [f"{b}_{c}" for b in BANDS for c in (
        "extendedness_value", "cmodel_mag", "cmodel_magerr", "cmodel_flux", "cmodel_fluxerr",
        "sdssshape_psf_shape11", "sdssshape_psf_shape22", "sdssshape_psf_shape12",
        "sdssshape_shape11", "sdssshape_shape22", "sdssshape_shape12")]
)


def test_calexps_follow_the_archive_layout(noisy_raw, hsc):
    cat = hsc.read_catalog(noisy_raw)
    patches = set(zip(cat["tract"].tolist(), cat["patch"].tolist(), strict=True))
    assert len(patches) == 2
    for tract, patch in patches:
        for band in BANDS:
            path = hsc.calexp_path(noisy_raw, band, tract, patch)
            with fits.open(path) as hdul:
                assert [h.name for h in hdul] == ["PRIMARY", "IMAGE", "MASK", "VARIANCE"]
                assert hdul["IMAGE"].data.dtype.str == ">f4"
                assert hdul["MASK"].data.dtype.str == ">i4"
                assert hdul["VARIANCE"].data.dtype.str == ">f4"
                mask_header = hdul["MASK"].header
                assert (mask_header["MP_BAD"], mask_header["MP_SAT"], mask_header["MP_NO_DATA"]) \
                    == (0, 1, 8)
                assert hdul[0].header["FILTER"] == f"HSC-{band.upper()}"
                wcs = WCS(hdul["IMAGE"].header)
                assert wcs.wcs.ctype[0] == "RA---TAN" and wcs.wcs.ctype[1] == "DEC--TAN"
                np.testing.assert_allclose(proj_plane_pixel_scales(wcs) * 3600, 0.168, rtol=1e-9)


def test_catalog_has_the_query_columns(noisy_raw, hsc):
    fits_cat = hsc.read_catalog(noisy_raw)
    assert sorted(fits_cat.colnames) == sorted(FORMATS_COLUMNS)
    assert fits_cat["object_id"].dtype.str == ">i8"  # FITS K column
    assert len(set(fits_cat["object_id"].tolist())) == len(fits_cat)
    lines = (noisy_raw / "pdr3_dud_22.5.csv").read_text().splitlines()
    assert lines[0] == "# " + ",".join(fits_cat.colnames)
    csv_cat = Table.read([lines[0][2:]] + lines[1:], format="ascii.csv")
    for name in FORMATS_COLUMNS:
        np.testing.assert_allclose(csv_cat[name], fits_cat[name], rtol=1e-7, err_msg=name)


def test_sample_is_reproducible_and_inside_the_cone(tmp_path, hsc):
    opts = dict(n=30, ra=35.7, dec=-4.8, radius=0.02, patch_size=300, objects_per_patch=10)
    a = hsc.write_sample(tmp_path / "a", seed=5, **opts)
    b = hsc.write_sample(tmp_path / "b", seed=5, **opts)
    c = hsc.write_sample(tmp_path / "c", seed=6, **opts)
    ca, cb, cc = hsc.read_catalog(a), hsc.read_catalog(b), hsc.read_catalog(c)
    assert all((ca[n] == cb[n]).all() for n in ca.colnames)
    assert not np.array_equal(ca["ra"], cc["ra"])
    t, p = ca["tract"][0], ca["patch"][0]
    ia, ib = hsc.raw_planes(hsc.calexp_path(a, "g", t, p))[0], hsc.raw_planes(hsc.calexp_path(b, "g", t, p))[0]
    np.testing.assert_array_equal(ia, ib)
    sep = SkyCoord(ca["ra"], ca["dec"], unit="deg").separation(SkyCoord(35.7, -4.8, unit="deg"))
    assert (sep.deg < 0.02).all()


def test_noise_follows_the_variance_plane(noisy_raw, hsc):
    cat = hsc.read_catalog(noisy_raw)
    for band in ("g", "y"):
        image, mask, var, _ = hsc.raw_planes(hsc.calexp_path(noisy_raw, band, cat["tract"][0],
                                                     cat["patch"][0]))
        empty = mask == 0  # no source detected, no artefact
        z = image[empty] / np.sqrt(var[empty])
        robust_std = 1.4826 * np.median(np.abs(z - np.median(z)))
        assert 0.95 < robust_std < 1.05, band
        assert abs(np.median(z)) < 0.05, band


def test_star_images_have_the_catalog_psf_moments(noiseless_raw, hsc):
    cat = hsc.read_catalog(noiseless_raw)
    stars = cat[cat["i_extendedness_value"] == 0]
    assert len(stars) >= 2
    for row in stars:
        for band in BANDS:
            image, _, _, wcs = hsc.raw_planes(hsc.calexp_path(noiseless_raw, band, row["tract"],
                                                      row["patch"]))
            x, y = wcs.world_to_pixel_values(row["ra"], row["dec"])
            cx, cy = int(round(float(x))), int(round(float(y)))
            if not (15 <= cx < image.shape[1] - 15 and 15 <= cy < image.shape[0] - 15):
                continue
            box = image[cy - 15:cy + 16, cx - 15:cx + 16].astype(float)
            dy, dx = np.mgrid[cy - 15:cy + 16, cx - 15:cx + 16]
            dx, dy = dx - x, dy - y
            flux = box.sum()
            mxx, myy = (box * dx**2).sum() / flux, (box * dy**2).sum() / flux
            mxy = (box * dx * dy).sum() / flux
            assert np.isclose(mxx, row[f"{band}_sdssshape_psf_shape11"], rtol=0.02)
            assert np.isclose(myy, row[f"{band}_sdssshape_psf_shape22"], rtol=0.02)
            assert np.isclose(mxy, row[f"{band}_sdssshape_psf_shape12"], atol=0.03)


def test_artefacts_are_flagged_and_spare_object_centres(noisy_raw, hsc):
    cat = hsc.read_catalog(noisy_raw)
    for band in BANDS:
        image, mask, var, wcs = hsc.raw_planes(hsc.calexp_path(noisy_raw, band, cat["tract"][0],
                                                       cat["patch"][0]))
        no_data = (mask & (1 << 8)) > 0
        assert no_data.any() and np.isnan(image[no_data]).all()
        assert not np.isfinite(var[no_data]).any()
        assert ((mask & 1) > 0).any() and ((mask & 2) > 0).any()
        same_patch = cat[(cat["tract"] == cat["tract"][0]) & (cat["patch"] == cat["patch"][0])]
        x, y = wcs.world_to_pixel_values(same_patch["ra"], same_patch["dec"])
        centres = mask[np.round(y).astype(int), np.round(x).astype(int)]
        assert ((centres & 0b100000011) == 0).all()


def test_requested_positions_are_the_first_objects(tmp_path, hsc):
    import mmu_hsc.hooks
    from mmu_core import testing
    from mmu_core.models import SampleRequest
    positions = [(150.3, 2.2), (149.75, 1.9), (150.0, 2.0), (150.01, 2.0)]
    registry = testing.plugin_registry(mmu_hsc.hooks)
    raw = tmp_path / "raw"
    result = registry.sample("hsc", SampleRequest(
        out_dir=raw, n=10, seed=1, positions=positions,
        options={"patch_size": 600, "objects_per_patch": 6, "noise": 0.0,
                 "min_separation": 25.0}))
    assert result.n_objects == 10
    cat = hsc.read_catalog(raw)
    np.testing.assert_array_equal(cat["ra"][:4], [p[0] for p in positions])
    np.testing.assert_array_equal(cat["dec"][:4], [p[1] for p in positions])
    out, ctx = hsc.convert_all(raw)
    assert len(out["object_id"]) == 10 and not ctx.skipped
    for r in range(10):  # each object, wherever it was asked for, is drawn at its centre
        stamp = np.where(out["image_mask"][r, 2], out["image_array"][r, 2], -np.inf)
        py, px = np.unravel_index(np.argmax(stamp), stamp.shape)
        assert abs(py - 80) <= 1 and abs(px - 80) <= 1


def test_object_ids_are_unique_across_many_patches(tmp_path, hsc):
    raw = hsc.write_sample(tmp_path / "raw", n=60, seed=2, patch_size=200, objects_per_patch=2,
                           noise=0.0, radius=0.5)
    cat = hsc.read_catalog(raw)
    assert len(set(cat["object_id"].tolist())) == 60
    assert len(set(cat["patch"].tolist())) >= 10 and cat["patch"].max() > 3200  # x >= 32
