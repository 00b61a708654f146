"""Synthetic Legacy Surveys raw data: DR10 south bricks and Stein et al. (2021) HDF5 files.

**Bricks.** The sky is cut into 0.25° rows of declination, each into bricks of at least 0.25°
of RA, named after their centres as the survey names them (``1500p020``); a brick's coadds
are ``brick_size`` square TAN images (0.262″ pixels, reference pixel at the centre, as
legacypipe's brick WCS) centred on the brick — 3600 pixels by default, which covers the
brick with a margin, so an object near a brick edge sits in two bricks' images and catalogs,
primary in one. Smaller images (``--brick-size``) cover only the middle of their brick.

Per brick and band the sample writes the coadd image (nanomaggies), its inverse variance and
one maskbits image, each fpack-compressed as legacypipe writes them (RICE with subtractive
dither 2 and an absolute quantization step of 1e-4 nanomaggy for images, RICE without dither
at q = 16 for inverse variances, lossless HCOMPRESS for maskbits, 100 x 100 tiles), and the
Tractor catalog of every object whose centre is in the brick's images.

Sources are Gaussian: galaxies (REX, EXP, DEV, SER) an ellipse of ``shape_r``, ``shape_e1``,
``shape_e2`` convolved with a round Gaussian PSF of FWHM ``psfsize_<band>``, point sources
(PSF) the PSF alone; fluxes are observed (extincted) nanomaggies, the catalog's ``flux_<b>``
those plus noise at ``flux_ivar_<b>``. Pixel noise follows the inverse-variance image.
Maskbits carry NPRIMARY outside the brick's own area, bright- and medium-star disks,
saturated blobs and ALLMASK segments (these away from every object centre, except the
medium-star disks put on ``masked_fraction`` of the objects, which dr10_south_21 then
drops), and WISE-mask and large-galaxy disks, which do not make pixels bad. A catalog's
``maskbits`` is the maskbits image at the object's centre.

**Stein et al.** One row per non-PSF object, sorted by decreasing z flux (as the release
orders its files), in files of ``stein_rows_per_file`` rows ``images/south/
images_npix152_<start>_<end>.h5``: 152 x 152 g, r, z cutouts drawn from the same sources
(band first, float32) and the catalog datasets of
:data:`mmu_legacysurvey.datamodel.STEIN_FIELDS`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.io import fits
from astropy.io.fits.hdu.compressed import DITHER_SEED_CHECKSUM, NO_DITHER, SUBTRACTIVE_DITHER_2
from astropy.wcs import WCS

from mmu_core.models import OptionInfo, SampleRequest, SampleResult
from mmu_core.sampling import requested_positions, separation
from mmu_legacysurvey import datamodel as dm

SAMPLE_OPTIONS = [
    OptionInfo(name="layout", kind="str", default="both",
               help="bricks (DR10 coadds and Tractor catalogs), stein (Stein et al. HDF5 "
               "files) or both"),
    OptionInfo(name="brick_size", kind="int", default=dm.BRICK_PIXELS,
               help="side of a brick's coadd images in pixels (DR10: 3600)"),
    OptionInfo(name="objects_per_brick", kind="int", default=400,
               help="objects drawn per brick, sets how many bricks are written"),
    OptionInfo(name="psf_fraction", kind="float", default=0.2,
               help="fraction of drawn objects that are point sources (type PSF)"),
    OptionInfo(name="faint_fraction", kind="float", default=0.15,
               help="fraction of drawn objects fainter than z = 21"),
    OptionInfo(name="masked_fraction", kind="float", default=0.05,
               help="fraction of drawn objects inside a medium-bright-star mask"),
    OptionInfo(name="edge_fraction", kind="float", default=0.05,
               help="fraction of drawn objects within a few pixels of an image edge"),
    OptionInfo(name="min_separation", kind="float", default=3.0,
               help="minimum distance between objects, arcsec"),
    OptionInfo(name="noise", kind="float", default=1.0,
               help="scale of the pixel noise drawn from the inverse variance (0: none)"),
    OptionInfo(name="stein_rows_per_file", kind="int", default=1_000_000,
               help="rows per Stein et al. file (the release: 1,000,000)"),
]

ROW_HEIGHT = 0.25  # degrees of declination per brick row
RELEASE = 10000  # DR10 DECam
STEIN_RELEASE = 9010  # DR9 DECam (south)
# A_b / E(B-V) for DECam g r i z and WISE W1-W4, as the Legacy Surveys catalogs use them
EXTINCTION_COEFF = {"g": 3.214, "r": 2.165, "i": 1.592, "z": 1.211,
                    "w1": 0.184, "w2": 0.113, "w3": 0.0241, "w4": 0.00910}
PSF_FWHM = {"g": 1.55, "r": 1.35, "i": 1.25, "z": 1.2}  # arcsec, typical DR10 south
DEPTH = {"g": 24.6, "r": 24.1, "i": 23.6, "z": 23.1}  # 5-sigma point-source depth, AB
TYPES = ("REX", "EXP", "DEV", "SER")
TYPE_WEIGHTS = (0.4, 0.25, 0.2, 0.15)
CLEARANCE = 10  # pixels between a bad-pixel artefact and any object centre
RENDER_HALF = 60  # largest half-side of a source's rendered box, pixels


# ---- the brick grid ------------------------------------------------------------------------
@dataclass(frozen=True)
class Brick:
    """One brick: name, id, centre and the RA/Dec box of its own (primary) area."""

    name: str
    brickid: int
    ra: float
    dec: float
    ra1: float
    ra2: float
    dec1: float
    dec2: float

    def owns(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Are these positions in the brick's own area (``brick_primary``)?"""
        ra = np.mod(ra, 360.0)
        return (ra >= self.ra1) & (ra < self.ra2) & (dec >= self.dec1) & (dec < self.dec2)

    def wcs(self, size: int) -> WCS:
        """The TAN WCS of the brick's size x size coadds (reference pixel at the centre)."""
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [self.ra, self.dec]
        w.wcs.crpix = [size / 2 + 0.5, size / 2 + 0.5]
        w.wcs.cd = np.array([[-dm.PIXEL_SCALE / 3600, 0.0], [0.0, dm.PIXEL_SCALE / 3600]])
        w.wcs.equinox = 2000.0
        return w


