"""``mmu sample desi``: synthetic DESI healpix coadds and redshift catalogs, official layout.

Layout follows the DESI data model (docs/surveys.md: ``coadd-SURVEY-PROGRAM-PIXNUM``,
``redrock-SURVEY-PROGRAM-PIXNUM``, ``zall-pix-SPECPROD``) and the pipeline's spectra writer:
an empty primary HDU with the grouping keywords, FIBERMAP, EXP_FIBERMAP, then per camera
B, R, Z the ``_WAVELENGTH`` (float64 Å), ``_FLUX`` and ``_IVAR`` (float32), ``_MASK`` (uint32,
stored as int32 with BZERO = 2**31) and ``_RESOLUTION`` (float32, 11 diagonals) images, then
SCORES; every HDU big-endian with checksums. Targets fall in the requested cone and are split
into files by their NSIDE-64 NESTED healpix pixel, as DESI does. Each file also holds a few sky
fibers (negative TARGETID, OBJTYPE SKY) and one or two bad fibers (COADD_FIBERSTATUS != 0);
the redshift catalog lacks a few real targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import healpy as hp
import numpy as np
from astropy.io import fits

from mmu_core.errors import InputError
from mmu_core.models import SampleRequest, SampleResult
from mmu_core.sampling import cone_positions, random_in_cone
from mmu_desi import datamodel as dm
from mmu_desi import synth

SPECPRODS = {"main": "iron", "sv3": "fuji"}
FUJI_LACKS = ("MIN_MJD", "MEAN_MJD", "MAX_MJD")  # absent from fuji FIBERMAPs (docs/surveys.md)
CONFIG_OF = {"main": "dr1_main", "sv3": "edr_sv3"}  # the surveys a sample can be built as
CATALOG_KINDS = ("zall", "redrock", "none")
BAD_FIBER_STATUS = (2**9, 2**1)  # BADPOSITION, BROKENFIBER
SKY_BIT = 2**32  # DESI_TARGET SKY
TARGET_BITS = {"LRG": 2**0, "ELG": 2**1, "QSO": 2**2, "BGS_ANY": 2**60, "MWS_ANY": 2**61}
MASK_BITS = {"COSMIC": 2**3, "BADFIBER": 2**9}


@dataclass
class Targets:
    """Per-target truth for a sample: position, class, redshift, brightness, exposure."""

    targetid: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    spectype: np.ndarray  # GALAXY / QSO / STAR (U6)
    tracer: np.ndarray  # LRG / ELG / QSO / BGS_ANY / MWS_ANY (U7)
    z: np.ndarray
    flux_r: np.ndarray  # nanomaggies
    exptime: np.ndarray  # s

    def __len__(self) -> int:
        return len(self.targetid)

    def take(self, idx: np.ndarray) -> Targets:
        return Targets(**{k: v[idx] for k, v in self.__dict__.items()})


def make_targets(rng: np.random.Generator, tra: np.ndarray, tdec: np.ndarray,
                 first_objid: int = 0) -> Targets:
    """Targets at these positions (degrees) with DESI-like classes, redshifts and fluxes."""
    n = len(tra)
    release = np.where(tdec > 32.375, 9011, 9010)  # DR9 north / south
    brickid = rng.integers(1, 662_174, n)
    objid = first_objid + np.arange(n)
    targetid = (release.astype(np.int64) << 42) | (brickid.astype(np.int64) << 22) | objid
    tracer = rng.choice(np.array(["LRG", "ELG", "QSO", "BGS_ANY", "MWS_ANY"]), n,
                        p=[0.25, 0.35, 0.12, 0.13, 0.15])
    spectype = np.where(tracer == "QSO", "QSO", np.where(tracer == "MWS_ANY", "STAR", "GALAXY"))
    z = np.select(
        [tracer == "LRG", tracer == "ELG", tracer == "QSO", tracer == "BGS_ANY"],
        [rng.uniform(0.4, 1.0, n), rng.uniform(0.6, 1.5, n), rng.uniform(0.8, 3.5, n),
         rng.uniform(0.02, 0.4, n)],
        rng.normal(0.0, 1e-4, n),
    )
    bright = (tracer == "BGS_ANY") | (tracer == "MWS_ANY")
    rmag = np.where(bright, rng.uniform(16.0, 19.5, n), rng.uniform(19.5, 22.5, n))
    exptime = rng.choice([900.0, 1000.0, 1800.0, 2700.0], n, p=[0.35, 0.35, 0.2, 0.1])
    return Targets(targetid=targetid, ra=tra, dec=tdec, spectype=spectype.astype("U6"),
                   tracer=tracer.astype("U7"), z=z, flux_r=10 ** (-0.4 * (rmag - 22.5)),
                   exptime=exptime)


# ---- FITS helpers ------------------------------------------------------------------------
def _fits_format(arr: np.ndarray) -> str:
    code = {"f4": "E", "f8": "D", "i2": "I", "i4": "J", "i8": "K", "u1": "B", "b1": "L"}
    dt = arr.dtype
    base = f"A{dt.itemsize}" if dt.kind in "SU" else code[dt.str[1:]]
    return (str(int(np.prod(arr.shape[1:]))) + base) if arr.ndim > 1 else base


def table_hdu(name: str, columns: list[tuple[str, np.ndarray, str | None]]) -> fits.BinTableHDU:
    """A binary table HDU from (name, array, unit) triples, in the given column order."""
    coldefs = [fits.Column(name=c, format=_fits_format(np.asarray(a)), unit=u, array=np.asarray(a))
               for c, a, u in columns]
    hdu = fits.BinTableHDU.from_columns(coldefs, name=name)
    hdu.header["LONGSTRN"] = "OGIP 1.0"
    return hdu


@dataclass
class CameraArrays:
    """One camera's arrays as written (any float precision; the writer casts)."""

    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    resolution: np.ndarray


