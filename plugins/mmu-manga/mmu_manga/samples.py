"""Synthetic MaNGA DR17 inputs in the official layout: ``mmu sample manga``.

Writes, for each galaxy, a gzipped DRP LOGCUBE (``FLUX``, ``IVAR``, ``MASK``, ``LSFPOST``,
``LSFPRE``, ``WAVE``, ``SPECRES``, ``SPECRESD``, ``OBSINFO``, ``GIMG``..``ZIMG``,
``GPSF``..``ZPSF``; FITS order (wavelength, y, x), big-endian, CD-form WCS) and a gzipped DAP
``MAPS-{DAPTYPE}`` file written as the DAP writes it (docs/surveys.md): each map's WCS is the
cube's passed through astropy (PC matrix, CDELT = 1; a dummy third axis on multi-channel
maps), channels named in ``C<n>`` keys zero-padded to the digits of the channel count (``C1``,
``C2`` on ``SPX_SKYCOO``; ``C01``.. on the emission-line maps), per-channel ``U<n>`` units only
where the DAP gives them (``SPX_ELLCOO``, ``SPECINDEX``; one ``BUNIT`` elsewhere), and
``ERRDATA``/``QUALDATA`` companions. Plus ``drpall-{drpver}.fits`` (HDU ``MANGA``) and the
dapall (DAP 3.1.0: one HDU per DAPTYPE; DAP 2.2.1: one ``DAPALL`` HDU with a DAPTYPE column).
``dapver=3.1.0`` (DR17: DRP v3_1_1, ``HYB10-MILESHC-MASTARSSP``, 35 emission lines) or
``2.2.1`` (MPL-7/DR15: DRP v2_4_3, ``HYB10-GAU-MILESHC``, 22 lines). Layout: the SAS tree
(``dr17/manga/spectro/redux/{drpver}/{plate}/stack/...``) or, with ``layout=flat``, one folder.

Cube sizes follow the IFU (19, 37, 61, 91, 127 fibres -> 32, 42, 54, 64, 74 spaxels); each
plate carries the 17 science bundles of a real MaNGA plate. A galaxy is an inclined
exponential disk whose spectrum blends an old (strong 4000 A break) and a young population,
with absorption lines, and Gaussian emission lines (H alpha, [N II], H beta, [O III],
[O II], [S II], [O I]) at ``nsa_z`` shifted by a rotating velocity field and broadened by the
LSF; noise follows IVAR. Coverage is the bundle's hexagon: spaxels outside are NOCOV|DONOTUSE
with zero flux and ivar, as in real cubes. Everything is reproducible from the seed (the gzip
header carries no time stamp).
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from mmu_core.errors import InputError
from mmu_core.models import OptionInfo, SampleRequest, SampleResult
from mmu_core.sampling import cone_positions
from mmu_manga import datamodel as dm

C_KMS = 299_792.458
GZIP_LEVEL = 1  # noise does not compress much anyway; level 1 is ~5x faster than 9

SAMPLE_OPTIONS = [
    OptionInfo(name="layout", kind="str", default="sas",
               help="'sas' (the SDSS SAS folder tree) or 'flat' (all files in one folder)"),
    OptionInfo(name="nwave", kind="int", default=dm.NWAVE,
               help="wavelengths per spectrum; DR17 has 4563 (fewer only for quick tests)"),
    OptionInfo(name="bundles", kind="str", default="19,37,61,91,127",
               help="IFU sizes (fibres) to use, e.g. '19' for small 32x32 cubes only"),
    OptionInfo(name="repeats", kind="int", default=0,
               help="extra cubes re-observing already sampled galaxies on another plate"),
    OptionInfo(name="dapver", kind="str", default=dm.DAPVER,
               help="DAP version of the MAPS and dapall files: 3.1.0 (DR17, 35 emission "
                    "lines) or 2.2.1 (MPL-7/DR15, 22 lines)"),
    OptionInfo(name="daptype", kind="str", default=None,
               help="DAPTYPE of the MAPS files (default: the version's, HYB10-MILESHC-"
                    "MASTARSSP or HYB10-GAU-MILESHC)"),
]


@dataclass(frozen=True)
class DapRelease:
    """What a DAP version's files look like, for the sample writer."""

    drpver: str
    daptype: str
    emlines: tuple[str, ...]
    dapall_daptypes: tuple[str, ...]
    one_dapall_hdu: bool  # DAP 2.x: one DAPALL table with a DAPTYPE column


DAP_RELEASES = {
    "3.1.0": DapRelease(dm.DRPVER, dm.DAPTYPE, dm.EMLINE_NAMES, dm.DAPALL_EXTENSIONS, False),
    "2.2.1": DapRelease("v2_4_3", "HYB10-GAU-MILESHC", dm.EMLINE_NAMES_DAP2,
                        ("VOR10-GAU-MILESHC", "HYB10-GAU-MILESHC"), True),
}

# Vacuum rest wavelengths (A) and flux relative to H alpha of the emission lines we model.
EMISSION = {
    "OII-3727": (3727.092, 0.35), "OII-3729": (3729.875, 0.45), "Hb-4862": (4862.691, 0.30),
    "OIII-4960": (4960.295, 0.12), "OIII-5008": (5008.240, 0.36), "OI-6302": (6302.046, 0.05),
    "OI-6365": (6365.535, 0.017), "NII-6549": (6549.860, 0.13), "Ha-6564": (6564.632, 1.0),
    "NII-6585": (6585.271, 0.40), "SII-6718": (6718.294, 0.20), "SII-6732": (6732.674, 0.15),
}
# Absorption features of the old population: rest wavelength, fractional depth, sigma (A).
ABSORPTION = ((3934.8, 0.35, 6.0), (3969.6, 0.30, 6.0), (4102.9, 0.10, 5.0), (4305.0, 0.12, 8.0),
              (4862.7, 0.08, 5.0), (5176.0, 0.12, 8.0), (5270.0, 0.05, 6.0), (5895.0, 0.08, 5.0),
              (6564.6, 0.05, 5.0))
