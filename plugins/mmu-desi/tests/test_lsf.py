"""LSF sigma per wavelength pixel against resolution matrices made from known Gaussian widths."""

from __future__ import annotations

import numpy as np
import pytest
from desi_fitsmaker import (
    CAMERA_OFFSETS,
    MERGED,
    fibermap_table,
    gaussian_diagonals,
    random_cameras,
    run_convert,
    write_coadd,
)
from scipy.optimize import brentq, curve_fit

from mmu_desi.merge import sigma_from_variance


def known_sigma(cam: str, wave: np.ndarray, n: int = 4) -> np.ndarray:
    """Width in pixels that depends on wavelength (the same in every camera) and fiber."""
    base = 0.7 + 0.9 * (wave - 3600.0) / 6224.0 + 0.15 * np.sin(wave / 300.0)
    return base[None, :] * (1.0 + 0.05 * np.arange(n))[:, None]


def write_with_sigma(tmp_path, sigma_fn, n=4, seed=0):
    rng = np.random.default_rng(seed)
    cams = random_cameras(rng, n, sigma=sigma_fn)
    raw = tmp_path / "raw"
    write_coadd(raw / "coadd-main-dark-5.fits",
                fibermap_table(np.arange(1, n + 1), np.full(n, 30.0), np.full(n, 1.0)), cams)
    out, _ = run_convert(raw)
    order = np.argsort(out["object_id"])
    return {k: v[order] for k, v in out.items()}, cams


def test_lsf_sigma_recovers_known_gaussian_widths_per_pixel(tmp_path):
    out, _ = write_with_sigma(tmp_path, lambda cam, wave: known_sigma(cam, wave))
    truth = known_sigma("any", MERGED)
    lsf = out["spectrum_lsf_sigma"]
    assert lsf.shape == (4, 7781) and lsf.dtype == np.float32
    # everywhere, overlaps included (both cameras share the width there)
    np.testing.assert_allclose(lsf, truth, rtol=2e-4)
    # it varies along the spectrum, not one number per file or fiber
    assert np.ptp(lsf[0]) > 0.8


def test_lsf_sigma_agrees_with_a_gaussian_least_squares_fit(tmp_path):
    """An independent estimator: curve_fit of a Gaussian to the 11 diagonal values."""
    out, cams = write_with_sigma(tmp_path, lambda cam, wave: known_sigma(cam, wave))
    d = np.arange(11) - 5

    def gauss(x, a, s):
        return a * np.exp(-0.5 * (x / s) ** 2)

    for cam, j in (("B", 100), ("R", 1200), ("Z", 2500)):
        kernel = cams[cam]["res"][2, :, j].astype(np.float32).astype(float)
        (_, s), _ = curve_fit(gauss, d, kernel, p0=(0.4, 1.0))
        assert out["spectrum_lsf_sigma"][2, CAMERA_OFFSETS[cam] + j] == pytest.approx(abs(s), rel=1e-3)


def test_wide_kernels_are_not_biased_by_the_11_pixel_window(tmp_path):
    """At sigma 2-2.6 px the window truncates the Gaussian; the width must still come back."""
    out, _ = write_with_sigma(
        tmp_path, lambda cam, wave: np.full((4, len(wave)), 2.0) + 0.6 * (wave - 3600) / 6224)
    truth = 2.0 + 0.6 * (MERGED - 3600) / 6224
    np.testing.assert_allclose(out["spectrum_lsf_sigma"], np.broadcast_to(truth, (4, 7781)),
                               rtol=5e-4)
    # and the plain second moment would have been clearly too small
    d = np.arange(11) - 5
    k = gaussian_diagonals(np.full((1, 1), 2.6))[0, :, 0]
    assert np.sqrt((k * d**2).sum()) < 0.97 * 2.6


def discrete_width(var: float) -> float:
    """Independent inversion: sigma whose Gaussian sampled at -5..5 has second moment ``var``."""
    d = np.arange(11) - 5

    def moment(s: float) -> float:
        k = np.exp(-0.5 * (d / s) ** 2)
        return float((k * d**2).sum() / k.sum()) - var

    return brentq(moment, 0.2, 10.0)


def test_overlap_mixes_the_two_cameras_kernels_with_the_flux_weights(tmp_path):
    widths = {"B": 1.4, "R": 0.9, "Z": 1.2}
    out, cams = write_with_sigma(
        tmp_path, lambda cam, wave: np.full((4, len(wave)), widths[cam]), seed=4)
    d = np.arange(11) - 5
    row = 1
    for j in range(2700, 2751, 7):  # B/R overlap
        jb, jr = j, j - CAMERA_OFFSETS["R"]
        wb = cams["B"]["ivar"][row, jb] * (cams["B"]["mask"][row, jb] == 0)
        wr = cams["R"]["ivar"][row, jr] * (cams["R"]["mask"][row, jr] == 0)
        if wb + wr == 0:
            wb = wr = 1.0  # no good pixel: the kernels count equally
        mix = (wb * cams["B"]["res"][row, :, jb] + wr * cams["R"]["res"][row, :, jr]) / (wb + wr)
        var = float((mix * d**2).sum() / mix.sum())
        assert out["spectrum_lsf_sigma"][row, j] == pytest.approx(discrete_width(var), rel=1e-3)
    # outside the overlaps each camera's own width
    assert out["spectrum_lsf_sigma"][row, 1000] == pytest.approx(1.4, rel=1e-4)
    assert out["spectrum_lsf_sigma"][row, 4000] == pytest.approx(0.9, rel=1e-4)
    assert out["spectrum_lsf_sigma"][row, 7000] == pytest.approx(1.2, rel=1e-4)


def test_zero_resolution_columns_are_interpolated_from_neighbours(tmp_path):
    rng = np.random.default_rng(2)
    cams = random_cameras(rng, 1, sigma=lambda cam, wave: known_sigma(cam, wave, 1))
    cams["B"]["res"][0, :, 500:510] = 0.0  # DESI writes zeros where no exposure had data
    raw = tmp_path / "raw"
    write_coadd(raw / "coadd-main-dark-5.fits", fibermap_table([1], [30.0], [1.0]), cams)
    out, _ = run_convert(raw)
    lsf = out["spectrum_lsf_sigma"][0]
    assert np.isfinite(lsf).all()
    want = np.interp(np.arange(500, 510), [499, 510], [lsf[499], lsf[510]])
    np.testing.assert_allclose(lsf[500:510], want, rtol=1e-6)


def test_sigma_from_variance_inverts_the_sampled_gaussian_moment():
    for s in (0.6, 1.0, 1.7, 3.0):
        d = np.arange(11) - 5
        k = np.exp(-0.5 * (d / s) ** 2)
        assert sigma_from_variance((k * d**2).sum() / k.sum()) == pytest.approx(s, rel=1e-4)