def camera_hdus(cam: str, arr: CameraArrays) -> list[fits.ImageHDU]:
    """One camera's five image HDUs in desispec's order, dtypes and units."""
    wave = fits.ImageHDU(np.asarray(arr.wave, dtype="f8"), name=f"{cam}_WAVELENGTH")
    wave.header["BUNIT"] = "Angstrom"
    flux = fits.ImageHDU(np.asarray(arr.flux, dtype="f4"), name=f"{cam}_FLUX")
    flux.header["BUNIT"] = "10**-17 erg/(s cm2 Angstrom)"
    ivar = fits.ImageHDU(np.asarray(arr.ivar, dtype="f4"), name=f"{cam}_IVAR")
    ivar.header["BUNIT"] = "10**+34 (s2 cm4 Angstrom2) / erg2"
    mask = fits.ImageHDU(np.asarray(arr.mask, dtype=np.uint32), name=f"{cam}_MASK")
    res = fits.ImageHDU(np.asarray(arr.resolution, dtype="f4"), name=f"{cam}_RESOLUTION")
    return [wave, flux, ivar, mask, res]


# ---- one healpix coadd -------------------------------------------------------------------
def _fibermap_columns(rng: np.random.Generator, t: Targets, objtype: np.ndarray,
                      fiberstatus: np.ndarray, survey: str) -> list[tuple[str, np.ndarray, str | None]]:
    """The FIBERMAP columns of a healpix coadd, in the data model's order."""
    n = len(t)
    tgt = objtype == "TGT"
    release = np.where(tgt, (t.targetid >> 42) & 0xFFFF, 0).astype("i2")
    brickid = np.where(tgt, (t.targetid >> 22) & 0xFFFFF, 0).astype("i4")
    objid = np.where(tgt, t.targetid & 0x3FFFFF, 0).astype("i4")
    ebv = rng.uniform(0.01, 0.08, n).astype("f4")
    fr = np.where(tgt, t.flux_r, 0.0)
    color_gr = np.where(t.tracer == "LRG", 0.4, np.where(t.tracer == "ELG", 1.0, 0.7))
    flux = {"G": fr * color_gr, "R": fr, "Z": fr * np.where(t.tracer == "LRG", 2.5, 1.3),
            "W1": fr * rng.uniform(0.5, 3.0, n), "W2": fr * rng.uniform(0.3, 2.0, n)}
    flux = {b: v.astype("f4") for b, v in flux.items()}
    ivar = {b: np.where(tgt, rng.uniform(50, 400, n) / np.maximum(v, 1.0), 0).astype("f4")
            for b, v in flux.items()}
    morph = np.where(t.spectype == "GALAXY", rng.choice(np.array(["REX", "EXP", "DEV", "SER"]), n),
                     "PSF")
    morph = np.where(tgt, morph, "")
    star = t.spectype == "STAR"
    gaia_g = np.where(star, 22.5 - 2.5 * np.log10(np.maximum(fr, 1e-3)) + 0.2, 0).astype("f4")
    coadd_numexp = np.maximum(1, np.rint(t.exptime / 900.0)).astype("i2")
    mjd0 = rng.uniform(59200.0, 59700.0, n)
    prefix = "" if survey == "main" else f"{survey.upper()}_"
    desi_bits = np.zeros(n, np.int64)
    for name, bit in TARGET_BITS.items():
        desi_bits |= np.where(t.tracer == name, bit, 0)
    desi_bits = np.where(objtype == "SKY", SKY_BIT, desi_bits)
    bgs = np.where(t.tracer == "BGS_ANY", 2**1, 0).astype("i8")
    mws = np.where(t.tracer == "MWS_ANY", 2**0, 0).astype("i8")
    brickname = np.array([f"{(r * 10) % 3600:04.0f}{'p' if d >= 0 else 'm'}{abs(d) * 10:03.0f}"
                          for r, d in zip(t.ra, t.dec, strict=True)])
    f4, f8 = "f4", "f8"
    return [
        ("TARGETID", t.targetid.astype("i8"), None),
        ("COADD_FIBERSTATUS", fiberstatus.astype("i4"), None),
        ("TARGET_RA", t.ra.astype(f8), "deg"),
        ("TARGET_DEC", t.dec.astype(f8), "deg"),
        ("PMRA", np.where(star, rng.normal(0, 5, n), 0).astype(f4), "mas yr^-1"),
        ("PMDEC", np.where(star, rng.normal(0, 5, n), 0).astype(f4), "mas yr^-1"),
        ("REF_EPOCH", np.where(star, 2015.5, 0).astype(f4), "yr"),
        ("FA_TARGET", np.where(objtype == "SKY", SKY_BIT, desi_bits).astype("i8"), None),
        ("FA_TYPE", np.where(objtype == "SKY", 4, 1).astype("u1"), None),
        ("OBJTYPE", objtype.astype("S3"), None),
        ("SUBPRIORITY", rng.random(n), None),
        ("OBSCONDITIONS", np.full(n, 3 if survey == "main" else 7, "i4"), None),
        ("RELEASE", release, None),
        ("BRICKID", brickid, None),
        ("BRICK_OBJID", objid, None),
        ("MORPHTYPE", morph.astype("S4"), None),
        ("FLUX_G", flux["G"], "nanomaggy"),
        ("FLUX_R", flux["R"], "nanomaggy"),
        ("FLUX_Z", flux["Z"], "nanomaggy"),
        ("FLUX_IVAR_G", ivar["G"], "nanomaggy^-2"),
        ("FLUX_IVAR_R", ivar["R"], "nanomaggy^-2"),
        ("FLUX_IVAR_Z", ivar["Z"], "nanomaggy^-2"),
        ("MASKBITS", np.where(rng.random(n) < 0.05, 2**1, 0).astype("i2"), None),
        ("REF_ID", np.where(star, rng.integers(10**15, 10**18, n), -1).astype("i8"), None),
        ("REF_CAT", np.where(star, "G2", "").astype("S2"), None),
        ("GAIA_PHOT_G_MEAN_MAG", gaia_g, "mag"),
        ("GAIA_PHOT_BP_MEAN_MAG", np.where(star, gaia_g + 0.4, 0).astype(f4), "mag"),
        ("GAIA_PHOT_RP_MEAN_MAG", np.where(star, gaia_g - 0.5, 0).astype(f4), "mag"),
        ("PARALLAX", np.where(star, rng.exponential(0.5, n), 0).astype(f4), "mas"),
        ("BRICKNAME", np.where(tgt, brickname, "").astype("S8"), None),
        ("EBV", ebv, "mag"),
        ("FLUX_W1", flux["W1"], "nanomaggy"),
        ("FLUX_W2", flux["W2"], "nanomaggy"),
        ("FLUX_IVAR_W1", ivar["W1"], "nanomaggy^-2"),
        ("FLUX_IVAR_W2", ivar["W2"], "nanomaggy^-2"),
        ("FIBERFLUX_G", (flux["G"] * 0.4).astype(f4), "nanomaggy"),
        ("FIBERFLUX_R", (flux["R"] * 0.4).astype(f4), "nanomaggy"),
        ("FIBERFLUX_Z", (flux["Z"] * 0.4).astype(f4), "nanomaggy"),
        ("FIBERTOTFLUX_G", (flux["G"] * 0.45).astype(f4), "nanomaggy"),
        ("FIBERTOTFLUX_R", (flux["R"] * 0.45).astype(f4), "nanomaggy"),
        ("FIBERTOTFLUX_Z", (flux["Z"] * 0.45).astype(f4), "nanomaggy"),
        ("SERSIC", np.where(morph == "SER", rng.uniform(0.5, 6, n), 0).astype(f4), None),
        ("SHAPE_R", np.where(t.spectype == "GALAXY", rng.uniform(0.3, 3, n), 0).astype(f4), "arcsec"),
        ("SHAPE_E1", rng.normal(0, 0.15, n).astype(f4), None),
        ("SHAPE_E2", rng.normal(0, 0.15, n).astype(f4), None),
        ("PHOTSYS", np.where(t.dec > 32.375, "N", "S").astype("S1"), None),
        ("PRIORITY_INIT", np.where(tgt, 3000, 0).astype("i8"), None),
        ("NUMOBS_INIT", np.where(t.tracer == "QSO", 4, 1).astype("i8"), None),
        (f"{prefix}DESI_TARGET", desi_bits, None),
        (f"{prefix}BGS_TARGET", bgs, None),
        (f"{prefix}MWS_TARGET", mws, None),
        (f"{prefix}SCND_TARGET", np.zeros(n, "i8"), None),
        ("PLATE_RA", t.ra.astype(f8), "deg"),
        ("PLATE_DEC", t.dec.astype(f8), "deg"),
        ("COADD_NUMEXP", coadd_numexp, None),
        ("COADD_EXPTIME", t.exptime.astype(f4), "s"),
        ("COADD_NUMNIGHT", np.minimum(coadd_numexp, 2).astype("i2"), None),
        ("COADD_NUMTILE", np.ones(n, "i2"), None),
        ("MEAN_DELTA_X", rng.normal(0, 0.003, n).astype(f4), "mm"),
        ("RMS_DELTA_X", rng.uniform(0, 0.01, n).astype(f4), "mm"),
        ("MEAN_DELTA_Y", rng.normal(0, 0.003, n).astype(f4), "mm"),
        ("RMS_DELTA_Y", rng.uniform(0, 0.01, n).astype(f4), "mm"),
        ("MEAN_FIBER_RA", t.ra.astype(f8), "deg"),
        ("STD_FIBER_RA", rng.uniform(0, 0.1, n).astype(f4), "arcsec"),
        ("MEAN_FIBER_DEC", t.dec.astype(f8), "deg"),
        ("STD_FIBER_DEC", rng.uniform(0, 0.1, n).astype(f4), "arcsec"),
        ("MEAN_PSF_TO_FIBER_SPECFLUX", rng.uniform(0.6, 0.8, n).astype(f4), None),
        ("MIN_MJD", mjd0, "d"),
        ("MEAN_MJD", mjd0 + 0.02 * (coadd_numexp - 1), "d"),
        ("MAX_MJD", mjd0 + 0.04 * (coadd_numexp - 1), "d"),
    ]


