"""Synthetic DESI-like spectra: continuum and lines at a redshift, seen through the cameras.

Used by the sample writer so previews look like DESI spectra: galaxies (red, or star-forming
with [OII], Hβ, [OIII], Hα, [NII], [SII]), quasars (power law, broad lines, Lyα forest) and
stars (black body with Balmer, Ca and Na absorption). Each camera applies a resolution matrix
of Gaussian kernels whose width varies with wavelength and fiber (stored as DESI's 11
diagonals), then adds noise from a throughput curve, sky lines and the exposure time.
"""

from __future__ import annotations

import numpy as np

from mmu_desi import datamodel as dm

NDIAG = 11

# Rest-frame vacuum wavelengths (Å).
GALAXY_EMISSION = {
    "OII_3726": 3727.09, "OII_3729": 3729.88, "HDELTA": 4102.89, "HGAMMA": 4341.69,
    "HBETA": 4862.68, "OIII_4959": 4960.30, "OIII_5007": 5008.24, "NII_6548": 6549.86,
    "HALPHA": 6564.61, "NII_6583": 6585.27, "SII_6716": 6718.29, "SII_6731": 6732.67,
}
# relative strengths for a star-forming galaxy, [OII] doublet total = 1
EMISSION_RATIOS = {
    "OII_3726": 0.45, "OII_3729": 0.55, "HDELTA": 0.08, "HGAMMA": 0.15, "HBETA": 0.35,
    "OIII_4959": 0.17, "OIII_5007": 0.5, "NII_6548": 0.12, "HALPHA": 1.0, "NII_6583": 0.35,
    "SII_6716": 0.18, "SII_6731": 0.13,
}
ABSORPTION = {"CAII_K": 3934.78, "CAII_H": 3969.59, "G_BAND": 4305.0, "MGB": 5176.7,
              "NAD": 5894.0}
QSO_BROAD = {"LYA": (1215.67, 1.0), "CIV": (1549.06, 0.35), "CIII": (1908.73, 0.18),
             "MGII": (2798.75, 0.25), "HBETA": (4862.68, 0.12), "HALPHA": (6564.61, 0.45)}
STAR_ABSORPTION = {"HALPHA": 6564.61, "HBETA": 4862.68, "HGAMMA": 4341.69, "HDELTA": 4102.89,
                   "CAII_K": 3934.78, "CAII_H": 3969.59, "NAD_1": 5891.58, "NAD_2": 5897.56,
                   "MGB": 5176.7}

# Observed-frame flux density at 6200 Å of 1 nanomaggy, in 1e-17 erg/s/cm2/Å:
# 3.631e-29 erg/s/cm2/Hz * c / λ²
NANOMAGGY_AT_6200 = 3.631e-29 * 2.998e18 / 6200.0**2 / 1e-17


