"""Small drawing helpers the modalities' previews share (numpy only; each ``preview`` imports
matplotlib itself, and :mod:`mmu_core.previews` chooses the backend)."""

from __future__ import annotations

import numpy as np


def asinh_stretch(x: np.ndarray, scale: float) -> np.ndarray:
    return np.arcsinh(x / scale) / np.arcsinh(1 / scale)


def composite(bands: np.ndarray) -> np.ndarray:
    """(B, H, W) -> (H, W, 3) in [0, 1]; reddest band in red (i, r, g for g r i z y)."""
    if bands.dtype == np.uint8:
        return np.moveaxis(bands[:3], 0, -1)
    pick = [min(3, len(bands) - 1), min(2, len(bands) - 1) if len(bands) > 2 else 0, 0]
    if len(bands) >= 4:
        pick = [3, 2, 1]
    rgb = np.stack([bands[j] for j in pick], axis=-1).astype(float)
    rgb = np.nan_to_num(rgb)
    hi = np.percentile(rgb, 99.5) or 1.0
    return np.clip(asinh_stretch(np.clip(rgb, 0, None) / hi, 0.1), 0, 1)


def sigma_from_ivar(ivar: np.ndarray) -> np.ndarray:
    """1-sigma errors from inverse variances; NaN where the ivar is 0 (no information)."""
    return np.where(ivar > 0, 1 / np.sqrt(np.where(ivar > 0, ivar, 1)), np.nan)


def smoothed(flux: np.ndarray, weight: np.ndarray, width: int = 15) -> np.ndarray:
    """Inverse-variance weighted running mean, so features show through the noise."""
    kernel = np.ones(width)
    w = np.convolve(weight, kernel, mode="same")
    fw = np.convolve(np.where(weight > 0, flux * weight, 0.0), kernel, mode="same")
    return np.where(w > 0, fw / np.where(w > 0, w, 1), np.nan)