def _exp_fibermap(rng: np.random.Generator, t: Targets, fiberstatus: np.ndarray,
                  numexp: np.ndarray, mjd: np.ndarray) -> fits.BinTableHDU:
    rows = np.repeat(np.arange(len(t)), numexp)
    m = len(rows)
    petal = rng.integers(0, 10, len(t))[rows].astype("i2")
    device = rng.integers(0, 523, len(t))[rows].astype("i4")
    expid = 100000 + rng.integers(0, 50000, m)
    return table_hdu("EXP_FIBERMAP", [
        ("TARGETID", t.targetid[rows], None),
        ("PRIORITY", np.full(m, 3000, "i4"), None),
        ("SUBPRIORITY", rng.random(m), None),
        ("NIGHT", np.full(m, 20210510, "i4"), None),
        ("EXPID", expid.astype("i4"), None),
        ("MJD", mjd[rows] + 0.01 * rng.random(m), "d"),
        ("TILEID", rng.integers(1000, 40000, len(t))[rows].astype("i4"), None),
        ("EXPTIME", (t.exptime[rows] / numexp[rows]).astype("f8"), "s"),
        ("PETAL_LOC", petal, None),
        ("DEVICE_LOC", device, None),
        ("LOCATION", (petal.astype("i8") * 1000 + device), None),
        ("FIBER", (petal.astype("i4") * 500 + rng.integers(0, 500, m)).astype("i4"), None),
        ("FIBERSTATUS", fiberstatus[rows].astype("i4"), None),
        ("FIBERASSIGN_X", rng.uniform(-400, 400, m).astype("f4"), "mm"),
        ("FIBERASSIGN_Y", rng.uniform(-400, 400, m).astype("f4"), "mm"),
        ("LAMBDA_REF", np.full(m, 5400.0, "f4"), "Angstrom"),
        ("PLATE_RA", t.ra[rows], "deg"),
        ("PLATE_DEC", t.dec[rows], "deg"),
        ("NUM_ITER", np.full(m, 2, "i8"), None),
        ("FIBER_X", rng.uniform(-400, 400, m), "mm"),
        ("FIBER_Y", rng.uniform(-400, 400, m), "mm"),
        ("DELTA_X", rng.normal(0, 0.004, m), "mm"),
        ("DELTA_Y", rng.normal(0, 0.004, m), "mm"),
        ("FIBER_RA", t.ra[rows], "deg"),
        ("FIBER_DEC", t.dec[rows], "deg"),
        ("PSF_TO_FIBER_SPECFLUX", rng.uniform(0.6, 0.8, m), None),
    ])


