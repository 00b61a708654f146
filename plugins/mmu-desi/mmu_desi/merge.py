"""Merge the B, R, Z cameras onto the 7781-pixel grid and derive the per-pixel LSF width.

Pure numpy on in-memory arrays, so it is tested directly against values computed from the
FITS arrays.

Flux: inverse-variance weighted mean of the cameras covering a merged pixel (the two overlaps
5760-5800 Å and 7520-7620 Å have two), as desispec's ``coadd_cameras`` does. A camera pixel
contributes only if its mask is 0, its ivar is positive and both flux and ivar are finite. A
merged pixel without any contribution gets flux 0, ivar 0 and mask True.

LSF: DESI's resolution matrix is stored as ``ndiag`` diagonals (``data[k, j]`` is the response
at output pixel ``j + k - ndiag//2`` to input pixel ``j``). Each column is one kernel; its
second central moment, converted to the width of a sampled Gaussian with the same moment over
the same ``ndiag`` offsets, is the LSF sigma in pixels (0.8 Å). Where two cameras overlap
the kernels are mixed with the flux weights, as the merged flux mixes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mmu_desi import datamodel as dm


@dataclass
class CameraChunk:
    """One camera's arrays for a block of rows (native byte order)."""

    offset: int  # index of the camera's first pixel on the merged grid
    flux: np.ndarray  # (n, L) float32
    ivar: np.ndarray  # (n, L) float32
    mask: np.ndarray  # (n, L) bool, True = the camera's mask is non-zero
    resolution: np.ndarray | None  # (n, ndiag, L) float32


@dataclass
class Merged:
    """Merged spectra for a block of rows, in the dtypes of :mod:`mmu_core.schemas.spectrum`."""

    flux: np.ndarray  # (n, 7781) float32
    ivar: np.ndarray  # (n, 7781) float32
    mask: np.ndarray  # (n, 7781) bool, True = bad
    lsf_sigma: np.ndarray  # (n, 7781) float32, pixels


def good_weights(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inverse-variance weights, 0 where a pixel must not contribute (float64)."""
    good = ~mask & np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    return np.where(good, ivar, 0.0).astype(np.float64)


def merge_cameras(cameras: list[CameraChunk], length: int = dm.GRID_LENGTH) -> Merged:
    """Inverse-variance merge of camera chunks onto the merged grid, with LSF sigma."""
    n = cameras[0].flux.shape[0]
    num = np.zeros((n, length))
    den = np.zeros((n, length))
    # LSF moment sums: weighted by the flux weights, and unweighted as a fallback where no
    # camera pixel is good (the LSF of a masked pixel is still defined)
    lsf_w = np.zeros((3, n, length))  # sum w, sum w*m1, sum w*m2
    lsf_u = np.zeros((3, n, length))
    for cam in cameras:
        sl = slice(cam.offset, cam.offset + cam.flux.shape[1])
        w = good_weights(cam.flux, cam.ivar, cam.mask)
        num[:, sl] += w * np.where(w > 0, cam.flux, 0.0)
        den[:, sl] += w
        if cam.resolution is None:
            continue
        m1, m2, valid = kernel_moments(cam.resolution)
        wv = np.where(valid, w, 0.0)
        lsf_w[0, :, sl] += wv
        lsf_w[1, :, sl] += wv * m1
        lsf_w[2, :, sl] += wv * m2
        u = valid.astype(np.float64)
        lsf_u[0, :, sl] += u
        lsf_u[1, :, sl] += u * m1
        lsf_u[2, :, sl] += u * m2
    has = den > 0
    flux = np.divide(num, den, out=np.zeros_like(num), where=has)
    ndiag = next((c.resolution.shape[1] for c in cameras if c.resolution is not None), 11)
    lsf = _combine_lsf(lsf_w, lsf_u, ndiag)
    return Merged(
        flux=flux.astype(np.float32),
        ivar=den.astype(np.float32),
        mask=~has,
        lsf_sigma=lsf.astype(np.float32),
    )


def kernel_moments(resolution: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First and second raw moments (pixels) of each kernel column, and which are usable.

    ``resolution`` is (n, ndiag, L). Negative wings (ringing of the extraction) are clipped:
    they carry no width information and can make the second moment meaningless.
    """
    ndiag = resolution.shape[1]
    disp = (np.arange(ndiag) - ndiag // 2).astype(resolution.dtype)
    kern = np.where(resolution > 0, resolution, 0)  # also drops NaN
    s0 = kern.sum(axis=1, dtype=np.float64)
    valid = np.isfinite(s0) & (s0 > 0)  # an infinite entry makes the kernel unusable
    safe = np.where(valid, s0, 1.0)
    m1 = np.einsum("nkl,k->nl", kern, disp).astype(np.float64) / safe
    m2 = np.einsum("nkl,k->nl", kern, disp**2).astype(np.float64) / safe
    return np.where(valid, m1, 0.0), np.where(valid, m2, 0.0), valid


def _combine_lsf(lsf_w: np.ndarray, lsf_u: np.ndarray, ndiag: int) -> np.ndarray:
    """Mixture variance of the kernels covering each merged pixel -> Gaussian sigma."""
    use_w = lsf_w[0] > 0
    sums = np.where(use_w[None], lsf_w, lsf_u)
    defined = sums[0] > 0
    s0 = np.where(defined, sums[0], 1.0)
    mean = sums[1] / s0
    var = sums[2] / s0 - mean**2
    sigma = np.where(defined, sigma_from_variance(var, ndiag), np.nan)
    return _fill_gaps(sigma)


def _fill_gaps(sigma: np.ndarray) -> np.ndarray:
    """Interpolate a row's sigma across pixels with no usable kernel (all-zero diagonals)."""
    x = np.arange(sigma.shape[1])
    for row in np.flatnonzero(np.isnan(sigma).any(axis=1)):
        ok = ~np.isnan(sigma[row])
        if ok.any():
            sigma[row] = np.interp(x, x[ok], sigma[row, ok])
    return sigma


@lru_cache(maxsize=8)
def _variance_table(ndiag: int) -> tuple[np.ndarray, np.ndarray]:
    """Second moment of a Gaussian sampled at the ``ndiag`` integer offsets, against sigma."""
    sig = np.geomspace(0.05, 50.0, 4000)
    d = np.arange(ndiag) - ndiag // 2
    k = np.exp(-0.5 * (d[None, :] / sig[:, None]) ** 2)
    var = (k * d**2).sum(axis=1) / k.sum(axis=1)
    keep = np.concatenate([[True], np.diff(var) > 0])  # strictly increasing for np.interp
    return var[keep], sig[keep]


def sigma_from_variance(var: np.ndarray, ndiag: int = 11) -> np.ndarray:
    """Sigma (pixels) of the sampled, truncated Gaussian whose second moment is ``var``.

    For wide kernels the ``ndiag`` window truncates the Gaussian, so the raw moment
    underestimates the width; inverting the tabulated moment removes that bias. Values
    beyond the table clamp to its ends.
    """
    table_var, table_sig = _variance_table(int(ndiag))
    return np.interp(np.asarray(var, dtype=np.float64), table_var, table_sig)