# Rough SDSS band ranges (A) and the DRP reconstructed-image PSF FWHM (arcsec).
BANDS = {"g": (4000.0, 5500.0), "r": (5500.0, 6900.0), "i": (6900.0, 8400.0), "z": (8400.0, 10000.0)}


@dataclass
class Galaxy:
    """The parameters of one synthetic observation (one cube)."""

    plate: int
    ifudesign: int
    mangaid: str
    ra: float  # IFU centre
    dec: float
    z: float
    re: float  # arcsec, elliptical Petrosian half-light radius
    ba: float
    phi: float  # degrees, position angle
    vmax: float  # km/s
    sigma_star: float
    sigma_gas: float
    cont0: float  # central continuum, 1e-17 erg/s/cm^2/A/spaxel
    ha0: float  # central H alpha flux, 1e-17 erg/s/cm^2/spaxel
    d4000: float  # central D4000 of the old population
    logmass: float
    nsaid: int
    nexp: int
    ebv: float
    seeing: float
    seed: int

    @property
    def plateifu(self) -> str:
        return dm.plateifu_of(self.plate, self.ifudesign)

    @property
    def fibres(self) -> int:
        return self.ifudesign // 100

    @property
    def size(self) -> int:
        return dm.CUBE_SIZE[self.fibres]

    @property
    def exptime(self) -> float:
        return 900.0 * self.nexp


# ---- targets --------------------------------------------------------------------------------
def parse_bundles(text: str) -> list[int]:
    try:
        sizes = sorted({int(s) for s in str(text).split(",") if s.strip()})
    except ValueError:
        sizes = []
    if not sizes or any(s not in dm.CUBE_SIZE for s in sizes):
        raise InputError(f"bundles must be a comma-separated subset of {sorted(dm.CUBE_SIZE)}, "
                         f"got {text!r}")
    return sizes


