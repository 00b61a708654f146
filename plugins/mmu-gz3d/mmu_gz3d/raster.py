"""Rasterise volunteer marks the way the GZ3D production code built its masks.

Pixel ``[y, x]`` of a mask is tested at the point ``(x, y)`` in the cutout's click
coordinates (0-based column, row). Spiral and bar masks count, per pixel, the drawn polygons
that contain it; centre and star masks add, for every cluster of clicks, its click count over
the cluster's 2-sigma covariance ellipse. Used by the sample writer only.
"""

from __future__ import annotations

import numpy as np


def add_polygon(mask: np.ndarray, polygon: np.ndarray) -> None:
    """Add 1 to every pixel of ``mask`` whose (x, y) lies inside ``polygon`` (even-odd rule).

    Scanline fill: for each pixel row, the x-crossings of the closed polygon's edges are
    sorted and the columns between crossing pairs are filled through a difference array.
    """
    pts = np.asarray(polygon, dtype=np.float64)
    h, w = mask.shape
    y_lo = max(0, int(np.ceil(pts[:, 1].min())))
    y_hi = min(h - 1, int(np.floor(pts[:, 1].max())))
    if y_hi < y_lo:
        return
    xa, ya = pts[:, 0], pts[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    rows = np.arange(y_lo, y_hi + 1, dtype=np.float64)[:, None]
    # Half-open rule so a vertex on a scanline is counted once.
    crosses = ((ya <= rows) & (rows < yb)) | ((yb <= rows) & (rows < ya))
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = xa + (rows - ya) * (xb - xa) / (yb - ya)
    x_cross = np.where(crosses, x_cross, np.inf)
    x_cross.sort(axis=1)
    n_cross = crosses.sum(axis=1)
    # Work only on the polygon's column range: the fill is zero outside it.
    x_lo = min(w, max(0, int(np.ceil(xa.min()))))
    x_hi = min(w, max(0, int(np.ceil(xa.max())) + 1))
    if x_hi <= x_lo:
        return
    diff = np.zeros((len(rows), x_hi - x_lo + 1), dtype=np.int32)
    for k in range(0, int(n_cross.max(initial=0)), 2):
        has = n_cross > k + 1
        start = np.clip(np.ceil(x_cross[has, k]), x_lo, x_hi).astype(np.intp) - x_lo
        stop = np.clip(np.ceil(x_cross[has, k + 1]), x_lo, x_hi).astype(np.intp) - x_lo
        r = np.nonzero(has)[0]
        np.add.at(diff, (r, start), 1)
        np.add.at(diff, (r, stop), -1)
    fill = np.cumsum(diff[:, :-1], axis=1)
    mask[y_lo: y_hi + 1, x_lo:x_hi] += fill.astype(mask.dtype)


def add_cluster_ellipse(mask: np.ndarray, mean: np.ndarray, cov: np.ndarray, count: int,
                        nstd: float = 2.0) -> None:
    """Add ``count`` inside the ``nstd``-sigma ellipse of a cluster (mean, 2x2 covariance)."""
    try:
        inv = np.linalg.inv(cov)
    except np.linalg.LinAlgError:
        return  # degenerate cluster: the production code drew nothing either
    if not np.all(np.linalg.eigvalsh(cov) > 0):
        return
    reach = nstd * np.sqrt(np.diag(cov)) + 1
    h, w = mask.shape
    x0, x1 = max(0, int(mean[0] - reach[0])), min(w - 1, int(mean[0] + reach[0]) + 1)
    y0, y1 = max(0, int(mean[1] - reach[1])), min(h - 1, int(mean[1] + reach[1]) + 1)
    if x1 < x0 or y1 < y0:
        return
    yy, xx = np.mgrid[y0: y1 + 1, x0: x1 + 1]
    dx, dy = xx - mean[0], yy - mean[1]
    d2 = inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
    mask[y0: y1 + 1, x0: x1 + 1] += (d2 <= nstd * nstd) * count
