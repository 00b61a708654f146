"""Legacy Surveys DR10 (south) and Stein et al. (2021) naming conventions and column facts.

DR10 south is processed in "bricks", 0.25° boxes of sky named ``RRRr[pm]DDd`` after their
centre (``1126p222``: RA 112.6, Dec +22.2). Per brick the archive serves, below the release's
``south/`` folder,

- ``coadd/<AAA>/<brick>/legacysurvey-<brick>-image-<band>.fits.fz`` (nanomaggies),
  ``...-invvar-<band>.fits.fz`` (1/nanomaggy²) and ``...-maskbits.fits.fz`` (int32 bits), each
  one fpack-compressed image in HDU 1, 3600 x 3600 pixels of 0.262″ on a TAN projection
  centred on the brick;
- ``tractor/<AAA>/tractor-<brick>.fits``, the Tractor catalog (HDU 1, lower-case columns);

``<AAA>`` being the first three characters of the brick name. DR10 south has g, r, i and z.

The Stein et al. cutouts are HDF5 files ``images_npix152_<start>_<end>.h5`` of up to a
million objects each, in a ``south/`` or ``north/`` folder, each dataset one row per object.
Everything that formats or parses those names lives here; nothing here reads files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BANDS = ("g", "r", "i", "z")  # DR10 south optical bands, in stored order
WISE_BANDS = ("w1", "w2", "w3", "w4")
# Stored band names follow MMU v1 (its filters were called DES-G ... DES-Z).
BAND_NAMES = tuple(f"des-{b}" for b in BANDS)
PIXEL_SCALE = 0.262  # arcsec per coadd pixel
BRICK_PIXELS = 3600  # side of a brick's coadd images
STAMP_SIZE = 160  # MMU v1's cutout side
FLUX_UNIT = "nanomaggy"  # coadd and catalog fluxes; AB mag = 22.5 - 2.5 log10(flux)
MAG_ZERO_POINT = 22.5

# DR10 maskbits (the bit of each name; a file's header may restate them as MBIT_<n> = name).
MASKBITS = {
    "NPRIMARY": 0, "BRIGHT": 1, "SATUR_G": 2, "SATUR_R": 3, "SATUR_Z": 4, "ALLMASK_G": 5,
    "ALLMASK_R": 6, "ALLMASK_Z": 7, "WISEM1": 8, "WISEM2": 9, "BAILOUT": 10, "MEDIUM": 11,
    "GALAXY": 12, "CLUSTER": 13, "SATUR_I": 14, "ALLMASK_I": 15, "SUB_BLOB": 16,
}
# MMU v1's clean pixels and objects: none of these set (bits 0-7, 11, 14, 15): outside the
# brick's own area, near bright or medium stars, saturated or fully masked in an optical band.
BAD_MASKBITS = ("NPRIMARY", "BRIGHT", "SATUR_G", "SATUR_R", "SATUR_Z", "ALLMASK_G",
                "ALLMASK_R", "ALLMASK_Z", "MEDIUM", "SATUR_I", "ALLMASK_I")

# dr10_south_21 (MMU v1): z-band magnitude, corrected for Galactic extinction, below 21.
ZMAG_LIMIT = 21.0

_BRICK = r"\d{4}[pm]\d{3}"
BRICK_RE = re.compile(rf"^{_BRICK}$")
TRACTOR_RE = re.compile(rf"^tractor-(?P<brick>{_BRICK})\.fits$")
COADD_RE = re.compile(
    rf"^legacysurvey-(?P<brick>{_BRICK})-(?:(?P<kind>image|invvar)-(?P<band>[A-Za-z0-9]+)"
    r"|(?P<maskbits>maskbits))\.fits\.fz$")
STEIN_RE = re.compile(r"^images_npix(?P<npix>\d+)_(?P<start>\d+)_(?P<end>\d+)\.h5$")
STEIN_REGIONS = ("south", "north")


def brick_centre(brick: str) -> tuple[float, float]:
    """``1126p222`` -> (112.6, 22.2): the centre a brick name encodes (to 0.1°)."""
    if not BRICK_RE.match(brick):
        raise ValueError(f"{brick!r} is not a brick name (RRRr[pm]DDd)")
    sign = 1.0 if brick[4] == "p" else -1.0
    return int(brick[:4]) / 10.0, sign * int(brick[5:]) / 10.0


def brick_name(ra: float, dec: float) -> str:
    """The name of a brick centred on (ra, dec): RA and |Dec| in tenths of a degree."""
    return f"{int(np.floor(ra * 10 + 1e-6)) % 3600:04d}{'p' if dec >= 0 else 'm'}" \
           f"{int(np.floor(abs(dec) * 10 + 1e-6)):03d}"


def coadd_name(brick: str, kind: str, band: str | None = None) -> str:
    """``legacysurvey-<brick>-image-g.fits.fz``; ``kind`` is image, invvar or maskbits."""
    if kind == "maskbits":
        return f"legacysurvey-{brick}-maskbits.fits.fz"
    return f"legacysurvey-{brick}-{kind}-{band}.fits.fz"


def coadd_relpath(brick: str, kind: str, band: str | None = None) -> Path:
    """The archive's layout below ``south/``: ``coadd/112/1126p222/legacysurvey-...``."""
    return Path("coadd") / brick[:3] / brick / coadd_name(brick, kind, band)


