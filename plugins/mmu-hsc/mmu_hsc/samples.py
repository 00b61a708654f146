"""Synthetic HSC PDR3 raw data: calexp coadds and the catalog, in the archive's layout.

Geometry follows the HSC skymap: one tract is a TAN projection (0.168″ pixels) centred on
the requested cone; it is cut into patches whose images overlap their neighbours by a
margin, and every catalog object belongs to the patch whose inner region holds it
(``isprimary``). Patch images are kept small (``patch_size``; real ones are 4200 px).

Sources are elliptical two-Gaussian galaxies or point sources, convolved analytically with
a Gaussian PSF whose second moments are the catalog's ``sdssshape_psf_shape*`` values; the
pixel noise is drawn from the variance plane. Bad columns, saturated blobs and NO_DATA
holes are placed away from catalog centres: the MMU v1 query drops objects whose centre
is saturated or bad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from mmu_core.models import OptionInfo, SampleRequest, SampleResult
from mmu_core.sampling import requested_positions, separation
from mmu_hsc.datamodel import (
    BANDS,
    FILTERS,
    MASK_PLANES,
    PIXEL_SCALE,
    ZERO_POINT,
    calexp_name,
    calexp_relpath,
    patch_label,
)

SAMPLE_OPTIONS = [
    OptionInfo(name="patch_size", kind="int", default=1000,
               help="side of a patch's inner region in pixels (PDR3: 4000)"),
    # 200 per 1000x1000 patch is ~25 per arcmin², about 3x the real i < 22.5 density: a
    # denser default would put a brighter neighbour in most stamps.
    OptionInfo(name="objects_per_patch", kind="int", default=200,
               help="objects per patch, sets how many patches are written"),
    OptionInfo(name="catalog_format", kind="str", default="fits", help="fits, csv or both"),
    OptionInfo(name="layout", kind="str", default="tree",
               help="tree (HSC-G/tract/x,y/calexp-...) or flat (all files in one folder)"),
    OptionInfo(name="faint_fraction", kind="float", default=0.0,
               help="fraction of objects with i_cmodel_mag >= 22.5 (cut by pdr3_dud_22.5)"),
    OptionInfo(name="edge_fraction", kind="float", default=0.05,
               help="fraction of objects placed within a few pixels of a patch boundary"),
    OptionInfo(name="min_separation", kind="float", default=2.0,
               help="minimum distance between objects, arcsec"),
    OptionInfo(name="noise", kind="float", default=1.0,
               help="scale of the pixel noise drawn from the variance plane (0: noiseless)"),
    OptionInfo(name="tract", kind="int", default=9813, help="tract number"),
]

CATALOG_STEM = "pdr3_dud_22.5"
SKY_SIGMA = {"g": 0.04, "r": 0.05, "i": 0.06, "z": 0.09, "y": 0.16}  # counts per pixel
PSF_FWHM = {"g": 0.78, "r": 0.72, "i": 0.60, "z": 0.68, "y": 0.72}  # arcsec, tract median
EXTINCTION_COEFF = {"g": 3.233, "r": 2.291, "i": 1.635, "z": 1.261, "y": 1.076}  # A_b / E(B-V)
GAIN = 4.0  # counts -> Poisson variance scale of the source term
NJY_PER_COUNT = 3631e9 * 10 ** (-0.4 * ZERO_POINT)
ARTEFACT_CLEARANCE = 12  # pixels between an artefact and any catalog centre


@dataclass
class Tract:
    """The tract grid: patch inner side, overlap margin, grid size and its TAN WCS."""

    number: int
    ra: float
    dec: float
    inner: int
    overlap: int
    nx: int  # patches across the tract (it covers the cone)
    ny: int
    block: tuple[int, int, int, int]  # first patch x, y and size of the block for drawn objects

    @property
    def crpix(self) -> tuple[float, float]:
        # FITS 1-based reference pixel at the centre of the grid's inner region.
        return (self.overlap + self.nx * self.inner / 2 + 0.5,
                self.overlap + self.ny * self.inner / 2 + 0.5)

    def wcs(self, x0: int = 0, y0: int = 0) -> WCS:
        """TAN WCS of the tract, or of a patch image whose first pixel is (x0, y0)."""
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.cunit = ["deg", "deg"]
        w.wcs.crval = [self.ra, self.dec]
        cx, cy = self.crpix
        w.wcs.crpix = [cx - x0, cy - y0]
        w.wcs.cd = np.array([[-PIXEL_SCALE / 3600.0, 0.0], [0.0, PIXEL_SCALE / 3600.0]])
        w.wcs.radesys = "ICRS"
        w.wcs.equinox = 2000.0
        return w

    def patch_origin(self, px: int, py: int) -> tuple[int, int]:
        """Tract pixel of a patch image's first pixel (its outer bounding box)."""
        return px * self.inner, py * self.inner

    @property
    def patch_shape(self) -> tuple[int, int]:
        side = self.inner + 2 * self.overlap
        return side, side