@functools.lru_cache(maxsize=1)
def _row_starts() -> np.ndarray:
    """brickid - 1 of the first brick of each row (rows counted from the south pole)."""
    counts = [_columns_in_row(r) for r in range(round(180 / ROW_HEIGHT) + 1)]
    return np.concatenate([[0], np.cumsum(counts)])


def _row(dec: float) -> int:
    return int(np.clip(np.floor((dec + 90.0) / ROW_HEIGHT + 0.5), 0, round(180 / ROW_HEIGHT)))


def _columns_in_row(row: int) -> int:
    dec = -90.0 + row * ROW_HEIGHT
    return max(1, int(np.floor(360.0 * np.cos(np.radians(dec)) / ROW_HEIGHT)))


def brick_at(ra: float, dec: float) -> Brick:
    """The brick whose own area holds (ra, dec)."""
    row = _row(dec)
    dec_c = -90.0 + row * ROW_HEIGHT
    ncol = _columns_in_row(row)
    width = 360.0 / ncol
    col = int(np.floor(np.mod(ra, 360.0) / width)) % ncol
    brickid = 1 + int(_row_starts()[row]) + col
    ra_c = (col + 0.5) * width
    return Brick(name=dm.brick_name(ra_c, dec_c), brickid=brickid, ra=ra_c, dec=dec_c,
                 ra1=col * width, ra2=(col + 1) * width,
                 dec1=max(-90.0, dec_c - ROW_HEIGHT / 2), dec2=min(90.0, dec_c + ROW_HEIGHT / 2))


def bricks_near(ra: float, dec: float, radius: float) -> list[Brick]:
    """Bricks whose own area comes within ``radius`` of (ra, dec), nearest centre first."""
    found: dict[str, Brick] = {}
    step = ROW_HEIGHT / 4
    span = radius + ROW_HEIGHT
    for d in np.arange(max(-90.0, dec - span), min(90.0, dec + span) + step, step):
        width = span / max(np.cos(np.radians(d)), 1e-3)
        for r in np.arange(ra - width, ra + width + step, step):
            b = brick_at(r, float(np.clip(d, -90.0, 90.0)))
            nearest_ra = np.clip(np.mod(ra - b.ra1 + 180, 360) - 180 + b.ra1, b.ra1, b.ra2)
            nearest_dec = np.clip(dec, b.dec1, b.dec2)
            if separation(ra, dec, nearest_ra, nearest_dec) <= radius:
                found[b.name] = b
    return sorted(found.values(), key=lambda b: (float(separation(ra, dec, b.ra, b.dec)), b.name))


# ---- objects -------------------------------------------------------------------------------
@dataclass
class Scene:
    """True properties of every object of the sample (sky frame)."""

    ra: np.ndarray
    dec: np.ndarray
    owner: list[Brick]
    type: np.ndarray  # S3
    shape_r: np.ndarray  # arcsec
    e1: np.ndarray
    e2: np.ndarray
    sersic: np.ndarray
    mag: dict[str, np.ndarray]  # intrinsic (extinction-corrected) AB magnitudes
    ebv: np.ndarray
    masked: np.ndarray  # a medium-star mask is drawn on it
    fixed: np.ndarray  # placed at a requested position

    def __len__(self) -> int:
        return len(self.ra)

    def transmission(self, band: str) -> np.ndarray:
        return 10 ** (-0.4 * EXTINCTION_COEFF[band] * self.ebv)

    def flux(self, band: str) -> np.ndarray:
        """True observed flux, nanomaggies."""
        return 10 ** ((dm.MAG_ZERO_POINT - self.mag[band]) / 2.5) * self.transmission(band)