def tractor_relpath(brick: str) -> Path:
    """``tractor/112/tractor-1126p222.fits``."""
    return Path("tractor") / brick[:3] / f"tractor-{brick}.fits"


def stein_name(start: int, end: int, npix: int = 152) -> str:
    """``images_npix152_000000000_001000000.h5``: the file of rows ``start`` .. ``end - 1``."""
    return f"images_npix{npix}_{start:09d}_{end:09d}.h5"


def object_id(brick: str, objid: int) -> bytes:
    """MMU v1's object id ``<brickname>-<objid>``, e.g. ``b'1126p222-1234'``."""
    return f"{brick}-{int(objid)}".encode()


OBJECT_ID_DTYPE = "S20"  # 8-character brick, '-', an int32 objid


@dataclass(frozen=True)
class Column:
    """One stored native column: its name, stored dtype, description; ``required`` columns
    must be in every input file, the others are filled (NaN, -1, empty, False) when absent."""

    name: str
    dtype: str
    description: str
    required: bool = False

    @property
    def fill(self) -> object:
        kind = np.dtype(self.dtype).kind
        return {"f": np.nan, "i": -1, "u": 0, "b": False}.get(kind, b"")

    def empty(self, n: int) -> np.ndarray:
        return np.full(n, self.fill, dtype=self.dtype)


def _per_band(template: str, dtype: str, description: str, bands, required=False):
    return [Column(template.format(b=b), dtype, description.format(b=b), required)
            for b in bands]