def make_galaxies(request: SampleRequest, bundles: list[int], repeats: int) -> list[Galaxy]:
    """n galaxies inside the cone (the first ones at ``request.positions`` when given), on
    plates of 17 bundles, plus ``repeats`` re-observations."""
    rng = np.random.default_rng(request.seed)
    designs = [d for d in dm.PLATE_IFUDESIGNS if d // 100 in bundles]
    plate = 7443 + int(rng.integers(0, 2000))
    free: list[int] = []
    ids = rng.choice(np.arange(100_000, 800_000), size=request.n, replace=False)

    def next_slot() -> tuple[int, int]:
        nonlocal plate, free
        if not free:
            plate += int(rng.integers(1, 20))
            free = list(rng.permutation(designs))
        return plate, int(free.pop())

    out = []
    for k in range(request.n):
        (ra,), (dec,) = cone_positions(request, 1, rng, first=k)
        p, ifu = next_slot()
        # MaNGA matches bundles to galaxies: the IFU reaches 1.5 Re (primary) or 2.5 Re.
        re = _bundle_radius(ifu // 100) / float(rng.uniform(1.4, 2.6))
        out.append(Galaxy(
            plate=p, ifudesign=ifu, mangaid=f"1-{int(ids[k])}", ra=float(ra),
            dec=float(dec),
            z=float(rng.uniform(0.01, 0.15)), re=re, ba=float(rng.uniform(0.3, 1.0)),
            phi=float(rng.uniform(0, 180)), vmax=float(rng.uniform(80, 300)),
            sigma_star=float(rng.uniform(60, 220)), sigma_gas=float(rng.uniform(30, 80)),
            cont0=float(rng.uniform(0.4, 3.0)), ha0=float(10 ** rng.uniform(-0.5, 1.3)),
            d4000=float(rng.uniform(1.3, 2.1)), logmass=float(rng.uniform(9.0, 11.5)),
            nsaid=int(rng.integers(1, 700_000)), nexp=int(rng.integers(6, 13)),
            ebv=float(rng.uniform(0.01, 0.1)), seeing=float(rng.uniform(1.2, 1.8)),
            seed=int(rng.integers(0, 2**31)),
        ))
    for k in range(repeats):
        src = out[k % len(out)]
        p, ifu = next_slot()
        out.append(Galaxy(**{**src.__dict__, "plate": p, "ifudesign": ifu,
                             "nexp": int(rng.integers(3, 13)), "seed": int(rng.integers(0, 2**31))}))
    return out


def wave_grid(nwave: int) -> np.ndarray:
    """The DR17 log-linear grid (vacuum A); ``nwave`` < 4563 spans the same range coarser."""
    step = dm.LOG_WAVE_STEP * (dm.NWAVE - 1) / max(nwave - 1, 1)
    return 10.0 ** (dm.LOG_WAVE_START + step * np.arange(nwave))


def lsf_sigma(wave: np.ndarray) -> np.ndarray:
    """MaNGA-like LSF sigma (A): resolution ~1400 at 3600 A rising to ~2600 at 10300 A."""
    resolution = 1400.0 + 1200.0 * (wave - 3600.0) / 6700.0
    return wave / resolution / 2.3548


# ---- one galaxy: geometry and model ----------------------------------------------------------
@dataclass
class Model:
    """Spatial maps of one galaxy on its cube grid (ny = nx = size)."""

    x: np.ndarray  # arcsec, +x towards +RA (east)
    y: np.ndarray
    inside: np.ndarray  # bool: covered by the bundle's hexagon
    edge: np.ndarray  # bool: covered, within 1 arcsec of the hexagon edge
    r: np.ndarray  # elliptical radius, arcsec
    theta: np.ndarray  # azimuth in the disk plane, radians
    v_star: np.ndarray
    v_gas: np.ndarray
    old: np.ndarray  # continuum of the old population at 5500 A
    young: np.ndarray
    ha: np.ndarray  # H alpha flux per spaxel
    sigma_star: np.ndarray


def _hexagon(x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    ax, ay = np.abs(x), np.abs(y)
    return (ay <= radius * math.sqrt(3) / 2) & (math.sqrt(3) * ax + ay <= math.sqrt(3) * radius)


def _bundle_radius(fibres: int) -> float:
    """Circumradius (arcsec) of a bundle's hexagon: fibre pitch 2.5", fibre radius 1",
    dithers 0.5"."""
    rings = {19: 2, 37: 3, 61: 4, 91: 5, 127: 6}[fibres]
    return rings * 2.5 + 1.75


def galaxy_model(g: Galaxy) -> Model:
    n = g.size
    hex_radius = _bundle_radius(g.fibres)
    c = (np.arange(n) - (n - 1) / 2.0) * dm.SPAXEL_SIZE
    y, x = np.meshgrid(c, c, indexing="ij")
    x = -x  # the cube's x axis runs towards decreasing RA (CD1_1 < 0)
    inside = _hexagon(x, y, hex_radius)
    edge = inside & ~_hexagon(x, y, hex_radius - 1.0)
    pa = math.radians(g.phi)
    xp = x * math.sin(pa) + y * math.cos(pa)  # along the major axis
    yp = -x * math.cos(pa) + y * math.sin(pa)
    r = np.hypot(xp, yp / g.ba)
    theta = np.arctan2(yp / g.ba, xp)
    h = g.re / 1.678
    sin_i = math.sqrt(max(0.0, 1.0 - g.ba**2))
    rotation = np.tanh(r / (0.5 * h)) * np.cos(theta) * sin_i
    old = g.cont0 * np.exp(-r / (0.7 * h))
    young = 0.35 * g.cont0 * np.exp(-r / (1.4 * h))
    return Model(
        x=x, y=y, inside=inside, edge=edge, r=r, theta=theta,
        v_star=0.8 * g.vmax * rotation, v_gas=g.vmax * rotation,
        old=old, young=young, ha=g.ha0 * np.exp(-r / (1.3 * h)),
        sigma_star=g.sigma_star * np.exp(-r / (2.0 * g.re)) + 25.0,
    )


def _planck(rest: np.ndarray, temperature: float) -> np.ndarray:
    """Black-body f_lambda shape, 1 at 5500 A."""
    def b(lam: np.ndarray | float) -> np.ndarray:
        return lam**-5.0 / np.expm1(1.4388e8 / (lam * temperature))  # hc/k = 1.4388e8 A K
    return b(rest) / b(5500.0)


def continuum_shapes(wave: np.ndarray, z: float, d4000: float) -> tuple[np.ndarray, np.ndarray]:
    """Old (cool, strong 4000 A break, absorption lines) and young (hot, weak break)
    continua vs observed wavelength, 1 at rest 5500 A."""
    rest = wave / (1 + z)
    step = 1.0 / (1.0 + np.exp(-(rest - 4000.0) / 25.0))
    old = _planck(rest, 4800.0) * (1.0 / d4000 + (1.0 - 1.0 / d4000) * step)
    for lam, depth, sig in ABSORPTION:
        old *= 1.0 - depth * np.exp(-0.5 * ((rest - lam) / sig) ** 2)
    young = _planck(rest, 12000.0) * (1.0 / 1.15 + (1.0 - 1.0 / 1.15) * step)
    return old.astype(np.float32), young.astype(np.float32)


def build_cube(g: Galaxy, m: Model, wave: np.ndarray) -> dict[str, np.ndarray]:
    """FLUX, IVAR, MASK, LSFPOST, LSFPRE arrays in FITS order (wavelength, y, x)."""
    rng = np.random.default_rng(g.seed)
    nw, n = len(wave), g.size
    old_shape, young_shape = continuum_shapes(wave, g.z, g.d4000)
    flux = np.multiply.outer(old_shape, m.old.astype(np.float32))
    flux += np.multiply.outer(young_shape, m.young.astype(np.float32))
    lsf1 = lsf_sigma(wave)
    for lam, ratio in EMISSION.values():
        centre = lam * (1 + g.z) * (1 + m.v_gas / C_KMS)  # (n, n)
        sigma = np.hypot(centre * g.sigma_gas / C_KMS, np.interp(centre, wave, lsf1))
        lo = np.searchsorted(wave, centre.min() - 8 * sigma.max())
        hi = np.searchsorted(wave, centre.max() + 8 * sigma.max())
        if hi <= lo:
            continue
        w = wave[lo:hi, None, None]
        amp = ratio * m.ha / (math.sqrt(2 * math.pi) * sigma)
        flux[lo:hi] += (amp * np.exp(-0.5 * ((w - centre) / sigma) ** 2)).astype(np.float32)
    sky = (0.04 * (1.0 + 2.0 * ((wave - 7000.0) / 3500.0) ** 2)).astype(np.float32)
    var = np.maximum(flux, 0.0, dtype=np.float32)
    var *= np.float32(0.01)
    var += (sky**2)[:, None, None]
    var[:, m.edge] *= np.float32(1.7)  # fewer fibres overlap near the edge: noisier
    noise = rng.standard_normal(var.shape, dtype=np.float32)
    noise *= np.sqrt(var)
    flux += noise
    del noise
    ivar = np.reciprocal(var, out=var)
    mask = np.zeros((nw, n, n), np.int32)
    mask[:, m.edge] = dm.DRP_LOWCOV
    # A sprinkle of bad pixels (cosmic-ray residuals, bad columns): DONOTUSE, ivar 0.
    bad = rng.choice(flux.size, size=max(1, flux.size // 2000), replace=False)
    mask.reshape(-1)[bad] |= dm.DRP_DONOTUSE
    ivar.reshape(-1)[bad] = 0.0
    outside = ~m.inside
    flux[:, outside] = 0.0
    ivar[:, outside] = 0.0
    mask[:, outside] = dm.DRP_NOCOV | dm.DRP_DONOTUSE
    tilt = (1.0 + 0.01 * m.x / max(1.0, np.abs(m.x).max())).astype(np.float32)
    lsfpost = np.multiply.outer(lsf1.astype(np.float32), tilt)
    lsfpre = lsfpost * np.float32(0.97)
    return {"FLUX": flux, "IVAR": ivar, "MASK": mask, "LSFPOST": lsfpost, "LSFPRE": lsfpre}


def _nanomaggies(flux: np.ndarray, wave: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Band-averaged f_lambda (1e-17 cgs per A) -> nanomaggies, per spaxel."""
    sel = (wave >= band[0]) & (wave < band[1])
    mean = flux[sel].mean(axis=0, dtype=np.float64)
    centre = 0.5 * (band[0] + band[1])
    f_nu = mean * 1e-17 * centre**2 / 2.99792458e18
    return (f_nu / 3.631e-29).astype(np.float32)


def _psf(m: Model, fwhm: float) -> np.ndarray:
    sig = fwhm / 2.3548
    img = np.exp(-0.5 * (m.x**2 + m.y**2) / sig**2)
    return (img / img.sum()).astype(np.float32)


# ---- FITS writing ---------------------------------------------------------------------------
def _write_gz(hdul: fits.HDUList, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL,
                                               mtime=0, filename="") as f:
        hdul.writeto(f, output_verify="ignore")  # headers are ours and valid; verifying is slow


def _map_wcs(g: Galaxy, channels: int | None) -> fits.Header:
    """A MAPS extension's WCS as the DAP writes it: the cube's CD-form celestial WCS (with a
    dummy unit third axis on a multi-channel map) passed through ``WCS(...).to_header()``,
    which gives a PC matrix and CDELT = 1."""
    header = fits.Header()
    _wcs(header, g, cube=False)
    if channels is not None:
        header.update({"CTYPE3": " ", "CUNIT3": " ", "CRPIX3": 1, "CRVAL3": 1.0, "CD3_3": 1.0})
    return WCS(header).to_header()


def _wcs(header: fits.Header, g: Galaxy, cube: bool) -> None:
    n = g.size
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRPIX1"] = header["CRPIX2"] = (n + 1) / 2.0
    header["CRVAL1"], header["CRVAL2"] = g.ra, g.dec
    header["CD1_1"], header["CD2_2"] = -dm.SPAXEL_SIZE / 3600.0, dm.SPAXEL_SIZE / 3600.0
    header["CUNIT1"] = header["CUNIT2"] = "deg"
    if cube:
        header["CTYPE3"], header["CRPIX3"] = "WAVE-LOG", 1.0
        header["CUNIT3"] = "Angstrom"


def _primary(g: Galaxy, extra: dict[str, Any]) -> fits.PrimaryHDU:
    hdu = fits.PrimaryHDU()
    h = hdu.header
    for key, value in {
        "PLATEID": g.plate, "IFUDSGN": str(g.ifudesign), "PLATEIFU": g.plateifu,
        "MANGAID": g.mangaid, "OBJRA": g.ra, "OBJDEC": g.dec, "IFURA": g.ra, "IFUDEC": g.dec,
        "CENRA": g.ra, "CENDEC": g.dec, "EBVGAL": g.ebv, "NEXP": g.nexp, "EXPTIME": g.exptime,
        "DRP3QUAL": 0, "MNGTARG1": 1024, "MNGTARG2": 0, "MNGTARG3": 0,
        "VERSDRP3": dm.DRPVER, "SRVYMODE": "MaNGA dither", **extra,
    }.items():
        h[key] = value
    return hdu


def _image(name: str, data: np.ndarray, header: dict[str, Any]) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data, name=name)
    for k, v in header.items():
        hdu.header[k] = v
    return hdu


def cube_hdul(g: Galaxy, m: Model, wave: np.ndarray, drpver: str = dm.DRPVER) -> fits.HDUList:
    arrays = build_cube(g, m, wave)
    flux_units = "1E-17 erg/s/cm^2/Ang/spaxel"
    klass = {"HDUCLASS": "SDSS", "HDUCLAS1": "CUBE"}
    hdus = [_primary(g, {"GFWHM": g.seeing + 0.3, "RFWHM": g.seeing + 0.2,
                         "IFWHM": g.seeing + 0.1, "ZFWHM": g.seeing, "VERSDRP3": drpver})]
    hdus.append(_image("FLUX", arrays.pop("FLUX"), {
        "BUNIT": flux_units, **klass, "HDUCLAS2": "DATA", "ERRDATA": "IVAR", "QUALDATA": "MASK"}))
    hdus.append(_image("IVAR", arrays.pop("IVAR"), {
        "BUNIT": "(1E-17 erg/s/cm^2/Ang/spaxel)^-2", **klass, "HDUCLAS2": "ERROR",
        "HDUCLAS3": "INVMSE", "SCIDATA": "FLUX"}))
    hdus.append(_image("MASK", arrays.pop("MASK"), {
        **klass, "HDUCLAS2": "QUALITY", "HDUCLAS3": "FLAG32BIT", "SCIDATA": "FLUX"}))
    for name in ("LSFPOST", "LSFPRE"):
        hdus.append(_image(name, arrays.pop(name), {"BUNIT": "Angstrom"}))
    for h in hdus[1:]:
        _wcs(h.header, g, cube=True)
        h.header["CRVAL3"] = float(wave[0])
        h.header["CD3_3"] = float(wave[1] - wave[0]) if len(wave) > 1 else 1.0
    hdus.append(_image("WAVE", wave.astype(np.float64), {"BUNIT": "Angstrom"}))
    resolution = wave / (2.3548 * lsf_sigma(wave))  # R = lambda / FWHM
    hdus.append(_image("SPECRES", resolution, {}))
    hdus.append(_image("SPECRESD", (0.02 * resolution), {}))
    obs = fits.BinTableHDU.from_columns([
        fits.Column("PLATEIFU", "11A", array=np.array([g.plateifu] * g.nexp)),
        fits.Column("MANGAID", "10A", array=np.array([g.mangaid] * g.nexp)),
        fits.Column("EXPNUM", "J", array=np.arange(g.nexp, dtype=np.int32) + 177000),
        fits.Column("EXPTIME", "E", array=np.full(g.nexp, 900.0, np.float32)),
        fits.Column("SEEING", "E", array=np.full(g.nexp, g.seeing, np.float32)),
    ], name="OBSINFO")
    hdus.append(obs)
    flux = hdus[1].data
    for b in "griz":
        img = _nanomaggies(flux, wave, BANDS[b])
        hdus.append(_image(f"{b.upper()}IMG", img, {"BUNIT": "nanomaggies/pixel"}))
        _wcs(hdus[-1].header, g, cube=False)
    for k, b in enumerate("griz"):
        hdus.append(_image(f"{b.upper()}PSF", _psf(m, g.seeing + 0.3 - 0.1 * k), {}))
        _wcs(hdus[-1].header, g, cube=False)
    return fits.HDUList(hdus)


# ---- the MAPS file ---------------------------------------------------------------------------
def _map_hdu(name: str, data: np.ndarray, header: dict[str, Any], g: Galaxy) -> fits.ImageHDU:
    """One MAPS image extension: the DAP's WCS first, then ``header``."""
    hdu = fits.ImageHDU(data, header=_map_wcs(g, data.shape[0] if data.ndim == 3 else None),
                        name=name)
    for k, v in header.items():
        hdu.header[k] = v
    return hdu


def _maps_triplet(name: str, data: np.ndarray, ivar: np.ndarray, mask: np.ndarray,
                  header: dict[str, Any], g: Galaxy) -> list[fits.ImageHDU]:
    klass = {"HDUCLASS": "SDSS", "HDUCLAS1": "CUBE" if data.ndim == 3 else "IMAGE"}
    main = _map_hdu(name, data.astype(np.float32), {
        **header, **klass, "HDUCLAS2": "DATA", "ERRDATA": f"{name}_IVAR",
        "QUALDATA": f"{name}_MASK"}, g)
    channels = {k: v for k, v in header.items() if k[0] == "C" and k[1:].isdigit()}
    err = _map_hdu(f"{name}_IVAR", ivar.astype(np.float32), {
        **channels, **klass, "HDUCLAS2": "ERROR", "HDUCLAS3": "INVMSE", "SCIDATA": name,
        "QUALDATA": f"{name}_MASK"}, g)
    qual = _map_hdu(f"{name}_MASK", mask.astype(np.int32), {
        **channels, **klass, "HDUCLAS2": "QUALITY", "HDUCLAS3": "FLAG32BIT", "SCIDATA": name,
        "ERRDATA": f"{name}_IVAR"}, g)
    return [main, err, qual]


def _single(name: str, data: np.ndarray, header: dict[str, Any], g: Galaxy) -> fits.ImageHDU:
    return _map_hdu(name, data, {**header, "HDUCLASS": "SDSS",
                                 "HDUCLAS1": "CUBE" if data.ndim == 3 else "IMAGE",
                                 "HDUCLAS2": "DATA"}, g)


def _names(names: list[str] | tuple[str, ...], units: list[str] | None = None) -> dict[str, str]:
    """Channel keys as the DAP writes them: ``C<n>`` (and ``U<n>``), ``n`` zero-padded to
    the digits of the channel count."""
    digits = len(str(len(names)))
    out = {}
    for k, name in enumerate(names):
        out[f"C{k + 1:0{digits}d}"] = name
        if units is not None:
            out[f"U{k + 1:0{digits}d}"] = units[k]
    return out


def maps_hdul(g: Galaxy, m: Model, dapver: str = dm.DAPVER, daptype: str | None = None
              ) -> fits.HDUList:
    rng = np.random.default_rng(g.seed + 1)
    n = g.size
    outside = ~m.inside
    mflux = (m.old + m.young).astype(np.float32)
    low_sn = m.inside & (mflux < 0.08)  # continuum S/N < ~2: not binned, no stellar value

    def qual(shape_k: int | None, extra: np.ndarray | None = None) -> np.ndarray:
        base = np.zeros((n, n), np.int32)
        base[outside] = dm.DAP_NOCOV | dm.DAP_DONOTUSE
        if extra is not None:
            base[extra] |= dm.DAP_NOVALUE | dm.DAP_DONOTUSE
        return base if shape_k is None else np.repeat(base[None], shape_k, axis=0)

    def clean(a: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        a = np.where(outside, 0.0, a)
        return np.where(extra, 0.0, a) if extra is not None else a

    scinpvel = C_KMS * g.z
    release = DAP_RELEASES[dapver]
    hdus: list[fits.ImageHDU | fits.PrimaryHDU] = [_primary(g, {
        "VERSDRP3": release.drpver, "VERSDAP": dapver, "DAPTYPE": daptype or release.daptype,
        "DAPQUAL": 0, "SCINPVEL": scinpvel})]
    kpc_per_arcsec = g.z * C_KMS / 100.0 * 1000.0 * math.pi / 180.0 / 3600.0  # h^-1 kpc
    hdus.append(_single("SPX_SKYCOO", np.stack([m.x, m.y]).astype(np.float32),
                        {"BUNIT": "arcsec", **_names(["On-sky X", "On-sky Y"])}, g))
    hdus.append(_single("SPX_ELLCOO", np.stack([m.r, m.r / g.re, m.r * kpc_per_arcsec,
                                                np.degrees(m.theta) % 360]).astype(np.float32),
                        _names(["Elliptical radius", "R/Re", "R h/kpc", "Elliptical azimuth"],
                               ["arcsec", "", "kpc/h", "degrees"]), g))
    hdus.append(_single("SPX_MFLUX", clean(mflux), {"BUNIT": "1E-17 erg/s/cm^2/ang/spaxel"}, g))
    hdus.append(_single("SPX_MFLUX_IVAR", clean(np.full((n, n), 400.0)).astype(np.float32), {}, g))
    hdus.append(_single("SPX_SNR", clean(mflux / 0.05).astype(np.float32), {}, g))
    binid = np.where(m.inside, np.arange(n * n).reshape(n, n), -1).astype(np.int32)
    binid[low_sn] = -1
    hdus.append(_single("BINID", np.repeat(binid[None], 5, axis=0), _names(
        ["Binned spectra", "Stellar continua", "Em. line moments", "Em. line models",
         "Spectral indices"]), g))

    def noisy(value: np.ndarray, err: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        err = np.broadcast_to(np.asarray(err, np.float64), value.shape)
        return value + err * rng.standard_normal(value.shape), 1.0 / err**2

    vel, vel_ivar = noisy(m.v_star, 8.0 + 20.0 * m.r / (m.r.max() + 1e-9))
    hdus += _maps_triplet("STELLAR_VEL", clean(vel, low_sn), clean(vel_ivar, low_sn),
                          qual(None, low_sn), {"BUNIT": "km/s"}, g)
    sig, sig_ivar = noisy(m.sigma_star, 10.0)
    hdus += _maps_triplet("STELLAR_SIGMA", clean(sig, low_sn), clean(sig_ivar, low_sn),
                          qual(None, low_sn), {"BUNIT": "km/s"}, g)
    hdus.append(_single("STELLAR_SIGMACORR", np.stack([clean(np.full((n, n), 30.0))] * 2)
                        .astype(np.float32), {"BUNIT": "km/s", **_names(["resolution_difference",
                                                                        "fit"])}, g))

    emlines = release.emlines
    k = len(emlines)
    ratios = np.array([EMISSION.get(name, (0.0, 0.002))[1] for name in emlines])
    rest = np.array([float(name.split("-")[1]) for name in emlines])
    names = _names(emlines)
    gflux = ratios[:, None, None] * m.ha[None]
    gflux_err = 0.05 + 0.05 * gflux
    gflux_obs, gflux_ivar = noisy(gflux, gflux_err)
    hdus += _maps_triplet("EMLINE_GFLUX", clean(gflux_obs), clean(gflux_ivar), qual(k),
                          {"BUNIT": dm.EMLINE_FLUX_UNITS, **names}, g)
    old_at, young_at = continuum_shapes(rest * (1 + g.z), g.z, g.d4000)
    cnt = old_at[:, None, None] * m.old[None] + young_at[:, None, None] * m.young[None]
    ew = gflux_obs / np.maximum(cnt, 1e-3)
    gew = _maps_triplet("EMLINE_GEW", clean(ew), clean(gflux_ivar * cnt**2), qual(k),
                        {"BUNIT": "ang", **names}, g)
    # The DAP puts the continuum used for the equivalent widths between data and ivar.
    hdus += [gew[0], _single("EMLINE_GEW_CNT", clean(cnt).astype(np.float32),
                             {"BUNIT": "1E-17 erg/s/cm^2/ang/spaxel", **names}, g), *gew[1:]]
    gvel, gvel_ivar = noisy(m.v_gas, 5.0 + 10.0 / np.sqrt(m.ha + 0.1))
    hdus += _maps_triplet("EMLINE_GVEL", clean(np.repeat(gvel[None], k, 0)),
                          clean(np.repeat(gvel_ivar[None], k, 0)), qual(k),
                          {"BUNIT": "km/s", **names}, g)
    inst = C_KMS * lsf_sigma(rest * (1 + g.z)) / (rest * (1 + g.z))
    gsig = np.hypot(g.sigma_gas, inst)[:, None, None] * np.ones((1, n, n))
    gsig_obs, gsig_ivar = noisy(gsig, 6.0)
    hdus += _maps_triplet("EMLINE_GSIGMA", clean(gsig_obs), clean(gsig_ivar), qual(k),
                          {"BUNIT": "km/s", **names}, g)
    hdus.append(_single("EMLINE_INSTSIGMA", clean(inst[:, None, None] * np.ones((1, n, n)))
                        .astype(np.float32), {"BUNIT": "km/s", **names}, g))

    idx_names = [name for name, _ in dm.SPECINDEX_NAMES]
    idx_units = [u for _, u in dm.SPECINDEX_NAMES]
    weight_old = m.old / (m.old + m.young)
    d4000 = weight_old * g.d4000 + (1 - weight_old) * 1.15
    typical = {"D4000": d4000, "Dn4000": 0.92 * d4000 + 0.05, "HDeltaA": 7.0 - 5.0 * (d4000 - 1.0),
               "Hb": 1.5 + 1.2 * (1 - weight_old), "Mgb": 1.0 + 2.5 * weight_old,
               "Fe5270": 1.5 + 1.2 * weight_old, "Fe5335": 1.3 + 1.1 * weight_old}
    values = np.stack([typical.get(name, np.full((n, n), 0.1 if u == "mag" else 1.0))
                       for name, u in dm.SPECINDEX_NAMES])
    idx_obs, idx_ivar = noisy(values, 0.05)
    kk = len(idx_names)
    hdus += _maps_triplet("SPECINDEX", clean(idx_obs, low_sn), clean(idx_ivar, low_sn),
                          qual(kk, low_sn), _names(idx_names, idx_units), g)
    hdus.append(_single("SPECINDEX_CORR", clean(np.ones((kk, n, n))).astype(np.float32),
                        _names(idx_names, idx_units), g))
    return fits.HDUList(hdus)


# ---- catalogs -------------------------------------------------------------------------------
def _str(values: list[str]) -> tuple[str, np.ndarray]:
    width = max(1, max((len(v) for v in values), default=1))
    return f"{width}A", np.array(values)


def drpall_hdul(galaxies: list[Galaxy], drpver: str = dm.DRPVER) -> fits.HDUList:
    rng = np.random.default_rng(len(galaxies))
    n = len(galaxies)

    def col(name: str, fmt: str, values: Any) -> fits.Column:
        return fits.Column(name=name, format=fmt, array=np.asarray(values))

    def scol(name: str, values: list[str]) -> fits.Column:
        fmt, arr = _str(values)
        return fits.Column(name=name, format=fmt, array=arr)

    gs = galaxies
    absmag = np.array([[-20.5 - 2.5 * (g.logmass - 10.0) + 0.3 * (2 - b) for b in range(7)]
                       for g in gs])
    cols = [
        col("plate", "K", [g.plate for g in gs]),
        scol("ifudsgn", [str(g.ifudesign) for g in gs]),
        scol("plateifu", [g.plateifu for g in gs]),
        scol("mangaid", [g.mangaid for g in gs]),
        scol("versdrp2", [drpver] * n), scol("versdrp3", [drpver] * n),
        scol("platetyp", ["APOGEE-2&MaNGA"] * n), scol("srvymode", ["MaNGA dither"] * n),
        col("objra", "D", [g.ra for g in gs]), col("objdec", "D", [g.dec for g in gs]),
        col("ifura", "D", [g.ra for g in gs]), col("ifudec", "D", [g.dec for g in gs]),
        col("ebvgal", "D", [g.ebv for g in gs]),
        col("nexp", "K", [g.nexp for g in gs]), col("exptime", "D", [g.exptime for g in gs]),
        col("drp3qual", "K", np.zeros(n, np.int64)),
        col("bluesn2", "D", rng.uniform(15, 40, n)), col("redsn2", "D", rng.uniform(25, 60, n)),
        col("cenra", "D", [g.ra for g in gs]), col("cendec", "D", [g.dec for g in gs]),
        col("seemed", "D", [g.seeing for g in gs]),
        col("gfwhm", "D", [g.seeing + 0.3 for g in gs]), col("rfwhm", "D", [g.seeing + 0.2 for g in gs]),
        col("ifwhm", "D", [g.seeing + 0.1 for g in gs]), col("zfwhm", "D", [g.seeing for g in gs]),
        col("mngtarg1", "K", np.full(n, 1024, np.int64)), col("mngtarg2", "K", np.zeros(n, np.int64)),
        col("mngtarg3", "K", np.zeros(n, np.int64)),
        scol("nsa_iauname", [f"J{g.ra / 15:09.4f}{g.dec:+08.4f}".replace(".", "") for g in gs]),
        col("ifudesignsize", "K", [g.fibres for g in gs]),
        col("ifutargetsize", "K", [g.fibres for g in gs]),
        col("z", "D", [g.z for g in gs]),
        col("nsa_nsaid", "K", [g.nsaid for g in gs]),
        col("nsa_z", "D", [g.z for g in gs]),
        col("nsa_zdist", "D", [g.z * 1.001 for g in gs]),
        col("nsa_elpetro_mass", "D", [10**g.logmass for g in gs]),
        col("nsa_elpetro_ba", "D", [g.ba for g in gs]),
        col("nsa_elpetro_phi", "D", [g.phi for g in gs]),
        col("nsa_elpetro_th50_r", "D", [g.re for g in gs]),
        col("nsa_elpetro_absmag", "7D", absmag),
        col("nsa_sersic_n", "D", rng.uniform(0.8, 5.0, n)),
    ]
    manga = fits.BinTableHDU.from_columns(cols, name=dm.DRPALL_HDU)
    mastar = fits.BinTableHDU.from_columns([
        col("plate", "K", [8000, 8000]), scol("ifudsgn", ["701", "702"]),
        scol("plateifu", ["8000-701", "8000-702"]), scol("mangaid", ["3-100001", "3-100002"]),
        col("objra", "D", [10.0, 10.1]), col("objdec", "D", [5.0, 5.1]),
    ], name="MASTAR")
    return fits.HDUList([fits.PrimaryHDU(), manga, mastar])


def dapall_hdul(galaxies: list[Galaxy], dapver: str = dm.DAPVER, daptype: str | None = None
                ) -> fits.HDUList:
    """The dapall: DAP 3.x one table per DAPTYPE (named by it), DAP 2.x one DAPALL table with
    the rows of every DAPTYPE (``daptype``, the MAPS files', among them)."""
    rng = np.random.default_rng(len(galaxies) + 1)
    gs, n = galaxies, len(galaxies)
    release = DAP_RELEASES[dapver]
    ratios = np.array([EMISSION.get(name, (0.0, 0.002))[1] for name in release.emlines])
    daptypes = list(release.dapall_daptypes)
    if daptype and daptype not in daptypes:
        daptypes.append(daptype)
    tables: list[fits.BinTableHDU] = []
    for daptype in daptypes:
        cols = [
            fits.Column("PLATE", "J", array=np.array([g.plate for g in gs], np.int32)),
            fits.Column("IFUDESIGN", "J", array=np.array([g.ifudesign for g in gs], np.int32)),
            fits.Column("PLATEIFU", _str([g.plateifu for g in gs])[0],
                        array=np.array([g.plateifu for g in gs])),
            fits.Column("MANGAID", _str([g.mangaid for g in gs])[0],
                        array=np.array([g.mangaid for g in gs])),
            fits.Column("DRPALLINDX", "K", array=np.arange(n, dtype=np.int64)),
            fits.Column("MODE", "4A", array=np.array(["CUBE"] * n)),
            fits.Column("DAPTYPE", "30A", array=np.array([daptype] * n)),
            fits.Column("DAPDONE", "L", array=np.ones(n, bool)),
            fits.Column("DAPQUAL", "J", array=np.zeros(n, np.int32)),
            fits.Column("OBJRA", "D", array=np.array([g.ra for g in gs])),
            fits.Column("OBJDEC", "D", array=np.array([g.dec for g in gs])),
            fits.Column("IFURA", "D", array=np.array([g.ra for g in gs])),
            fits.Column("IFUDEC", "D", array=np.array([g.dec for g in gs])),
            fits.Column("Z", "D", array=np.array([g.z for g in gs])),
            fits.Column("LDIST_Z", "D", array=np.array([g.z * 4400 for g in gs])),
            fits.Column("ADIST_Z", "D", array=np.array([g.z * 4000 for g in gs])),
            fits.Column("SFR_1RE", "D", array=np.array([0.01 * g.ha0 for g in gs])),
            fits.Column("SFR_TOT", "D", array=np.array([0.03 * g.ha0 for g in gs])),
            fits.Column("STELLAR_Z", "D", array=np.array([g.z for g in gs])),
            fits.Column("STELLAR_SIGMA_1RE", "D", array=np.array([g.sigma_star for g in gs])),
            fits.Column("STELLAR_VEL_HI", "D", array=np.array([0.8 * g.vmax for g in gs])),
            fits.Column("HA_GSIGMA_1RE", "D", array=np.array([g.sigma_gas for g in gs])),
            fits.Column("EMLINE_GFLUX_1RE", f"{len(ratios)}D",
                        array=np.array([ratios * g.ha0 * 0.4 for g in gs])),
            fits.Column("SPECINDEX_1RE", f"{len(dm.SPECINDEX_NAMES)}D",
                        array=rng.uniform(0.5, 3.0, (n, len(dm.SPECINDEX_NAMES)))),
        ]
        tables.append(fits.BinTableHDU.from_columns(cols, name=daptype))
    if release.one_dapall_hdu:
        rows = np.concatenate([t.data for t in tables])
        tables = [fits.BinTableHDU(rows, name=dm.DAPALL_SINGLE_HDU)]
    return fits.HDUList([fits.PrimaryHDU(), *tables])


# ---- entry point -----------------------------------------------------------------------------
def write_sample(request: SampleRequest) -> SampleResult:
    """Write a MaNGA sample; see the module docstring."""
    opts = {o.name: o.default for o in SAMPLE_OPTIONS}
    opts.update({k: v for k, v in request.options.items() if v is not None})
    layout = str(opts["layout"])
    if layout not in ("sas", "flat"):
        raise InputError(f"layout must be 'sas' or 'flat', got {layout!r}")
    nwave = int(opts["nwave"])
    if nwave < 100:
        raise InputError(f"nwave must be at least 100, got {nwave}")
    repeats = int(opts["repeats"])
    if repeats < 0:
        raise InputError(f"repeats must be >= 0, got {repeats}")
    dapver = str(opts["dapver"])
    if dapver not in DAP_RELEASES:
        raise InputError(f"dapver must be one of {', '.join(DAP_RELEASES)}, got {dapver!r}")
    release = DAP_RELEASES[dapver]
    daptype = str(opts["daptype"] or release.daptype)
    if dm.parse_maps_name(dm.maps_name("1-2", daptype)) is None:
        raise InputError(f"daptype {daptype!r} is not of the form BINNING-MODEL[-MODEL]")
    drpver = release.drpver
    galaxies = make_galaxies(request, parse_bundles(opts["bundles"]), repeats)
    out = Path(request.out_dir)
    wave = wave_grid(nwave)
    sas = layout == "sas"
    files: list[str] = []
    for g in galaxies:
        model = galaxy_model(g)
        cube_path = out / (dm.sas_cube_path(g.plateifu, drpver) if sas
                           else dm.cube_name(g.plateifu))
        _write_gz(cube_hdul(g, model, wave, drpver), cube_path)
        maps_path = out / (dm.sas_maps_path(g.plateifu, daptype, drpver, dapver) if sas
                           else dm.maps_name(g.plateifu, daptype))
        _write_gz(maps_hdul(g, model, dapver, daptype), maps_path)
        files += [str(cube_path), str(maps_path)]
    for path, hdul in (
        (dm.sas_drpall_path(drpver) if sas else Path(dm.drpall_name(drpver)),
         drpall_hdul(galaxies, drpver)),
        (dm.sas_dapall_path(drpver, dapver) if sas else Path(dm.dapall_name(drpver, dapver)),
         dapall_hdul(galaxies, dapver, daptype)),
    ):
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        hdul.writeto(out / path, overwrite=True)
        files.append(str(out / path))
    notes = [f"{len(galaxies)} cubes ({request.n} galaxies + {repeats} repeat observations), "
             f"{nwave} wavelengths, layout {layout}, DAP {dapver} {daptype} "
             f"({len(release.emlines)} emission lines)"]
    if daptype != dm.DAPTYPE:
        notes.append(f"build it with: mmu build manga --raw {out} --out ROOT --daptype {daptype}")
    return SampleResult(files=files, n_objects=request.n, notes=notes)
