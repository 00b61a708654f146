"""Camera merge: flux and ivar against values computed directly from the FITS arrays."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from desi_fitsmaker import (
    CAMERA_OFFSETS,
    MERGED,
    fibermap_table,
    random_cameras,
    read_cameras,
    run_convert,
    write_coadd,
)

from mmu_core.sampling import random_in_cone
from mmu_desi import samples


def expected_merge(fits_arrays: dict) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: for every merged pixel, the cameras whose wavelength equals it,
    weight = ivar where mask == 0 and ivar > 0, flux = weighted mean, ivar = sum of weights."""
    n = len(fits_arrays["targetid"])
    num = np.zeros((n, len(MERGED)))
    den = np.zeros((n, len(MERGED)))
    for cam in "BRZ":
        a = fits_arrays[cam]
        idx = np.searchsorted(MERGED, a["wavelength"] - 1e-6)
        assert np.allclose(MERGED[idx], a["wavelength"])
        w = np.where((a["mask"] == 0) & (a["ivar"] > 0), a["ivar"].astype(float), 0.0)
        num[:, idx] += w * np.where(w > 0, a["flux"], 0.0)
        den[:, idx] += w
    flux = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return flux, den


def overlap_masks() -> dict[str, np.ndarray]:
    b = (MERGED >= 5760.0 - 1e-6) & (MERGED <= 5800.0 + 1e-6)
    r = (MERGED >= 7520.0 - 1e-6) & (MERGED <= 7620.0 + 1e-6)
    return {"b_only": MERGED < 5760.0 - 1e-6, "br_overlap": b, "r_only": (MERGED > 5800.1) & (MERGED < 7519.9),
            "rz_overlap": r, "z_only": MERGED > 7620.1}


@pytest.fixture
def handmade(tmp_path):
    rng = np.random.default_rng(3)
    n = 12
    tid = 1000 + np.arange(n)
    path = write_coadd(tmp_path / "raw" / "coadd-main-dark-100.fits",
                       fibermap_table(tid, rng.uniform(150, 151, n), rng.uniform(2, 3, n)),
                       random_cameras(rng, n))
    return tmp_path / "raw", path