# Scalar Tractor catalog columns stored (names and dtypes of the DR10 catalog data model;
# the array columns dchisq, apflux_*, lc_* are not stored).
TRACTOR_COLUMNS: list[Column] = [
    Column("release", "i2", "Legacy Surveys release (camera and filter set)"),
    Column("brickid", "i4", "brick id"),
    Column("brickname", "S8", "brick name, e.g. 1126p222", True),
    Column("objid", "i4", "object number within the brick", True),
    Column("brick_primary", "?", "True if the object lies within the brick's own area", True),
    Column("maskbits", "i4", "maskbits at the object's centre (DR10 bitmasks)", True),
    Column("fitbits", "i2", "how the object was fit (DR10 bitmasks)"),
    Column("type", "S3", "morphological model: PSF, REX, DEV, EXP, SER, DUP", True),
    Column("ra", "f8", "right ascension, deg (J2000)", True),
    Column("dec", "f8", "declination, deg (J2000)", True),
    Column("ra_ivar", "f4", "inverse variance of RA (no cos term), 1/deg^2"),
    Column("dec_ivar", "f4", "inverse variance of Dec, 1/deg^2"),
    Column("bx", "f4", "x position in the brick's coadd images (0-indexed), pix"),
    Column("by", "f4", "y position in the brick's coadd images (0-indexed), pix"),
    Column("ebv", "f4", "Galactic E(B-V) from SFD98, mag"),
    Column("mjd_min", "f8", "earliest MJD of the images used, days"),
    Column("mjd_max", "f8", "latest MJD of the images used, days"),
    Column("ref_cat", "S2", "reference catalog: G2 (Gaia DR2), G3, T2 (Tycho-2), L3 (SGA), empty"),
    Column("ref_id", "i8", "id in the reference catalog"),
    Column("pmra", "f4", "reference proper motion in RA, mas/yr"),
    Column("pmdec", "f4", "reference proper motion in Dec, mas/yr"),
    Column("parallax", "f4", "reference parallax, mas"),
    Column("ref_epoch", "f4", "reference epoch, yr"),
    Column("gaia_phot_g_mean_mag", "f4", "Gaia G magnitude"),
    Column("gaia_phot_bp_mean_mag", "f4", "Gaia BP magnitude"),
    Column("gaia_phot_rp_mean_mag", "f4", "Gaia RP magnitude"),
    *_per_band("flux_{b}", "f4", "{b} model flux, nanomaggies", BANDS, True),
    *_per_band("flux_{b}", "f4", "WISE {b} model flux, nanomaggies (AB)", WISE_BANDS),
    *_per_band("flux_ivar_{b}", "f4", "inverse variance of flux_{b}, 1/nanomaggy^2",
               BANDS + WISE_BANDS),
    *_per_band("fiberflux_{b}", "f4", "{b} flux in a 1.5 arcsec fiber, nanomaggies", BANDS),
    *_per_band("fibertotflux_{b}", "f4", "{b} flux in a 1.5 arcsec fiber, all models, "
               "nanomaggies", BANDS),
    *_per_band("mw_transmission_{b}", "f4", "Galactic transmission in {b}, linear [0, 1]",
               BANDS, True),
    *_per_band("mw_transmission_{b}", "f4", "Galactic transmission in WISE {b}, linear",
               WISE_BANDS),
    *_per_band("nobs_{b}", "i2", "number of {b} images at the object's centre", BANDS, True),
    *_per_band("nobs_{b}", "i2", "number of WISE {b} images", WISE_BANDS),
    *_per_band("rchisq_{b}", "f4", "profile-weighted chi^2 per pixel in {b}", BANDS),
    *_per_band("fracflux_{b}", "f4", "profile-weighted flux fraction from other sources, {b}",
               BANDS),
    *_per_band("fracmasked_{b}", "f4", "profile-weighted fraction of masked pixels, {b}",
               BANDS),
    *_per_band("fracin_{b}", "f4", "fraction of the model flux inside the images, {b}", BANDS),
    *_per_band("anymask_{b}", "i2", "OR of the {b} image masks at the centre", BANDS),
    *_per_band("allmask_{b}", "i2", "AND of the {b} image masks at the centre", BANDS),
    *_per_band("psfsize_{b}", "f4", "weighted average PSF FWHM in {b}, arcsec", BANDS, True),
    *_per_band("psfdepth_{b}", "f4", "5-sigma point-source depth in {b}, 1/nanomaggy^2",
               BANDS),
    *_per_band("galdepth_{b}", "f4", "5-sigma galaxy depth in {b}, 1/nanomaggy^2", BANDS),
    *_per_band("nea_{b}", "f4", "noise-equivalent area in {b}, pix", BANDS),
    Column("wisemask_w1", "u1", "WISE W1 bright-star mask bits"),
    Column("wisemask_w2", "u1", "WISE W2 bright-star mask bits"),
    Column("sersic", "f4", "Sersic index"),
    Column("sersic_ivar", "f4", "inverse variance of sersic"),
    Column("shape_r", "f4", "half-light radius, arcsec"),
    Column("shape_r_ivar", "f4", "inverse variance of shape_r, 1/arcsec^2"),
    Column("shape_e1", "f4", "ellipticity component 1"),
    Column("shape_e1_ivar", "f4", "inverse variance of shape_e1"),
    Column("shape_e2", "f4", "ellipticity component 2"),
    Column("shape_e2_ivar", "f4", "inverse variance of shape_e2"),
]

STAMP_WCS_COLUMNS = {
    "wcs_ctype1": "stamp WCS CTYPE1 (RA---TAN)", "wcs_ctype2": "stamp WCS CTYPE2 (DEC--TAN)",
    "wcs_crval1": "stamp WCS CRVAL1, deg", "wcs_crval2": "stamp WCS CRVAL2, deg",
    "wcs_crpix1": "stamp WCS CRPIX1 (1-based; the brick's, moved to the stamp)",
    "wcs_crpix2": "stamp WCS CRPIX2 (1-based)",
    "wcs_cd": "stamp WCS pixel-scale matrix (2x2, deg/pixel)",
}