# ---- objects -------------------------------------------------------------------------------
def _place_objects(rng: np.random.Generator, tract: Tract, n: int, radius: float,
                   min_sep_px: float, edge_fraction: float,
                   fixed: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Tract pixel positions: the ``fixed`` ones, then up to n more drawn inside the cone in
    the block's patch inner regions, ``edge_fraction`` of them a few pixels inside a patch
    boundary, none closer than ``min_sep_px`` to another."""
    world = tract.wcs()
    lo, inner = tract.overlap, tract.inner
    ix0, iy0, bx, by = tract.block
    xs: list[float] = []
    ys: list[float] = []
    cell = max(min_sep_px, 1.0)
    grid: dict[tuple[int, int], list[int]] = {}

    def add(x: float, y: float) -> None:
        grid.setdefault((int(x // cell), int(y // cell)), []).append(len(xs))
        xs.append(float(x))
        ys.append(float(y))

    def free(x: float, y: float) -> bool:
        gx, gy = int(x // cell), int(y // cell)
        return all((xs[k] - x) ** 2 + (ys[k] - y) ** 2 >= min_sep_px**2
                   for i in (gx - 1, gx, gx + 1) for j in (gy - 1, gy, gy + 1)
                   for k in grid.get((i, j), ()))

    # Candidates come from the block of patches clipped to the cone's bounding box, so a
    # cone much smaller than a patch still fills quickly.
    cx, cy = np.array(tract.crpix) - 1.0
    r_px = radius * 3600.0 / PIXEL_SCALE
    x_lo, x_hi = max(lo + ix0 * inner, cx - r_px), min(lo + (ix0 + bx) * inner, cx + r_px)
    y_lo, y_hi = max(lo + iy0 * inner, cy - r_px), min(lo + (iy0 + by) * inner, cy + r_px)

    def candidates(m: int, edge: bool) -> tuple[np.ndarray, np.ndarray]:
        if not edge:
            return rng.uniform(x_lo, x_hi, m), rng.uniform(y_lo, y_hi, m)
        # A few pixels inside one side (left, right, bottom, top) of a random block patch.
        px0 = lo + inner * rng.integers(ix0, ix0 + bx, m)
        py0 = lo + inner * rng.integers(iy0, iy0 + by, m)
        side = rng.integers(0, 4, m)
        depth = rng.uniform(0.5, 6.0, m)
        along = rng.uniform(0, inner, m)
        x = np.select([side == 0, side == 1], [px0 + depth, px0 + inner - depth], px0 + along)
        y = np.select([side == 2, side == 3], [py0 + depth, py0 + inner - depth], py0 + along)
        return x, y

    for x, y in zip(*fixed, strict=True):
        add(x, y)
    n_fixed = len(xs)
    n_edge = min(n, int(round(edge_fraction * n)))
    for target, edge in ((n_fixed + n_edge, True), (n_fixed + n, False)):
        for _ in range(100):
            if len(xs) >= target:
                break
            x, y = candidates(4 * (target - len(xs)) + 16, edge)
            ra, dec = world.all_pix2world(x, y, 0)
            inside = separation(ra, dec, tract.ra, tract.dec) < radius * 0.995
            inside &= (x >= x_lo) & (x < x_hi) & (y >= y_lo) & (y < y_hi)
            for xi, yi in zip(x[inside], y[inside], strict=True):
                if len(xs) >= target:
                    break
                if min_sep_px <= 0 or free(xi, yi):
                    add(xi, yi)
    return np.array(xs), np.array(ys)


def _psf_moments(tract: Tract, band: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """PSF covariance (pixels²) at tract positions: a smooth field per band, so an object
    drawn in two overlapping patches has the same PSF in both. Shape (n, 2, 2)."""
    phase = (BANDS.index(band) + 1) * 0.7
    u = x / (tract.nx * tract.inner + 2 * tract.overlap)
    v = y / (tract.ny * tract.inner + 2 * tract.overlap)
    fwhm = PSF_FWHM[band] * (1 + 0.06 * np.sin(2 * np.pi * u + phase) * np.cos(np.pi * v))
    sigma = fwhm / 2.355 / PIXEL_SCALE
    e1 = 0.03 * np.cos(np.pi * (u + v) + phase)
    e2 = 0.02 * np.sin(np.pi * (u - v) + phase)
    cov = np.empty((len(x), 2, 2))
    cov[:, 0, 0] = sigma**2 * (1 + e1)
    cov[:, 1, 1] = sigma**2 * (1 - e1)
    cov[:, 0, 1] = cov[:, 1, 0] = sigma**2 * e2
    return cov


@dataclass
class Objects:
    """True properties of the sample's objects (tract pixel frame)."""

    x: np.ndarray
    y: np.ndarray
    star: np.ndarray
    mags: dict[str, np.ndarray]  # observed (extincted) magnitudes per band
    shape_cov: np.ndarray  # (n, 2, 2, 2): two Gaussian components' covariance, pixels²
    weights: np.ndarray  # (n, 2) flux fraction of each component
    ebv: float
    faint: np.ndarray  # drawn below the pdr3_dud_22.5 limit on purpose


def _draw_objects(rng: np.random.Generator, x: np.ndarray, y: np.ndarray,
                  faint_fraction: float) -> Objects:
    n = len(x)
    faint = rng.uniform(size=n) < faint_fraction
    imag = np.where(faint, rng.uniform(22.7, 24.0, n), 18.0 + 4.3 * np.sqrt(rng.uniform(size=n)))
    r = imag + rng.uniform(0.1, 0.6, n)
    g = r + rng.uniform(0.2, 1.0, n)
    z = imag - rng.uniform(0.0, 0.4, n)
    yb = z - rng.uniform(0.0, 0.2, n)
    star = rng.uniform(size=n) < 0.25
    size = np.exp(rng.normal(np.log(0.45 / PIXEL_SCALE), 0.35, n))  # sigma, pixels
    q = rng.uniform(0.35, 1.0, n)
    theta = rng.uniform(0, np.pi, n)
    cov = np.zeros((n, 2, 2, 2))
    c, s = np.cos(theta), np.sin(theta)
    for k, factor in enumerate((0.6, 1.6)):
        a2, b2 = (factor * size) ** 2, (factor * size * q) ** 2
        cov[:, k, 0, 0] = a2 * c**2 + b2 * s**2
        cov[:, k, 1, 1] = a2 * s**2 + b2 * c**2
        cov[:, k, 0, 1] = cov[:, k, 1, 0] = (a2 - b2) * c * s
    cov[star] = 0.0
    bulge = rng.uniform(0.2, 0.8, n)
    weights = np.stack([bulge, 1 - bulge], axis=1)
    return Objects(x=x, y=y, star=star, mags={"g": g, "r": r, "i": imag, "z": z, "y": yb},
                   shape_cov=cov, weights=weights, ebv=float(rng.uniform(0.01, 0.05)),
                   faint=faint)


# ---- images --------------------------------------------------------------------------------
def _render(image: np.ndarray, x: float, y: float, flux: float, covs: np.ndarray,
            weights: np.ndarray) -> None:
    """Add a Gaussian mixture of total ``flux`` centred at pixel (x, y) to ``image``."""
    height, width = image.shape
    spread = max(float(np.linalg.eigvalsh(c).max()) for c in covs)
    half = int(min(max(math.ceil(5 * math.sqrt(spread)), 4), 80))
    cx, cy = int(round(x)), int(round(y))
    x0, x1 = max(cx - half, 0), min(cx + half + 1, width)
    y0, y1 = max(cy - half, 0), min(cy + half + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    dx = np.arange(x0, x1) - x
    dy = (np.arange(y0, y1) - y)[:, None]
    model = np.zeros((y1 - y0, x1 - x0))
    for cov, w in zip(covs, weights, strict=True):
        if w == 0:
            continue
        det = cov[0, 0] * cov[1, 1] - cov[0, 1] ** 2
        inv00, inv11, inv01 = cov[1, 1] / det, cov[0, 0] / det, -cov[0, 1] / det
        q = inv00 * dx**2 + 2 * inv01 * dx * dy + inv11 * dy**2
        model += w / (2 * np.pi * np.sqrt(det)) * np.exp(-0.5 * q)
    image[y0:y1, x0:x1] += (flux * model).astype(image.dtype)


def _free_box(rng: np.random.Generator, shape: tuple[int, int], h: int, w: int,
              cx: np.ndarray, cy: np.ndarray) -> tuple[int, int] | None:
    """Top-left corner of an h x w box at least ARTEFACT_CLEARANCE px from every centre."""
    for _ in range(50):
        y0 = int(rng.integers(0, shape[0] - h))
        x0 = int(rng.integers(0, shape[1] - w))
        dx = np.maximum(np.maximum(x0 - cx, cx - (x0 + w - 1)), 0)
        dy = np.maximum(np.maximum(y0 - cy, cy - (y0 + h - 1)), 0)
        if not len(cx) or np.hypot(dx, dy).min() >= ARTEFACT_CLEARANCE:
            return y0, x0
    return None


def _patch_planes(rng: np.random.Generator, tract: Tract, objs: Objects, band: str,
                  px: int, py: int, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IMAGE, MASK and VARIANCE planes of one band of one patch."""
    shape = tract.patch_shape
    ox, oy = tract.patch_origin(px, py)
    lx, ly = objs.x - ox, objs.y - oy
    near = (lx > -100) & (lx < shape[1] + 100) & (ly > -100) & (ly < shape[0] + 100)
    psf = _psf_moments(tract, band, objs.x[near], objs.y[near])
    model = np.zeros(shape, np.float64)
    for k, i in enumerate(np.flatnonzero(near)):
        flux = 10 ** (-0.4 * (objs.mags[band][i] - ZERO_POINT))
        covs = objs.shape_cov[i] + psf[k]
        weights = np.array([1.0, 0.0]) if objs.star[i] else objs.weights[i]
        _render(model, lx[i], ly[i], flux, covs, weights)
    sky = SKY_SIGMA[band] ** 2
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    variance = sky * (1 + 0.1 * np.cos(2 * np.pi * (xx + ox) / 3000.0) * np.sin(
        2 * np.pi * (yy + oy) / 2500.0)) + np.maximum(model, 0) / GAIN
    image = model + noise * rng.standard_normal(shape) * np.sqrt(variance)
    mask = np.zeros(shape, np.int32)
    mask[model > 2 * SKY_SIGMA[band]] |= 1 << MASK_PLANES["DETECTED"]
    inside = near & (lx >= 0) & (lx < shape[1]) & (ly >= 0) & (ly < shape[0])
    cx, cy = np.round(lx[inside]), np.round(ly[inside])
    # Bad column segment: interpolated over, flagged BAD.
    length = int(rng.integers(40, 200))
    box = _free_box(rng, shape, length, 1, cx, cy)
    if box is not None:
        y0, x0 = box
        seg = (slice(y0, y0 + length), slice(x0, x0 + 1))
        mask[seg] |= (1 << MASK_PLANES["BAD"]) | (1 << MASK_PLANES["INTRP"])
        image[seg] = 0.0
    # Saturated blobs: clipped at a high level, flagged SAT (and INTRP, as the pipeline does).
    for _ in range(int(rng.integers(1, 4))):
        r = int(rng.integers(2, 5))
        box = _free_box(rng, shape, 2 * r + 1, 2 * r + 1, cx, cy)
        if box is None:
            continue
        y0, x0 = box
        disk = np.hypot(*np.mgrid[-r:r + 1, -r:r + 1]) <= r
        sub = (slice(y0, y0 + 2 * r + 1), slice(x0, x0 + 2 * r + 1))
        image[sub][disk] = 2.0e4
        mask[sub][disk] |= (1 << MASK_PLANES["SAT"]) | (1 << MASK_PLANES["INTRP"])
    # Cosmic-ray remnants: flagged CR only, which does not make a pixel bad.
    cr = (rng.integers(0, shape[0], 20), rng.integers(0, shape[1], 20))
    mask[cr] |= 1 << MASK_PLANES["CR"]
    # A NO_DATA hole (no input exposure): NaN image, infinite variance.
    h, w = int(rng.integers(10, 30)), int(rng.integers(20, 60))
    box = _free_box(rng, shape, h, w, cx, cy)
    if box is not None:
        y0, x0 = box
        hole = (slice(y0, y0 + h), slice(x0, x0 + w))
        image[hole] = np.nan
        variance[hole] = np.inf
        mask[hole] |= (1 << MASK_PLANES["NO_DATA"]) | (1 << MASK_PLANES["EDGE"])
    return image.astype(np.float32), mask, variance.astype(np.float32)


def _wcs_cards(wcs: WCS) -> fits.Header:
    """TAN WCS cards with a CD matrix, as the LSST stack writes coadd headers."""
    header = fits.Header()
    header["RADESYS"] = "ICRS"
    header["EQUINOX"] = 2000.0
    for axis in (1, 2):
        header[f"CTYPE{axis}"] = wcs.wcs.ctype[axis - 1]
        header[f"CUNIT{axis}"] = "deg"
        header[f"CRVAL{axis}"] = float(wcs.wcs.crval[axis - 1])
        header[f"CRPIX{axis}"] = float(wcs.wcs.crpix[axis - 1])
    for i in (1, 2):
        for j in (1, 2):
            header[f"CD{i}_{j}"] = float(wcs.wcs.cd[i - 1, j - 1])
    return header


def _write_calexp(path: Path, tract: Tract, band: str, px: int, py: int,
                  planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ox, oy = tract.patch_origin(px, py)
    wcs_header = _wcs_cards(tract.wcs(ox, oy))
    primary = fits.PrimaryHDU()
    primary.header["FILTER"] = (FILTERS[band], "HSC filter")
    primary.header["TRACT"] = (tract.number, "skymap tract")
    primary.header["PATCH"] = (patch_label(px, py), "skymap patch x,y")
    primary.header["FLUXMAG0"] = (10 ** (0.4 * ZERO_POINT), "flux of a 0 mag source, counts")
    hdus = [primary]
    for name, data in zip(("IMAGE", "MASK", "VARIANCE"), planes, strict=True):
        hdu = fits.ImageHDU(data=data, name=name)
        hdu.header.update(wcs_header)
        # Offset of this patch's pixels in the tract frame (LSST's "physical" coordinates).
        hdu.header["LTV1"] = -ox
        hdu.header["LTV2"] = -oy
        if name == "MASK":
            for plane, bit in MASK_PLANES.items():
                # Names over 8 characters need HIERARCH cards, as the LSST stack writes them.
                key = f"MP_{plane}"
                hdu.header[key if len(key) <= 8 else f"HIERARCH {key}"] = bit
        hdus.append(hdu)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)


# ---- catalog -------------------------------------------------------------------------------
def _catalog(rng: np.random.Generator, tract: Tract, objs: Objects, px: np.ndarray,
             py: np.ndarray) -> dict[str, np.ndarray]:
    """Catalog columns, in the order of MMU v1's SQL query."""
    n = len(objs.x)
    ra, dec = tract.wcs().all_pix2world(objs.x, objs.y, 0)
    serial = np.zeros(n, np.int64)
    for key in set(zip(px.tolist(), py.tolist(), strict=True)):
        members = np.flatnonzero((px == key[0]) & (py == key[1]))
        serial[members] = np.arange(1, len(members) + 1)
    # Like HSC ids, an object_id encodes tract and patch: 14 + 7 + 7 + 32 bits.
    ids = (np.int64(tract.number) << 46) | (px.astype(np.int64) << 39) \
        | (py.astype(np.int64) << 32) | serial
    cols: dict[str, np.ndarray] = {
        "object_id": ids,
        "ra": np.mod(ra, 360.0),
        "dec": np.asarray(dec, np.float64),
        "tract": np.full(n, tract.number, np.int32),
        "patch": (100 * px + py).astype(np.int32),
    }
    for b in BANDS:
        cols[f"a_{b}"] = np.full(n, EXTINCTION_COEFF[b] * objs.ebv, np.float32)
    for b in BANDS:
        cols[f"{b}_extendedness_value"] = np.where(objs.star, 0.0, 1.0).astype(np.float32)
    psf = {b: _psf_moments(tract, b, objs.x, objs.y) for b in BANDS}
    fluxes = {}
    for b in BANDS:
        counts = 10 ** (-0.4 * (objs.mags[b] - ZERO_POINT))
        area = 4 * np.pi * np.sqrt(np.linalg.det(psf[b] + objs.shape_cov[:, 1]))
        err = np.sqrt(area * SKY_SIGMA[b] ** 2 + counts / GAIN)
        measured = counts + rng.normal(0, 1, n) * err
        measured = np.where(measured > 0, measured, counts)
        if b == "i":
            # The archive query applied i < 22.5: measured magnitudes of the objects meant to
            # pass it must pass it too.
            floor = 10 ** (-0.4 * (22.49 - ZERO_POINT))
            measured = np.where(objs.faint, measured, np.maximum(measured, floor))
        fluxes[b] = (measured, err)
        cols[f"{b}_cmodel_mag"] = (ZERO_POINT - 2.5 * np.log10(measured)).astype(np.float32)
        cols[f"{b}_cmodel_magerr"] = (2.5 / np.log(10) * err / measured).astype(np.float32)
    for b in BANDS:
        cols[f"{b}_cmodel_flux"] = fluxes[b][0] * NJY_PER_COUNT
        cols[f"{b}_cmodel_fluxerr"] = fluxes[b][1] * NJY_PER_COUNT
    for b in BANDS:
        for name, (i, j) in (("11", (0, 0)), ("22", (1, 1)), ("12", (0, 1))):
            cols[f"{b}_sdssshape_psf_shape{name}"] = psf[b][:, i, j].astype(np.float32)
    for b in BANDS:
        w = np.where(objs.star[:, None], [1.0, 0.0], objs.weights)
        total = np.einsum("nk,nkij->nij", w, objs.shape_cov) + psf[b]
        for name, (i, j) in (("11", (0, 0)), ("22", (1, 1)), ("12", (0, 1))):
            cols[f"{b}_sdssshape_shape{name}"] = total[:, i, j].astype(np.float32)
    return cols


def write_catalog(cols: dict[str, np.ndarray], out_dir: Path, fmt: str) -> list[Path]:
    """The catalog as the archive serves a query result: FITS table and/or CSV."""
    written = []
    if fmt in ("fits", "both"):
        path = out_dir / f"{CATALOG_STEM}.fits"
        table = fits.BinTableHDU.from_columns(
            [fits.Column(name=k, format=_fits_format(v), array=v) for k, v in cols.items()])
        fits.HDUList([fits.PrimaryHDU(), table]).writeto(path, overwrite=True)
        written.append(path)
    if fmt in ("csv", "both"):
        path = out_dir / f"{CATALOG_STEM}.csv"
        names = list(cols)
        texts = [_csv_text(cols[k]) for k in names]
        with open(path, "w") as fh:
            # The archive's CSV output starts with a '# '-prefixed header line.
            fh.write("# " + ",".join(names) + "\n")
            for row in zip(*texts, strict=True):
                fh.write(",".join(row) + "\n")
        written.append(path)
    return written


def _fits_format(v: np.ndarray) -> str:
    return {"i8": "K", "i4": "J", "f8": "D", "f4": "E"}[v.dtype.str[1:]]


def _csv_text(v: np.ndarray) -> list[str]:
    if v.dtype.kind in "iu":
        return [str(int(a)) for a in v]
    # Enough digits to read back the exact binary value (17 for float64, 9 for float32).
    digits = 17 if v.dtype == np.float64 else 9
    return [f"{a:.{digits}g}" for a in v]


# ---- entry point ---------------------------------------------------------------------------
def write_sample(request: SampleRequest) -> SampleResult:
    """Write tract/patch calexps for g, r, i, z, y and the catalog into ``request.out_dir``."""
    opts: dict[str, Any] = {o.name: o.default for o in SAMPLE_OPTIONS}
    opts.update({k: v for k, v in request.options.items() if v is not None})
    fmt, layout = str(opts["catalog_format"]), str(opts["layout"])
    if fmt not in ("fits", "csv", "both"):
        raise ValueError(f"catalog_format must be fits, csv or both, got {fmt!r}")
    if layout not in ("tree", "flat"):
        raise ValueError(f"layout must be tree or flat, got {layout!r}")
    inner = int(opts["patch_size"])
    if inner < 64:
        raise ValueError(f"patch_size must be at least 64 pixels, got {inner}")
    per_patch = max(1, int(opts["objects_per_patch"]))
    fixed_sky = np.stack(requested_positions(request, request.n), axis=1)
    n_drawn = request.n - len(fixed_sky)
    # The tract covers the cone (at most 99 x 99 patches, so patch = 100*x + y stays
    # readable); objects not given by position fill a block of patches at its centre, and
    # only patches holding objects are written.
    overlap = max(8, inner // 40)
    half = min(49, math.ceil(request.radius * 3600.0 / PIXEL_SCALE / inner))
    n_block = max(1, math.ceil(n_drawn / per_patch))
    bx = min(2 * half + 1, math.ceil(math.sqrt(n_block)))
    by = min(2 * half + 1, math.ceil(n_block / bx))
    tract = Tract(number=int(opts["tract"]), ra=request.ra % 360.0, dec=request.dec,
                  inner=inner, overlap=overlap, nx=2 * half + 1, ny=2 * half + 1,
                  block=(half - (bx - 1) // 2, half - (by - 1) // 2, bx, by))
    fx, fy = tract.wcs().all_world2pix(fixed_sky[:, 0], fixed_sky[:, 1], 0)
    span_x, span_y = overlap + tract.nx * inner, overlap + tract.ny * inner
    outside = ~((fx >= overlap) & (fx < span_x) & (fy >= overlap) & (fy < span_y))
    if outside.any():
        ra, dec = fixed_sky[np.flatnonzero(outside)[0]]
        raise ValueError(f"position ({ra}, {dec}) is outside the cone's tract; widen --radius "
                         "or use a larger --patch-size")
    rng = np.random.default_rng(request.seed)
    x, y = _place_objects(rng, tract, n_drawn, request.radius,
                          float(opts["min_separation"]) / PIXEL_SCALE,
                          float(opts["edge_fraction"]), (fx, fy))
    notes = []
    if len(x) < request.n:
        notes.append(f"only {len(x)} of {request.n} objects fit in the cone with "
                     f"min_separation={opts['min_separation']} arcsec")
    objs = _draw_objects(rng, x, y, float(opts["faint_fraction"]))
    if not 0 <= tract.number < 2**14:
        raise ValueError(f"tract must be in [0, 16384), got {tract.number}")
    px = np.clip(((x - overlap) // inner).astype(int), 0, tract.nx - 1)
    py = np.clip(((y - overlap) // inner).astype(int), 0, tract.ny - 1)
    out = Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns = _catalog(rng, tract, objs, px, py)
    # Objects given by position sit exactly there (no round trip through the WCS).
    columns["ra"][: len(fixed_sky)] = fixed_sky[:, 0]
    columns["dec"][: len(fixed_sky)] = fixed_sky[:, 1]
    files = [str(p) for p in write_catalog(columns, out, fmt)]
    for ix, iy in sorted(set(zip(px.tolist(), py.tolist(), strict=True))):
        patch = patch_label(ix, iy)
        for band in BANDS:
            planes = _patch_planes(rng, tract, objs, band, ix, iy, float(opts["noise"]))
            rel = (calexp_relpath(band, tract.number, patch) if layout == "tree"
                   else Path(calexp_name(band, tract.number, patch)))
            _write_calexp(out / rel, tract, band, ix, iy, planes)
            files.append(str(out / rel))
    return SampleResult(files=files, n_objects=len(x), notes=notes)