TSNR2_KINDS = ("GPBDARK", "ELG", "GPBBRIGHT", "LYA", "BGS", "GPBBACKUP", "QSO", "LRG")
SCORE_RANGES = {"B": (4000.0, 5800.0), "R": (5800.0, 7600.0), "Z": (7600.0, 9800.0)}


def _camera_scores(cam: str, arr: CameraArrays) -> list[tuple[str, np.ndarray, str | None]]:
    """SCORES columns measured on one camera's arrays."""
    lo, hi = SCORE_RANGES[cam]
    sel = (arr.wave >= lo) & (arr.wave < hi)
    f = arr.flux[:, sel]
    snr = f * np.sqrt(arr.ivar[:, sel]) / np.sqrt(dm.STEP)
    return [
        (f"INTEG_COADD_FLUX_{cam}", (f.sum(axis=1) * dm.STEP).astype("f4"), None),
        (f"MEDIAN_COADD_FLUX_{cam}", np.median(f, axis=1).astype("f4"), None),
        (f"MEDIAN_COADD_SNR_{cam}", np.median(snr, axis=1).astype("f4"), None),
    ]


def _scores(rng: np.random.Generator, t: Targets,
            measured: list[tuple[str, np.ndarray, str | None]]) -> fits.BinTableHDU:
    """The SCORES table: measured flux/SNR columns, then template (S/N)^2 per camera and total."""
    n = len(t)
    columns: list[tuple[str, np.ndarray, str | None]] = [("TARGETID", t.targetid, None), *measured]
    scale = (t.exptime / 1000.0)[:, None] * rng.lognormal(0, 0.2, (n, len(TSNR2_KINDS)))
    base = np.array([40.0, 80.0, 600.0, 30.0, 900.0, 20.0, 25.0, 70.0])
    per_cam = {cam: scale * base * w for cam, w in zip("BRZ", (0.2, 0.35, 0.45), strict=True)}
    for cam in "BRZ":
        columns += [(f"TSNR2_{k}_{cam}", per_cam[cam][:, i].astype("f4"), None)
                    for i, k in enumerate(TSNR2_KINDS)]
    columns += [(f"TSNR2_{k}", sum(per_cam[c][:, i] for c in "BRZ").astype("f4"), None)
                for i, k in enumerate(TSNR2_KINDS)]
    return table_hdu("SCORES", columns)