def test_merged_flux_and_ivar_match_fits_arrays_inside_and_outside_overlaps(handmade):
    raw, path = handmade
    out, _ = run_convert(raw)
    ref = read_cameras(path)
    flux, ivar = expected_merge(ref)
    order = np.argsort(ref["targetid"])
    assert np.array_equal(np.sort(out["object_id"]), ref["targetid"][order])
    got = np.argsort(out["object_id"])
    for name, sel in overlap_masks().items():
        assert sel.any(), name
        np.testing.assert_allclose(out["spectrum_flux"][got][:, sel], flux[order][:, sel],
                                   rtol=2e-6, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(out["spectrum_ivar"][got][:, sel], ivar[order][:, sel],
                                   rtol=2e-6, err_msg=name)
    assert out["spectrum_flux"].shape == (12, 7781)
    assert out["spectrum_flux"].dtype == np.float32 and out["spectrum_ivar"].dtype == np.float32


def test_overlap_pixel_is_ivar_weighted_mean_of_both_cameras(handmade):
    raw, path = handmade
    out, _ = run_convert(raw)
    ref = read_cameras(path)
    row = int(np.flatnonzero(out["object_id"] == ref["targetid"][0])[0])
    b, r = ref["B"], ref["R"]
    # first merged pixel at 5760 Å: B pixel 2700, R pixel 0
    for j in range(2700, 2751):
        jb, jr = j, j - CAMERA_OFFSETS["R"]
        good_b = b["mask"][0, jb] == 0 and b["ivar"][0, jb] > 0
        good_r = r["mask"][0, jr] == 0 and r["ivar"][0, jr] > 0
        wb = float(b["ivar"][0, jb]) if good_b else 0.0
        wr = float(r["ivar"][0, jr]) if good_r else 0.0
        if wb + wr == 0:
            assert out["spectrum_mask"][row, j] and out["spectrum_ivar"][row, j] == 0
            continue
        want = (wb * float(b["flux"][0, jb]) + wr * float(r["flux"][0, jr])) / (wb + wr)
        assert out["spectrum_flux"][row, j] == pytest.approx(want, rel=1e-5)
        assert out["spectrum_ivar"][row, j] == pytest.approx(wb + wr, rel=1e-6)


def test_masked_and_zero_ivar_pixels_never_contribute(tmp_path):
    rng = np.random.default_rng(5)
    cams = random_cameras(rng, 1)
    cams["B"]["mask"][:] = 0
    cams["R"]["mask"][:] = 0
    cams["B"]["ivar"][:] = 1.0
    cams["R"]["ivar"][:] = 1.0
    # overlap pixel 2710: B masked with a positive ivar and absurd flux -> R alone
    cams["B"]["mask"][0, 2710] = 1
    cams["B"]["flux"][0, 2710] = 1e6
    # overlap pixel 2720: R has zero ivar -> B alone
    cams["R"]["ivar"][0, 20] = 0.0
    cams["R"]["flux"][0, 20] = -1e6
    # overlap pixel 2730: both bad -> no contribution at all
    cams["B"]["mask"][0, 2730] = 2
    cams["R"]["ivar"][0, 30] = 0.0
    # B-only pixel 100: masked -> no contribution
    cams["B"]["mask"][0, 100] = 4
    raw = tmp_path / "raw"
    write_coadd(raw / "coadd-main-dark-7.fits", fibermap_table([11], [10.0], [0.0]), cams)
    out, _ = run_convert(raw)
    f, iv, m = out["spectrum_flux"][0], out["spectrum_ivar"][0], out["spectrum_mask"][0]
    assert f[2710] == pytest.approx(np.float32(cams["R"]["flux"][0, 10]))
    assert iv[2710] == 1.0 and not m[2710]
    assert f[2720] == pytest.approx(np.float32(cams["B"]["flux"][0, 2720]))
    assert iv[2720] == 1.0 and not m[2720]
    for j in (2730, 100):
        assert iv[j] == 0 and m[j] and f[j] == 0
    # the mask is exactly "no good contribution"
    assert np.array_equal(m, iv == 0)


def test_sample_coadd_merge_matches_fits_arrays(tmp_path):
    """The sample writer's realistic spectra (edge pixels with ivar 0, cosmic rays) merge the
    same way, checked against the FITS arrays of the written file."""
    rng = np.random.default_rng(8)
    targets = samples.make_targets(rng, *random_in_cone(rng, 6, 150.0, 2.0, 0.1))
    f = samples.write_healpix_coadd(tmp_path / "raw", rng, targets, "main", "dark", 9557, 2, 1)
    out, _ = run_convert(tmp_path / "raw")
    ref = read_cameras(f.path)
    keep = np.isin(ref["targetid"], out["object_id"])
    assert keep.sum() == 6  # sky and bad fibers dropped
    sub = {c: {k: v[keep] for k, v in ref[c].items() if k != "wavelength"} | {"wavelength": ref[c]["wavelength"]}
           for c in "BRZ"}
    sub["targetid"] = ref["targetid"][keep]
    flux, ivar = expected_merge(sub)
    pos = {t: i for i, t in enumerate(out["object_id"])}
    rows = [pos[t] for t in sub["targetid"]]
    np.testing.assert_allclose(out["spectrum_flux"][rows], flux, rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(out["spectrum_ivar"][rows], ivar, rtol=2e-6)
    assert np.array_equal(out["spectrum_mask"][rows], ivar == 0)
    # the outermost pixels of the merged grid only have B's / Z's zero-ivar edge pixels
    assert out["spectrum_mask"][:, [0, 1, -2, -1]].all()
    np.testing.assert_array_equal(out["spectrum_lambda"][0], MERGED.astype(np.float32))


def test_tile_compressed_masks_merge_like_plain_ones(tmp_path):
    """Some DESI productions store the _MASK HDUs tile-compressed (a BINTABLE on disk)."""
    rng = np.random.default_rng(9)
    cams = random_cameras(rng, 3)
    fm = fibermap_table([1, 2, 3], [10.0, 10.1, 10.2], [0.0, 0.1, 0.2])
    plain = write_coadd(tmp_path / "plain" / "coadd-main-dark-3.fits", fm, cams)
    packed = tmp_path / "packed" / "coadd-main-dark-3.fits"
    packed.parent.mkdir()
    with fits.open(plain) as h:
        hdus = [fits.CompImageHDU(np.asarray(x.data).astype(np.int32), name=x.name)
                if x.name.endswith("_MASK") else x.copy() for x in h]
        fits.HDUList(hdus).writeto(packed)
    with fits.open(packed) as h:
        assert isinstance(h["B_MASK"], fits.CompImageHDU)
    a, _ = run_convert(tmp_path / "plain")
    b, _ = run_convert(tmp_path / "packed")
    assert a["spectrum_mask"].any()
    for col in ("spectrum_flux", "spectrum_ivar", "spectrum_mask", "spectrum_lsf_sigma"):
        np.testing.assert_array_equal(a[col], b[col])