def _gauss(x: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def model_spectra(wave: np.ndarray, spectype: np.ndarray, z: np.ndarray, flux_r: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Noise-free flux (1e-17 erg/s/cm2/Å) of each object on ``wave`` (observed Å)."""
    n = len(z)
    out = np.zeros((n, len(wave)))
    w = wave[None, :]
    for kind, fn in (("GALAXY", _galaxy), ("QSO", _qso), ("STAR", _star)):
        sel = np.flatnonzero(spectype == kind)
        if len(sel):
            out[sel] = fn(w, z[sel, None], rng, len(sel))
    # normalise to the r-band flux: continuum near 6200 Å observed
    near = np.abs(wave - 6200.0) < 100.0
    if near.any():
        level = np.median(out[:, near], axis=1)
        level = np.where(level > 0, level, 1.0)
        out *= (flux_r * NANOMAGGY_AT_6200 / level)[:, None]
    return out


def _galaxy(w: np.ndarray, z: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    rest = w / (1 + z)
    red = rng.random((n, 1)) < 0.4  # passive, LRG-like
    slope = np.where(red, 0.6, -0.6) + 0.2 * rng.standard_normal((n, 1))
    cont = (rest / 5500.0) ** slope
    brk = np.where(red, 0.55, 0.2)  # 4000 Å break depth
    cont *= 1 - brk / (1 + np.exp((rest - 4000.0) / 40.0))
    for lam in ABSORPTION.values():
        cont *= 1 - np.where(red, 0.25, 0.08) * _gauss(rest, lam, 6.0)
    # emission: [OII] doublet total flux relative to the continuum level at 3730 Å
    strength = np.where(red, 2.0, 40.0) * rng.lognormal(0.0, 0.5, (n, 1))
    sigma_rest = 1.2 * rng.uniform(0.7, 1.5, (n, 1))  # ~100 km/s
    lines = np.zeros_like(cont)
    for name, lam in GALAXY_EMISSION.items():
        amp = strength * EMISSION_RATIOS[name] / (np.sqrt(2 * np.pi) * sigma_rest)
        lines += amp * _gauss(rest, lam, sigma_rest)
    cont_3730 = (3730.0 / 5500.0) ** slope * (1 - brk)
    return cont + lines * cont_3730


def _qso(w: np.ndarray, z: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    rest = w / (1 + z)
    cont = (rest / 3000.0) ** (-1.5 + 0.3 * rng.standard_normal((n, 1)))
    lines = np.zeros_like(cont)
    for lam, amp in QSO_BROAD.values():
        sig = lam * rng.uniform(1500, 2500, (n, 1)) / 2.998e5
        lines += amp * 30.0 * _gauss(rest, lam, sig) * (lam / 3000.0) ** -1.5
    spec = cont + lines
    # Lyman-alpha forest: random absorption blueward of Lyα, deeper with redshift
    forest = rest < 1215.67
    tau = 0.2 * (w / 1215.67) ** 3.7 / 10.0 * rng.exponential(1.0, spec.shape)
    spec = np.where(forest, spec * np.exp(-tau), spec)
    return spec


def _star(w: np.ndarray, z: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    rest = w / (1 + z)
    temp = rng.uniform(3500.0, 9000.0, (n, 1))
    x = 1.4388e8 / (rest * temp)  # hc/(λ k T) with λ in Å
    bb = 1.0 / (rest**5 * np.expm1(np.minimum(x, 700.0)))
    bb /= bb.max(axis=1, keepdims=True)
    depth = np.clip((temp - 4000.0) / 8000.0, 0.05, 0.6)
    for name, lam in STAR_ABSORPTION.items():
        d = depth if name.startswith("H") else 0.6 - depth
        bb *= 1 - d * _gauss(rest, lam, 4.0 if name.startswith("H") else 2.0)
    return bb


def resolution_sigma(camera: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, L) LSF sigma in pixels: slow trend across the camera, a few % per fiber."""
    lo, hi = {"B": (1.10, 0.90), "R": (1.02, 0.86), "Z": (0.98, 0.88)}[camera]
    trend = np.linspace(lo, hi, dm.CAMERA_LENGTHS[camera])
    return trend[None, :] * rng.normal(1.0, 0.04, (n, 1))


def resolution_data(sigma: np.ndarray, ndiag: int = NDIAG) -> np.ndarray:
    """DESI resolution diagonals (n, ndiag, L) of unit-sum Gaussian kernels of width ``sigma``.

    ``data[:, k, j]`` is the response at output pixel ``j + k - ndiag//2`` to input pixel ``j``.
    """
    d = (np.arange(ndiag) - ndiag // 2).astype(np.float32)
    kern = np.exp(-0.5 * (d[None, :, None] / sigma.astype(np.float32)[:, None, :]) ** 2)
    kern /= kern.sum(axis=1, keepdims=True)
    return kern


def apply_resolution(data: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Convolve (n, L) spectra with the resolution diagonals (n, ndiag, L)."""
    n, ndiag, length = data.shape
    out = np.zeros((n, length))
    for k in range(ndiag):
        shift = k - ndiag // 2
        contrib = data[:, k, :] * true
        if shift >= 0:
            out[:, shift:] += contrib[:, : length - shift]
        else:
            out[:, :shift] += contrib[:, -shift:]
    return out


_SKY_RNG = np.random.default_rng(20240607)  # fixed: the same sky lines in every sample
SKY_LINES = np.concatenate([[5578.9, 5891.6, 5897.6, 6302.0, 6365.5],
                            np.sort(_SKY_RNG.uniform(6800.0, 9800.0, 80))])
SKY_AMPS = np.concatenate([[40.0, 8.0, 8.0, 20.0, 7.0], _SKY_RNG.uniform(5.0, 60.0, 80)])


def noise_sigma(camera: str, wave: np.ndarray, exptime: np.ndarray) -> np.ndarray:
    """(n, L) flux noise: throughput falls at the camera edges, sky lines add variance."""
    lo, hi = dm.CAMERA_RANGES[camera]
    x = (wave - lo) / (hi - lo)
    throughput = 0.15 + 0.85 * np.sin(np.pi * np.clip(x, 0.0, 1.0)) ** 0.35
    sky = 1.0 + (SKY_AMPS[None, :] * _gauss(wave[:, None], SKY_LINES[None, :], 1.0)).sum(axis=1)
    base = 0.6 * np.sqrt(1000.0 / np.maximum(exptime, 1.0))
    return base[:, None] * np.sqrt(sky)[None, :] / throughput[None, :]