def true_spectra(rng: np.random.Generator, t: Targets, objtype: np.ndarray) -> np.ndarray:
    """Noise-free spectra on the merged grid (float32); sky fibers are sky-subtracted zeros."""
    true = synth.model_spectra(dm.merged_grid(), t.spectype, t.z,
                               np.where(objtype == "TGT", t.flux_r, 0.0), rng)
    true[objtype != "TGT"] = 0.0
    return true.astype(np.float32)


def synth_camera(rng: np.random.Generator, cam: str, t: Targets, true: np.ndarray,
                 fiberstatus: np.ndarray) -> CameraArrays:
    """One camera's noisy spectra, mask and resolution data for these rows."""
    n = len(t)
    wave = dm.camera_grid(cam)
    off = int(round((wave[0] - dm.GRID_START) / dm.STEP))
    length = len(wave)
    res = synth.resolution_data(synth.resolution_sigma(cam, n, rng))
    model = synth.apply_resolution(res, true[:, off:off + length])
    sigma = synth.noise_sigma(cam, wave, t.exptime)
    flux = model + sigma * rng.standard_normal((n, length))
    ivar = 1.0 / sigma**2
    mask = np.zeros((n, length), np.uint32)
    # DESI zeroes the ivar of the outermost pixels of each camera
    ivar[:, :2] = 0.0
    ivar[:, -2:] = 0.0
    # cosmic rays: masked; half keep a positive ivar (must still not be used)
    hits = rng.random((n, length)) < 0.002
    mask[hits] |= MASK_BITS["COSMIC"]
    flux[hits] += rng.uniform(50, 500, int(hits.sum()))
    ivar[hits & (rng.random((n, length)) < 0.5)] = 0.0
    bad = fiberstatus != 0
    mask[bad] |= MASK_BITS["BADFIBER"]
    ivar[bad] = 0.0
    return CameraArrays(wave, flux, ivar, mask, res)