def _draw_positions(rng: np.random.Generator, request: SampleRequest, opts: dict[str, Any],
                    fixed: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The requested positions, then objects drawn brick by brick (nearest bricks first)
    inside the cone and inside their brick's images, ``min_separation`` apart."""
    size = int(opts["brick_size"])
    per_brick = max(1, int(opts["objects_per_brick"]))
    min_sep = float(opts["min_separation"]) / 3600.0
    ras, decs = list(fixed[0]), list(fixed[1])
    n_drawn = request.n - len(ras)
    if n_drawn <= 0:
        return np.array(ras), np.array(decs)
    bricks = bricks_near(request.ra, request.dec, request.radius)
    bricks = bricks[:max(1, math.ceil(n_drawn / per_brick))]
    quota = [n_drawn // len(bricks) + (k < n_drawn % len(bricks)) for k in range(len(bricks))]
    edge_fraction = float(opts["edge_fraction"])
    for brick, want in zip(bricks, quota, strict=True):
        wcs = brick.wcs(size)
        got = 0
        for _ in range(200):
            if got >= want:
                break
            m = 4 * (want - got) + 16
            x, y = rng.uniform(0, size - 1, m), rng.uniform(0, size - 1, m)
            edge = rng.uniform(size=m) < edge_fraction
            side, depth = rng.integers(0, 4, m), rng.uniform(0.5, 5.0, m)
            x = np.where(edge & (side == 0), depth, np.where(edge & (side == 1), size - 1 - depth, x))
            y = np.where(edge & (side == 2), depth, np.where(edge & (side == 3), size - 1 - depth, y))
            ra, dec = wcs.wcs_pix2world(x, y, 0)
            ra = np.mod(ra, 360.0)
            ok = brick.owns(ra, dec) & (separation(ra, dec, request.ra, request.dec)
                                        < request.radius * 0.999)
            for r, d in zip(ra[ok], dec[ok], strict=True):
                if got >= want:
                    break
                if min_sep > 0 and ras and (separation(r, d, np.array(ras), np.array(decs))
                                            < min_sep).any():
                    continue
                ras.append(float(r))
                decs.append(float(d))
                got += 1
    return np.array(ras), np.array(decs)


def _draw_scene(rng: np.random.Generator, ra: np.ndarray, dec: np.ndarray, n_fixed: int,
                opts: dict[str, Any]) -> Scene:
    n = len(ra)
    fixed = np.arange(n) < n_fixed
    star = ~fixed & (rng.uniform(size=n) < float(opts["psf_fraction"]))
    faint = ~fixed & (rng.uniform(size=n) < float(opts["faint_fraction"]))
    masked = ~fixed & (rng.uniform(size=n) < float(opts["masked_fraction"]))
    types = np.where(star, "PSF", rng.choice(TYPES, n, p=TYPE_WEIGHTS)).astype("S3")
    zmag = np.where(faint, rng.uniform(21.3, 23.0, n), 16.5 + 4.3 * np.sqrt(rng.uniform(size=n)))
    zmag = np.where(fixed, rng.uniform(17.0, 19.8, n), zmag)
    r = zmag + rng.uniform(0.2, 1.0, n)
    mag = {"z": zmag, "r": r, "i": zmag + 0.45 * (r - zmag), "g": r + rng.uniform(0.3, 1.4, n)}
    mag["w1"] = zmag + rng.uniform(-0.6, 0.4, n)
    mag["w2"] = mag["w1"] + rng.uniform(-0.2, 0.5, n)
    mag["w3"] = mag["w2"] + rng.uniform(-1.0, 1.0, n)
    mag["w4"] = mag["w3"] + rng.uniform(-1.0, 1.0, n)
    shape_r = np.where(star, 0.0, np.exp(rng.normal(np.log(0.9), 0.45, n)))
    e = np.where(types == b"REX", 0.0, rng.uniform(0, 0.6, n))
    phi = rng.uniform(0, np.pi, n)
    sersic = np.select([star, types == b"EXP", types == b"DEV", types == b"SER"],
                       [0.0, 1.0, 4.0, rng.uniform(0.5, 6.0, n)], 1.0)
    ebv = 0.03 + 0.01 * np.sin(np.radians(ra) * 40) * np.cos(np.radians(dec) * 30)
    return Scene(ra=ra, dec=dec, owner=[brick_at(a, d) for a, d in zip(ra, dec, strict=True)],
                 type=types, shape_r=shape_r, e1=e * np.cos(2 * phi), e2=e * np.sin(2 * phi),
                 sersic=sersic, mag=mag, ebv=ebv, masked=masked, fixed=fixed)


def _psf_fwhm(brick_id: int, band: str) -> float:
    """A brick's PSF FWHM in a band, arcsec: the typical value, varying brick to brick."""
    return PSF_FWHM[band] * (1 + 0.08 * np.sin(brick_id * 0.77 + dm.BANDS.index(band)))


def _pixel_sigma(fwhm: float, band: str) -> float:
    """Sky noise per pixel (nanomaggies) that gives the band's point-source depth."""
    sigma_psf_flux = 10 ** ((dm.MAG_ZERO_POINT - DEPTH[band]) / 2.5) / 5
    sigma_px = fwhm / 2.3548 / dm.PIXEL_SCALE
    return sigma_psf_flux / math.sqrt(4 * math.pi * sigma_px**2)


def _covariance(scene: Scene, i: int, fwhm: float) -> np.ndarray:
    """Pixel covariance of source i's Gaussian image: its ellipse plus the PSF."""
    psf = (fwhm / 2.3548 / dm.PIXEL_SCALE) ** 2
    cov = np.eye(2) * psf
    if scene.type[i] != b"PSF":
        e = math.hypot(scene.e1[i], scene.e2[i])
        q = (1 - e) / (1 + e)
        theta = 0.5 * math.atan2(scene.e2[i], scene.e1[i])
        a = scene.shape_r[i] / 1.1774 / dm.PIXEL_SCALE  # Gaussian sigma of that half-light radius
        c, s = math.cos(theta), math.sin(theta)
        rot = np.array([[-c, s], [s, c]])  # x grows towards smaller RA
        cov = cov + rot @ np.diag([a**2, (a * q) ** 2]) @ rot.T
    return cov


def _render(image: np.ndarray, x: float, y: float, flux: float, cov: np.ndarray) -> None:
    """Add a Gaussian of total ``flux`` and pixel covariance ``cov`` centred at (x, y)."""
    h, w = image.shape
    half = int(min(max(math.ceil(5 * math.sqrt(np.linalg.eigvalsh(cov).max())), 4), RENDER_HALF))
    cx, cy = int(round(x)), int(round(y))
    x0, x1, y0, y1 = max(cx - half, 0), min(cx + half + 1, w), max(cy - half, 0), min(cy + half + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    dx = np.arange(x0, x1) - x
    dy = (np.arange(y0, y1) - y)[:, None]
    det = cov[0, 0] * cov[1, 1] - cov[0, 1] ** 2
    q = (cov[1, 1] * dx**2 - 2 * cov[0, 1] * dx * dy + cov[0, 0] * dy**2) / det
    image[y0:y1, x0:x1] += (flux / (2 * np.pi * np.sqrt(det)) * np.exp(-0.5 * q)).astype(image.dtype)


# ---- bricks ------------------------------------------------------------------------------
def _free_disk(rng: np.random.Generator, shape: tuple[int, int], radius: int, cx: np.ndarray,
               cy: np.ndarray) -> tuple[int, int] | None:
    """A centre whose disk of ``radius`` keeps CLEARANCE pixels from every object centre."""
    for _ in range(50):
        y, x = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        if not len(cx) or np.hypot(cx - x, cy - y).min() >= radius + CLEARANCE:
            return y, x
    return None


def _disk(mask: np.ndarray, y: int, x: int, radius: float, bit: int) -> None:
    h, w = mask.shape
    r = int(math.ceil(radius))
    y0, y1, x0, x1 = max(y - r, 0), min(y + r + 1, h), max(x - r, 0), min(x + r + 1, w)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    mask[y0:y1, x0:x1][(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] |= np.int32(1 << bit)


def _nprimary(brick: Brick, wcs: WCS, size: int, mask: np.ndarray) -> None:
    """Set NPRIMARY on the pixels outside the brick's own area. Only an outer frame of the
    image can be (the brick's area is centred in it), so only that frame is projected."""
    ra_span = (brick.ra2 - brick.ra1) * math.cos(math.radians(brick.dec))
    own = min(ra_span, brick.dec2 - brick.dec1) * 3600 / dm.PIXEL_SCALE
    frame = int(min(math.ceil(size / 2), max(0.0, (size - own) / 2) + 24))
    if (size - own) / 2 < -24:
        return  # the image lies well inside the brick's area
    strips = [(slice(0, frame), slice(0, size)), (slice(size - frame, size), slice(0, size)),
              (slice(frame, size - frame), slice(0, frame)),
              (slice(frame, size - frame), slice(size - frame, size))]
    for rows, cols in strips:
        yy, xx = np.mgrid[rows, cols]
        if not yy.size:
            continue
        ra, dec = wcs.wcs_pix2world(xx.ravel(), yy.ravel(), 0)
        out = ~brick.owns(ra, dec)
        mask[yy.ravel()[out], xx.ravel()[out]] |= np.int32(1 << dm.MASKBITS["NPRIMARY"])


def _maskbits(rng: np.random.Generator, brick: Brick, wcs: WCS, size: int,
              cx: np.ndarray, cy: np.ndarray, masked_xy: list[tuple[float, float]]
              ) -> np.ndarray:
    mask = np.zeros((size, size), np.int32)
    _nprimary(brick, wcs, size, mask)
    for name, count, radii in (("BRIGHT", rng.integers(0, 2), (15, 35)),
                               ("MEDIUM", rng.integers(0, 2), (6, 12)),
                               *[(f"SATUR_{b.upper()}", rng.integers(1, 3), (2, 4))
                                 for b in dm.BANDS]):
        for _ in range(int(count)):
            radius = float(rng.uniform(*radii))
            at = _free_disk(rng, mask.shape, int(radius) + 1, cx, cy)
            if at is not None:
                _disk(mask, *at, radius, dm.MASKBITS[name])
    for b in dm.BANDS:  # a short fully-masked column segment per band
        length = int(rng.integers(20, min(120, size)))
        for _ in range(50):
            x, y0 = int(rng.integers(0, size)), int(rng.integers(0, size - length + 1))
            near = (np.abs(cx - x) < CLEARANCE) & (cy > y0 - CLEARANCE) & (cy < y0 + length + CLEARANCE)
            if not near.any():
                mask[y0:y0 + length, x] |= np.int32(1 << dm.MASKBITS[f"ALLMASK_{b.upper()}"])
                break
    for x, y in masked_xy:  # medium-bright stars on top of some objects (they are cut)
        _disk(mask, int(round(y)), int(round(x)), float(rng.uniform(6, 12)), dm.MASKBITS["MEDIUM"])
    for name in ("WISEM1", "WISEM2", "GALAXY"):  # harmless bits, anywhere
        _disk(mask, int(rng.integers(0, size)), int(rng.integers(0, size)),
              float(rng.uniform(20, 60)), dm.MASKBITS[name])
    return mask


def _header(brick: Brick, wcs: WCS) -> fits.Header:
    """The cards legacypipe puts on every coadd of a brick: release, brick box, WCS."""
    h = fits.Header()
    h["LSDR"] = ("DR10", "Data release number")
    h["DRVERSIO"] = (RELEASE, "LegacySurveys Data Release number")
    h["PROCTYPE"] = ("tile", "Processing type")
    h["BRICK"] = (brick.name, "LegacySurveys brick RRRr[pm]DDd")
    h["BRICKID"] = (brick.brickid, "LegacySurveys brick id")
    h["RAMIN"], h["RAMAX"] = (brick.ra1, "Brick RA min (deg)"), (brick.ra2, "Brick RA max (deg)")
    h["DECMIN"] = (brick.dec1, "Brick Dec min (deg)")
    h["DECMAX"] = (brick.dec2, "Brick Dec max (deg)")
    h["CENTRA"], h["CENTDEC"] = (brick.ra, "Brick center RA (deg)"), (brick.dec, "Brick center Dec (deg)")
    for axis in (1, 2):
        h[f"CTYPE{axis}"] = wcs.wcs.ctype[axis - 1]
        h[f"CRVAL{axis}"] = float(wcs.wcs.crval[axis - 1])
        h[f"CRPIX{axis}"] = float(wcs.wcs.crpix[axis - 1])
    for i in (1, 2):
        for j in (1, 2):
            h[f"CD{i}_{j}"] = float(wcs.wcs.cd[i - 1, j - 1])
    h["EQUINOX"] = (2000.0, "WCS epoch")
    return h


def _tile(size: int, tile: int = 100) -> int:
    """legacypipe's tile side: the first from 100 up whose last partial tile is 0 or >= 4."""
    while tile <= size:
        if size % tile == 0 or size % tile >= 4:
            break
        tile += 1
    return min(tile, size)


def _write_fz(path: Path, data: np.ndarray, header: fits.Header, name: str, kind: str) -> None:
    tile = (_tile(data.shape[0]), _tile(data.shape[1]))
    if kind == "image":
        hdu = fits.CompImageHDU(data, header=header, name=name, compression_type="RICE_1",
                                quantize_level=-1e-4, quantize_method=SUBTRACTIVE_DITHER_2,
                                dither_seed=DITHER_SEED_CHECKSUM, tile_shape=tile)
    elif kind == "invvar":
        hdu = fits.CompImageHDU(data, header=header, name=name, compression_type="RICE_1",
                                quantize_level=16, quantize_method=NO_DITHER, tile_shape=tile)
    else:
        hdu = fits.CompImageHDU(data, header=header, name=name, compression_type="HCOMPRESS_1",
                                tile_shape=tile)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def _write_brick(rng: np.random.Generator, out: Path, brick: Brick, scene: Scene, size: int,
                 noise: float) -> list[Path]:
    """Coadds and Tractor catalog of one brick; returns the files written."""
    wcs = brick.wcs(size)
    x, y = wcs.wcs_world2pix(scene.ra, scene.dec, 0)
    near = (x > -RENDER_HALF) & (x < size + RENDER_HALF) & (y > -RENDER_HALF) & (y < size + RENDER_HALF)
    inside = (np.floor(x + 0.5) >= 0) & (np.floor(x + 0.5) < size) \
        & (np.floor(y + 0.5) >= 0) & (np.floor(y + 0.5) < size)
    members = np.flatnonzero(inside)
    cx, cy = np.round(x[members]), np.round(y[members])
    masked = [(x[i], y[i]) for i in members if scene.masked[i] and scene.owner[i] == brick]
    maskbits = _maskbits(rng, brick, wcs, size, cx, cy, masked)
    header = _header(brick, wcs)
    files = []
    fwhms = {}
    for band in dm.BANDS:
        fwhm = _psf_fwhm(brick.brickid, band)
        sigma = _pixel_sigma(fwhm, band)
        model = np.zeros((size, size), np.float32)
        flux = scene.flux(band)
        for i in np.flatnonzero(near):
            _render(model, x[i], y[i], flux[i], _covariance(scene, i, fwhm))
        pix = np.arange(size)
        depth = 1 + 0.25 * np.outer(np.cos(2 * np.pi * pix / 2300.0),
                                    np.sin(2 * np.pi * pix / 1700.0 + brick.brickid))
        # coadd weights vary pixel to pixel (resampling, masked input pixels) by a few %
        wobble = 1 + 0.03 * rng.standard_normal((size, size), dtype=np.float32)
        invvar = (depth * wobble / sigma**2).astype(np.float32)
        bad = (maskbits & np.int32((1 << dm.MASKBITS[f"SATUR_{band.upper()}"])
                                   | (1 << dm.MASKBITS[f"ALLMASK_{band.upper()}"]))) != 0
        invvar[bad] = 0.0
        with np.errstate(divide="ignore"):
            pix_sigma = np.where(invvar > 0, 1 / np.sqrt(invvar), 0.0)
        image = model + noise * rng.standard_normal((size, size), dtype=np.float32) * pix_sigma
        image[bad] = 0.0
        fwhms[band] = fwhm
        for kind, data in (("image", image.astype(np.float32)), ("invvar", invvar)):
            h = header.copy()
            h["FILTERX"] = (band, "Filter short name")
            h["IMTYPE"] = (kind, "LegacySurveys image type")
            h["PRODTYPE"] = ("image" if kind == "image" else "wtmap", "NOIRLab image type")
            if kind == "image":
                h["MAGZERO"] = (dm.MAG_ZERO_POINT, "Magnitude zeropoint")
                h["BUNIT"] = (dm.FLUX_UNIT, "AB mag = 22.5 - 2.5*log10(nanomaggy)")
            else:
                h["BUNIT"] = ("1/nanomaggy^2", "Inverse-variance maps")
            path = out / dm.coadd_relpath(brick.name, kind, band)
            _write_fz(path, data, h, f"{kind.upper()}_{band.upper()}", kind)
            files.append(path)
    h = header.copy()
    h["IMTYPE"] = ("maskbits", "LegacySurveys image type")
    for name, bit in dm.MASKBITS.items():
        h[f"HIERARCH MB_{name}"] = (1 << bit, f"maskbit {name}")
    for name, bit in dm.MASKBITS.items():
        h[f"MBIT_{bit}"] = (name, f"maskbit {bit} (0x{1 << bit:x})")
    path = out / dm.coadd_relpath(brick.name, "maskbits")
    _write_fz(path, maskbits, h, "MASKBITS", "maskbits")
    files.append(path)
    cat = _catalog(rng, brick, scene, members, x[members], y[members], maskbits, fwhms)
    files.append(_write_tractor(out / dm.tractor_relpath(brick.name), brick, cat))
    return files


def _catalog(rng: np.random.Generator, brick: Brick, scene: Scene, members: np.ndarray,
             x: np.ndarray, y: np.ndarray, maskbits: np.ndarray,
             fwhms: dict[str, float]) -> dict[str, np.ndarray]:
    """Tractor catalog rows of the objects whose centre is in the brick's images."""
    n = len(members)
    primary = np.array([scene.owner[i] == brick for i in members], bool)
    star = scene.type[members] == b"PSF"
    cols: dict[str, np.ndarray] = {
        "release": np.full(n, RELEASE, np.int16),
        "brickid": np.full(n, brick.brickid, np.int32),
        "brickname": np.full(n, brick.name, "S8"),
        "objid": np.arange(n, dtype=np.int32),
        "brick_primary": primary,
        "maskbits": maskbits[np.floor(y + 0.5).astype(int), np.floor(x + 0.5).astype(int)],
        "fitbits": np.where(star, 0x80, 0).astype(np.int16),
        "type": scene.type[members],
        "ra": scene.ra[members].astype(np.float64),
        "dec": scene.dec[members].astype(np.float64),
        "ra_ivar": np.full(n, 1 / (0.01 / 3600) ** 2, np.float32),
        "dec_ivar": np.full(n, 1 / (0.01 / 3600) ** 2, np.float32),
        "bx": x.astype(np.float32),
        "by": y.astype(np.float32),
        "dchisq": np.sort(rng.uniform(10, 5000, (n, 5)), axis=1).astype(np.float32),
        "ebv": scene.ebv[members].astype(np.float32),
        "mjd_min": rng.uniform(56200, 57500, n),
        "mjd_max": rng.uniform(58000, 59600, n),
        "ref_cat": np.where(star, "G3", "").astype("S2"),
        "ref_id": np.where(star, rng.integers(1, 2**60, n), 0).astype(np.int64),
    }
    for name in ("pmra", "pmdec", "parallax"):
        cols[name] = np.where(star, rng.normal(0, 3, n), 0).astype(np.float32)
    cols["ref_epoch"] = np.where(star, 2016.0, 0).astype(np.float32)
    for name, offset in (("g", 0.0), ("bp", 0.3), ("rp", -0.5)):
        cols[f"gaia_phot_{name}_mean_mag"] = np.where(
            star, scene.mag["r"][members] + offset, 0).astype(np.float32)
    ivar = {}
    for b in dm.MAG_BANDS:
        true = scene.flux(b)[members]
        if b in dm.BANDS:
            fwhm = fwhms[b]
            psfdepth = 1 / (10 ** ((dm.MAG_ZERO_POINT - DEPTH[b]) / 2.5) / 5) ** 2
            size = 1 + (scene.shape_r[members] / (fwhm / 2.3548)) ** 2
            ivar[b] = (psfdepth / size).astype(np.float32)
        else:
            ivar[b] = np.full(n, 1 / (0.3 * (1 + "w1 w2 w3 w4".split().index(b) * 4)) ** 2,
                              np.float32)
        cols[f"flux_{b}"] = (true + rng.normal(0, 1, n) / np.sqrt(ivar[b])).astype(np.float32)
    for b in dm.MAG_BANDS:
        cols[f"flux_ivar_{b}"] = ivar[b]
    for b in dm.BANDS:
        cols[f"fiberflux_{b}"] = (cols[f"flux_{b}"] * np.where(star, 0.78, 0.4)).astype(np.float32)
    for b in dm.BANDS:
        cols[f"fibertotflux_{b}"] = (cols[f"fiberflux_{b}"] * 1.05).astype(np.float32)
    for b in dm.MAG_BANDS:
        cols[f"mw_transmission_{b}"] = scene.transmission(b)[members].astype(np.float32)
    for b in dm.MAG_BANDS:
        cols[f"nobs_{b}"] = rng.integers(1, 9 if b in dm.BANDS else 40, n).astype(np.int16)
    for name, lo, hi in (("rchisq", 0.8, 1.6), ("fracflux", 0.0, 0.1)):
        for b in dm.BANDS:
            cols[f"{name}_{b}"] = rng.uniform(lo, hi, n).astype(np.float32)
    for b in dm.BANDS:
        cols[f"fracmasked_{b}"] = np.zeros(n, np.float32)
    for b in dm.BANDS:
        cols[f"fracin_{b}"] = rng.uniform(0.98, 1.0, n).astype(np.float32)
    for name in ("anymask", "allmask"):
        for b in dm.BANDS:
            cols[f"{name}_{b}"] = np.zeros(n, np.int16)
    for b in dm.BANDS:
        cols[f"psfsize_{b}"] = np.full(n, fwhms[b], np.float32)
    for b in dm.BANDS:
        cols[f"psfdepth_{b}"] = np.full(n, 1 / (10 ** ((dm.MAG_ZERO_POINT - DEPTH[b]) / 2.5)
                                              / 5) ** 2, np.float32)
    for b in dm.BANDS:
        cols[f"galdepth_{b}"] = (cols[f"psfdepth_{b}"] * 0.6).astype(np.float32)
    for b in dm.BANDS:
        cols[f"nea_{b}"] = np.full(n, 4 * np.pi * (fwhms[b] / 2.3548 / dm.PIXEL_SCALE) ** 2,
                                   np.float32)
    cols["wisemask_w1"] = np.zeros(n, np.uint8)
    cols["wisemask_w2"] = np.zeros(n, np.uint8)
    cols["sersic"] = scene.sersic[members].astype(np.float32)
    cols["sersic_ivar"] = np.where(scene.type[members] == b"SER", 4.0, 0).astype(np.float32)
    cols["shape_r"] = scene.shape_r[members].astype(np.float32)
    cols["shape_r_ivar"] = np.where(star, 0, 100.0).astype(np.float32)
    cols["shape_e1"] = scene.e1[members].astype(np.float32)
    cols["shape_e1_ivar"] = np.where(star, 0, 400.0).astype(np.float32)
    cols["shape_e2"] = scene.e2[members].astype(np.float32)
    cols["shape_e2_ivar"] = np.where(star, 0, 400.0).astype(np.float32)
    return cols


_UNITS = {"ra": "deg", "dec": "deg", "ra_ivar": "1/deg^2", "dec_ivar": "1/deg^2", "ebv": "mag",
          "shape_r": "arcsec", "shape_r_ivar": "1/arcsec^2", "pmra": "mas/yr",
          "pmdec": "mas/yr", "parallax": "mas", "bx": "pix", "by": "pix", "mjd_min": "days",
          "mjd_max": "days", "ref_epoch": "yr"}
_BAND_UNITS = {"flux": "nanomaggy", "flux_ivar": "1/nanomaggy^2", "fiberflux": "nanomaggy",
               "fibertotflux": "nanomaggy", "psfsize": "arcsec", "psfdepth": "1/nanomaggy^2",
               "galdepth": "1/nanomaggy^2", "nea": "pix"}


def _unit(name: str) -> str | None:
    if name in _UNITS:
        return _UNITS[name]
    stem = name.rsplit("_", 1)[0]
    return _BAND_UNITS.get(stem)


def _write_tractor(path: Path, brick: Brick, cat: dict[str, np.ndarray]) -> Path:
    formats = {"i2": "I", "i4": "J", "i8": "K", "f4": "E", "f8": "D", "u1": "B", "b1": "L"}
    columns = []
    for name, v in cat.items():
        if v.dtype.kind == "S":
            fmt = f"{v.dtype.itemsize}A"
        else:
            fmt = formats[v.dtype.str[1:]]
            if v.ndim == 2:
                fmt = f"{v.shape[1]}{fmt}"
        columns.append(fits.Column(name=name, format=fmt, array=v, unit=_unit(name)))
    table = fits.BinTableHDU.from_columns(columns)
    primary = fits.PrimaryHDU()
    for k, b in enumerate(dm.BANDS):
        primary.header[f"BAND{k}"] = (b, f"Band name in this catalog ({k})")
    primary.header["BRICK"] = brick.name
    primary.header["BRICKID"] = brick.brickid
    primary.header["RELEASE"] = RELEASE
    for name, bit in dm.MASKBITS.items():
        primary.header[f"MBIT_{bit}"] = (name, f"maskbit {bit} (0x{1 << bit:x})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([primary, table]).writeto(path, overwrite=True)
    return path


# ---- Stein et al. ----------------------------------------------------------------------------
def _stein_rows(rng: np.random.Generator, out: Path, scene: Scene, per_file: int,
                noise: float) -> list[Path]:
    rows = np.flatnonzero(scene.type != b"PSF")
    if len(rows) == 0:
        return []
    flux_z = scene.flux("z")[rows]
    rows = rows[np.argsort(-flux_z, kind="stable")]  # the release: decreasing z flux
    n = len(rows)
    npix, bands = dm.STEIN_NPIX, dm.STEIN_BANDS
    images = np.zeros((n, len(bands), npix, npix), np.float32)
    for k, i in enumerate(rows):
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [scene.ra[i], scene.dec[i]]
        w.wcs.crpix = [npix / 2 + 0.5, npix / 2 + 0.5]
        w.wcs.cd = np.array([[-dm.PIXEL_SCALE / 3600, 0.0], [0.0, dm.PIXEL_SCALE / 3600]])
        near = np.flatnonzero(separation(scene.ra[i], scene.dec[i], scene.ra, scene.dec)
                              < (npix * 0.75 + RENDER_HALF) * dm.PIXEL_SCALE / 3600)
        x, y = w.wcs_world2pix(scene.ra[near], scene.dec[near], 0)
        brick = scene.owner[i]
        for c, band in enumerate(bands):
            fwhm = _psf_fwhm(brick.brickid, band)
            flux = scene.flux(band)
            for j, xj, yj in zip(near, x, y, strict=True):
                _render(images[k, c], xj, yj, flux[j], _covariance(scene, j, fwhm))
            images[k, c] += noise * _pixel_sigma(fwhm, band) * rng.standard_normal(
                (npix, npix), dtype=np.float32)
    psfsize = np.array([[_psf_fwhm(scene.owner[i].brickid, b) for b in bands] for i in rows],
                       np.float32)
    flux = np.stack([scene.flux(b)[rows] for b in bands], axis=1)
    depth = np.array([1 / (10 ** ((dm.MAG_ZERO_POINT - DEPTH[b]) / 2.5) / 5) ** 2 for b in bands])
    measured = (flux + rng.normal(0, 1, flux.shape) / np.sqrt(depth)).astype(np.float32)
    has_z = rng.uniform(size=n) < 0.2
    zphot = rng.uniform(0.02, 1.2, n)
    fields = {
        "ra": scene.ra[rows].astype(np.float64),
        "dec": scene.dec[rows].astype(np.float64),
        "release": np.full(n, STEIN_RELEASE, np.int16),
        "brickid": np.array([scene.owner[i].brickid for i in rows], np.int32),
        "objid": rng.integers(0, 8000, n).astype(np.int32),
        "z_spec": np.where(has_z, zphot + rng.normal(0, 0.01, n), -99.0).astype(np.float32),
        "ebv": scene.ebv[rows].astype(np.float32),
        "flux": measured,
        "fiberflux": (measured * 0.4).astype(np.float32),
        "psfdepth": np.tile(depth.astype(np.float32), (n, 1)),
        "psfsize": psfsize,
        "maskbits": np.zeros(n, np.int16),
        "nobs": rng.integers(1, 9, (n, len(bands))).astype(np.int16),
        "source_type": scene.type[rows].astype("S3"),
        "transmission": np.stack([scene.transmission(b)[rows] for b in bands],
                                 axis=1).astype(np.float32),
        "fracin": rng.uniform(0.98, 1.0, (n, len(bands))).astype(np.float32),
        "z_phot_mean": zphot.astype(np.float32),
        "z_phot_median": zphot.astype(np.float32),
        "z_phot_std": np.full(n, 0.05, np.float32),
        "z_phot_l68": (zphot - 0.05).astype(np.float32),
        "z_phot_u68": (zphot + 0.05).astype(np.float32),
        "z_phot_l95": (zphot - 0.1).astype(np.float32),
        "z_phot_u95": (zphot + 0.1).astype(np.float32),
    }
    files = []
    folder = out / "images" / "south"
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, n, per_file):
        stop = min(start + per_file, n)
        path = folder / dm.stein_name(start, stop)
        with h5py.File(path, "w") as f:
            f.create_dataset("images", data=images[start:stop])
            f.create_dataset("inds", data=np.arange(start, stop, dtype=np.int64))
            for name, values in fields.items():
                f.create_dataset(name, data=values[start:stop])
        files.append(path)
    return files


# ---- entry point ---------------------------------------------------------------------------
def write_sample(request: SampleRequest) -> SampleResult:
    """Write bricks and/or Stein et al. files into ``request.out_dir`` (see the module doc)."""
    opts: dict[str, Any] = {o.name: o.default for o in SAMPLE_OPTIONS}
    opts.update({k: v for k, v in request.options.items() if v is not None})
    layout = str(opts["layout"])
    if layout not in ("both", "bricks", "stein"):
        raise ValueError(f"layout must be both, bricks or stein, got {layout!r}")
    size = int(opts["brick_size"])
    if size < dm.STAMP_SIZE:
        raise ValueError(f"brick_size must be at least {dm.STAMP_SIZE} pixels, got {size}")
    per_file = int(opts["stein_rows_per_file"])
    if per_file < 1:
        raise ValueError(f"stein_rows_per_file must be positive, got {per_file}")
    fixed = requested_positions(request, request.n)
    for ra, dec in zip(*fixed, strict=True):
        brick = brick_at(ra, dec)
        x, y = brick.wcs(size).wcs_world2pix(ra, dec, 0)
        if not (0 <= np.floor(x + 0.5) < size and 0 <= np.floor(y + 0.5) < size):
            raise ValueError(f"position ({ra}, {dec}) is outside the {size}-pixel images of "
                             f"brick {brick.name}; use a larger --brick-size")
    rng = np.random.default_rng(request.seed)
    ra, dec = _draw_positions(rng, request, opts, fixed)
    notes = []
    if len(ra) < request.n:
        notes.append(f"only {len(ra)} of {request.n} objects fit in the cone with "
                     f"min_separation={opts['min_separation']} arcsec")
    scene = _draw_scene(rng, ra, dec, len(fixed[0]), opts)
    out = Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    noise = float(opts["noise"])
    if layout in ("both", "bricks"):
        bricks = {b.name: b for b in scene.owner}
        for name in sorted(bricks):
            files += _write_brick(rng, out, bricks[name], scene, size, noise)
    if layout in ("both", "stein"):
        files += _stein_rows(rng, out, scene, per_file, noise)
    return SampleResult(files=[str(p) for p in files], n_objects=len(ra), notes=notes)