MAG_BANDS = BANDS + WISE_BANDS
# Columns the plugin computes from the catalog's (derived, not in the Tractor files).
DERIVED_COLUMNS: list[Column] = [
    *_per_band("model_mag_{b}", "f4", "22.5 - 2.5 log10(flux_{b}): AB magnitude, not "
               "corrected for extinction; NaN where flux_{b} <= 0", MAG_BANDS),
    *_per_band("model_mag_err_{b}", "f4", "magnitude error 2.5 / ln 10 / (flux_{b} "
               "sqrt(flux_ivar_{b})); NaN where undefined", MAG_BANDS),
    *_per_band("mw_extinction_{b}", "f4", "-2.5 log10(mw_transmission_{b}): Galactic "
               "extinction, mag", MAG_BANDS),
]


# ---- Stein et al. (2021) -------------------------------------------------------------------
STEIN_BANDS = ("g", "r", "z")
STEIN_BAND_NAMES = tuple(f"des-{b}" for b in STEIN_BANDS)
STEIN_IMAGE = "images"  # (N, 3, 152, 152) float32: g, r, z cutouts
STEIN_NPIX = 152


@dataclass(frozen=True)
class SteinField:
    """One HDF5 dataset of a Stein file: its name, dtype, whether it holds one value per band
    (shape (N, 3), stored as ``<name>_g``, ``<name>_r``, ``<name>_z``) and whether MMU v1 read
    it (required) or it is only listed by the data release (filled when absent)."""

    name: str
    dtype: str
    description: str
    per_band: bool = False
    required: bool = False

    def columns(self) -> list[Column]:
        if not self.per_band:
            return [Column(self.name, self.dtype, self.description, self.required)]
        return [Column(f"{self.name}_{b}", self.dtype, f"{self.description} ({b})",
                       self.required) for b in STEIN_BANDS]


STEIN_FIELDS: list[SteinField] = [
    SteinField("inds", "i8", "row of the object in the release's ordering", required=True),
    SteinField("ra", "f8", "right ascension, deg", required=True),
    SteinField("dec", "f8", "declination, deg", required=True),
    SteinField("release", "i2", "Legacy Surveys DR9 release", required=True),
    SteinField("brickid", "i4", "DR9 brick id", required=True),
    SteinField("objid", "i4", "object number within the brick", required=True),
    SteinField("z_spec", "f4", "spectroscopic redshift, -99 where none", required=True),
    SteinField("ebv", "f4", "Galactic E(B-V) from SFD98, mag", required=True),
    SteinField("flux", "f4", "DR9 model flux, nanomaggies", per_band=True, required=True),
    SteinField("fiberflux", "f4", "flux in a 1.5 arcsec fiber, nanomaggies", per_band=True,
               required=True),
    SteinField("psfdepth", "f4", "5-sigma point-source depth, 1/nanomaggy^2", per_band=True,
               required=True),
    SteinField("psfsize", "f4", "weighted average PSF FWHM, arcsec", per_band=True,
               required=True),
    SteinField("maskbits", "i2", "DR9 maskbits at the object's centre"),
    SteinField("nobs", "i2", "number of images at the object's centre", per_band=True),
    SteinField("source_type", "S3", "DR9 morphological model (PSF, REX, DEV, EXP, SER)"),
    SteinField("transmission", "f4", "Galactic transmission, linear", per_band=True),
    SteinField("fracin", "f4", "fraction of the model flux inside the images", per_band=True),
    *[SteinField(f"z_phot_{s}", "f4", f"photometric redshift, {d}") for s, d in (
        ("mean", "mean"), ("median", "median"), ("std", "standard deviation"),
        ("l68", "lower 68% bound"), ("u68", "upper 68% bound"), ("l95", "lower 95% bound"),
        ("u95", "upper 95% bound"))],
]
STEIN_COLUMNS: list[Column] = [c for f in STEIN_FIELDS for c in f.columns()]
STEIN_DERIVED: list[Column] = [
    *_per_band("model_mag_{b}", "f4", "22.5 - 2.5 log10(flux_{b}): AB magnitude, not "
               "corrected for extinction; NaN where flux_{b} <= 0", STEIN_BANDS),
    *_per_band("mw_extinction_{b}", "f4", "-2.5 log10(transmission_{b}): Galactic "
               "extinction, mag (NaN without transmission)", STEIN_BANDS),
    Column("region", "S5", "the Stein et al. folder the row comes from: south or north"),
]
# Object ids: ``inds`` in the south, ``inds + 2**40`` in the north (each region counts from 0).
STEIN_REGION_OFFSET = {"south": 0, "north": 1 << 40}