@dataclass
class PixelFile:
    """One written coadd: its rows' truth and what went into FIBERMAP."""

    path: Path
    targets: Targets  # every row of the file, in file order
    objtype: np.ndarray
    fiberstatus: np.ndarray
    healpix: int
    fibermap_hdu: fits.BinTableHDU
    exp_fibermap_hdu: fits.BinTableHDU
    scores_hdu: fits.BinTableHDU


def write_healpix_coadd(out_dir: Path, rng: np.random.Generator, targets: Targets, survey: str,
                        program: str, healpix: int, n_sky: int, n_bad: int) -> PixelFile:
    """Write ``coadd-{survey}-{program}-{healpix}.fits`` holding ``targets`` plus ``n_sky`` sky
    fibers and ``n_bad`` targets on bad fibers, rows shuffled as fiber order mixes them."""
    n = len(targets)
    near = rng.integers(0, n, n_sky + n_bad)  # extra fibers sit among the targets
    ra = (targets.ra[near] + rng.normal(0, 0.01, len(near))) % 360.0
    dec = np.clip(targets.dec[near] + rng.normal(0, 0.01, len(near)), -90, 90)
    sky = Targets(
        targetid=-(rng.integers(0, 10, n_sky) * 10000 + rng.choice(520, n_sky, replace=False)
                   + 1).astype("i8"),
        ra=ra[:n_sky], dec=dec[:n_sky], spectype=np.full(n_sky, "GALAXY", "U6"),
        tracer=np.full(n_sky, "SKY", "U7"), z=np.zeros(n_sky), flux_r=np.zeros(n_sky),
        exptime=np.full(n_sky, 1000.0),
    )
    bad = make_targets(rng, *random_in_cone(rng, n_bad, 0.0, 0.0, 0.01),
                       first_objid=(1 << 21) + healpix % 1000 * 10)
    bad.ra, bad.dec = ra[n_sky:], dec[n_sky:]
    rows = Targets(**{k: np.concatenate([getattr(targets, k), getattr(sky, k), getattr(bad, k)])
                      for k in targets.__dict__})
    objtype = np.array(["TGT"] * n + ["SKY"] * n_sky + ["TGT"] * n_bad)
    fiberstatus = np.concatenate([np.zeros(n + n_sky, "i4"),
                                  np.array(BAD_FIBER_STATUS[:n_bad] or [], "i4")])
    order = rng.permutation(len(rows))
    rows, objtype, fiberstatus = rows.take(order), objtype[order], fiberstatus[order]

    specprod = SPECPRODS.get(survey, "iron")
    fm_cols = _fibermap_columns(rng, rows, objtype, fiberstatus, survey)
    by_name = {c: a for c, a, _ in fm_cols}
    if specprod == "fuji":
        fm_cols = [c for c in fm_cols if c[0] not in FUJI_LACKS]
    fibermap = table_hdu("FIBERMAP", fm_cols)
    exp_fm = _exp_fibermap(rng, rows, fiberstatus, by_name["COADD_NUMEXP"].astype(int),
                           by_name["MIN_MJD"])
    header = {
        "SPGRP": "healpix", "SPGRPVAL": healpix, "HPXPIXEL": healpix, "HPXNSIDE": dm.HPX_NSIDE,
        "HPXNEST": True, "SURVEY": survey, "PROGRAM": program, "SPECPROD": specprod,
        "FIBERMIN": int(min(0, by_name["TARGETID"].min(initial=0))),
        "INFIL000": dm.healpix_coadd_name(survey, program, healpix, prefix="spectra"),
        "LONGSTRN": "OGIP 1.0", "DEPNAM00": "python", "DEPVER00": "3.10.4",
        "DEPNAM01": "desispec", "DEPVER01": "0.60.2" if specprod == "iron" else "0.51.13",
    }
    folder = out_dir / dm.healpix_folder(survey, program, healpix)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / dm.healpix_coadd_name(survey, program, healpix)
    primary = fits.PrimaryHDU()
    primary.header.update(header)
    fits.HDUList([primary, fibermap, exp_fm]).writeto(path, overwrite=True, checksum=True)
    # one camera in memory at a time: a pixel with thousands of targets stays affordable
    true = true_spectra(rng, rows, objtype)
    measured = []
    for cam in dm.CAMERAS:
        arr = synth_camera(rng, cam, rows, true, fiberstatus)
        for hdu in camera_hdus(cam, arr):
            fits.append(path, hdu.data, hdu.header, checksum=True)
        measured += _camera_scores(cam, arr)
        del arr
    scores = _scores(rng, rows, measured)
    fits.append(path, scores.data, scores.header, checksum=True)
    return PixelFile(path, rows, objtype, fiberstatus, healpix, fibermap, exp_fm, scores)


# ---- redshift catalogs -------------------------------------------------------------------
def _redrock_values(rng: np.random.Generator, f: PixelFile) -> list[tuple[str, np.ndarray, str | None]]:
    """REDSHIFTS columns (data model order) for every row of a coadd."""
    t = f.targets
    n = len(t)
    qso = t.spectype == "QSO"
    zerr = np.where(qso, 2e-4, 1.5e-5) * (1 + np.abs(t.z)) * rng.lognormal(0, 0.3, n)
    z = t.z + zerr * rng.standard_normal(n)
    sky = f.objtype == "SKY"
    zwarn = np.where(sky, 2**0, np.where(rng.random(n) < 0.05, 2**2, 0)).astype("i8")
    zwarn |= np.where(f.fiberstatus != 0, 2**9, 0)  # NODATA
    subtype = np.where(t.spectype == "STAR", rng.choice(np.array(["K", "G", "F", "M"]), n), "")
    npix = np.full(n, 7900, "i8") - rng.integers(0, 200, n)
    return [
        ("TARGETID", t.targetid, None),
        ("CHI2", (npix * rng.normal(1.0, 0.05, n)).astype("f8"), None),
        ("COEFF", rng.normal(0, 1, (n, 10)), None),
        ("Z", z, None),
        ("ZERR", zerr, None),
        ("ZWARN", zwarn, None),
        ("NPIXELS", npix, None),
        ("SPECTYPE", t.spectype.astype("S6"), None),
        ("SUBTYPE", subtype.astype("S20"), None),
        ("NCOEFF", np.where(qso, 4, 10).astype("i8"), None),
        ("DELTACHI2", rng.lognormal(5, 1.5, n), None),
    ]


def _zcat_rows(rng: np.random.Generator, f: PixelFile, survey: str, program: str,
               drop: np.ndarray) -> list[tuple[str, np.ndarray, str | None]]:
    """zall-pix ZCATALOG columns for the rows of ``f`` not in ``drop`` (data model order)."""
    keep = ~drop
    n = int(keep.sum())
    rr = {c: a[keep] for c, a, _ in _redrock_values(rng, f)}
    fm = {c.name: f.fibermap_hdu.data[c.name][keep] for c in f.fibermap_hdu.columns}
    sc = {c.name: f.scores_hdu.data[c.name][keep] for c in f.scores_hdu.columns}
    out: list[tuple[str, np.ndarray, str | None]] = [
        ("TARGETID", rr["TARGETID"], None),
        ("SURVEY", np.full(n, survey, "S7"), None),
        ("PROGRAM", np.full(n, program, "S6"), None),
        ("HEALPIX", np.full(n, f.healpix, "i4"), None),
        ("SPGRPVAL", np.full(n, f.healpix, "i4"), None),
    ]
    out += [(c, rr[c], None) for c in ("Z", "ZERR", "ZWARN", "CHI2", "COEFF", "NPIXELS",
                                       "SPECTYPE", "SUBTYPE", "NCOEFF", "DELTACHI2")]
    out += [(c, np.asarray(v), None) for c, v in fm.items() if c != "TARGETID"]
    out += [(c, np.asarray(v), None) for c, v in sc.items() if c.startswith("TSNR2_")]
    nspec = np.ones(n, "i2")
    prim = np.ones(n, bool)
    if survey == "main":
        out += [("ZCAT_NSPEC", nspec, None), ("ZCAT_PRIMARY", prim, None),
                ("MAIN_NSPEC", nspec, None), ("MAIN_PRIMARY", prim, None)]
    else:
        out += [("SV_NSPEC", nspec, None), ("SV_PRIMARY", prim, None)]
    return out


def write_redrock(f: PixelFile, rng: np.random.Generator, survey: str, program: str,
                  drop: np.ndarray) -> Path:
    """``redrock-{survey}-{program}-{hpix}.fits`` beside the coadd, without ``drop`` rows."""
    keep = ~drop
    primary = fits.PrimaryHDU()
    primary.header["RRVER"] = "0.15.4"
    for i, name in enumerate(("GALAXY", "QSO:::HIZ", "QSO:::LOZ", "STAR:::F", "STAR:::G",
                              "STAR:::K", "STAR:::M")):
        primary.header[f"TEMNAM{i:02d}"] = name
        primary.header[f"TEMVER{i:02d}"] = "0.1"
    redshifts = table_hdu("REDSHIFTS", [(c, a[keep], u) for c, a, u in _redrock_values(rng, f)])
    fibermap = fits.BinTableHDU(f.fibermap_hdu.data[keep], header=f.fibermap_hdu.header.copy())
    tsnr = table_hdu("TSNR2", [(c.name, f.scores_hdu.data[c.name][keep], None)
                               for c in f.scores_hdu.columns
                               if c.name == "TARGETID" or c.name.startswith("TSNR2_")])
    path = f.path.parent / dm.healpix_coadd_name(survey, program, f.healpix, prefix="redrock")
    fits.HDUList([primary, redshifts, fibermap, f.exp_fibermap_hdu.copy(), tsnr]).writeto(
        path, overwrite=True, checksum=True)
    return path


def write_zall(out_dir: Path, rows: list[list[tuple[str, np.ndarray, str | None]]],
               specprod: str) -> Path:
    """``zcatalog/zall-pix-{specprod}.fits`` from the per-file ZCATALOG rows."""
    names = [c for c, _, _ in rows[0]]
    merged = [(c, np.concatenate([dict((k, a) for k, a, _ in r)[c] for r in rows]), None)
              for c in names]
    primary = fits.PrimaryHDU()
    primary.header["ZCATVER"] = "v1"
    hdu = table_hdu("ZCATALOG", merged)
    folder = out_dir / "zcatalog"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"zall-pix-{specprod}.fits"
    fits.HDUList([primary, hdu]).writeto(path, overwrite=True, checksum=True)
    return path


# ---- the hook's work ---------------------------------------------------------------------
def write_sample(request: SampleRequest) -> SampleResult:
    """Write the sample described by ``request`` (options: survey, program, catalog)."""
    opts = request.options
    survey = str(opts.get("survey") or "main").lower()
    program = str(opts.get("program") or "dark").lower()
    catalog = str(opts.get("catalog") or "zall").lower()
    if survey not in CONFIG_OF or program not in dm.PROGRAMS:
        raise InputError(f"sample option --survey must be one of {', '.join(CONFIG_OF)} and "
                         f"--program one of {', '.join(dm.PROGRAMS)}; got {survey!r}, {program!r}")
    if catalog not in CATALOG_KINDS:
        raise InputError(f"sample option --catalog must be one of {', '.join(CATALOG_KINDS)}; "
                         f"got {catalog!r}")
    out_dir = Path(request.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(request.seed)
    targets = make_targets(rng, *cone_positions(request, request.n, rng))
    pix = hp.ang2pix(dm.HPX_NSIDE, targets.ra, targets.dec, nest=True, lonlat=True)
    # a few real targets the catalog lacks: about 2%, at least one
    n_missing = 0 if catalog == "none" else max(1, min(request.n // 50, 25))
    missing = set(rng.choice(targets.targetid, n_missing, replace=False).tolist()) if n_missing else set()

    files: list[str] = []
    zrows = []
    n_sky = n_bad = 0
    for hpix in np.unique(pix):
        members = targets.take(np.flatnonzero(pix == hpix))
        sky = min(50, max(2, len(members) // 40))
        bad = 1 if len(members) < 100 else 2
        f = write_healpix_coadd(out_dir, rng, members, survey, program, int(hpix), sky, bad)
        files.append(str(f.path))
        n_sky, n_bad = n_sky + sky, n_bad + bad
        drop = np.isin(f.targets.targetid, list(missing))
        if catalog == "redrock":
            files.append(str(write_redrock(f, rng, survey, program, drop)))
        elif catalog == "zall":
            zrows.append(_zcat_rows(rng, f, survey, program, drop))
    if zrows:
        files.append(str(write_zall(out_dir, zrows, SPECPRODS[survey])))
    n_files = len(np.unique(pix))
    notes = [
        f"{n_files} healpix coadd file(s) (NSIDE 64, nested) of DESI survey {survey!r}, "
        f"program {program!r}: {request.n} targets, {n_sky} sky fibers (negative TARGETID), "
        f"{n_bad} targets on bad fibers",
        {"zall": f"redshift catalog zall-pix-{SPECPRODS[survey]}.fits lacks "
                 f"{n_missing} of the targets (their Z is NaN after a build)",
         "redrock": f"per-coadd redrock files lack {n_missing} of the targets",
         "none": "no redshift catalog written (Z is NaN after a build)"}[catalog],
        f"build it with: mmu build desi --raw {out_dir} --out ROOT --config {CONFIG_OF[survey]}",
    ]
    return SampleResult(files=files, n_objects=request.n, notes=notes)

