"""The fixed native column set of each config, with stored dtypes and fill values.

DESI files differ in which FIBERMAP columns they carry (targeting bits are per survey, older
productions lack some summary columns, catalogs lack targets). Every batch of a build must
have the same columns, so each config stores one fixed list: a column a file lacks is filled
(float NaN, integer -1, string empty, bool False) and columns not listed are not stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Column:
    """One stored native column: name as DESI spells it, stored dtype, description."""

    name: str
    dtype: str
    description: str

    @property
    def fill(self) -> object:
        """The value stored where the input lacks this column or row."""
        kind = np.dtype(self.dtype).kind
        if kind == "f":
            return np.nan
        if kind in "iu":
            return -1
        if kind == "b":
            return False
        return b""

    def empty(self, n: int) -> np.ndarray:
        """``n`` fill values of this column's dtype."""
        return np.full(n, self.fill, dtype=self.dtype)


def _cols(dtype: str, spec: str) -> list[Column]:
    """``NAME: description`` lines -> columns of one dtype."""
    out = []
    for line in spec.strip().splitlines():
        name, _, desc = line.partition(":")
        out.append(Column(name.strip(), dtype, desc.strip()))
    return out


# FIBERMAP columns common to every survey (names, types and units from the DESI data model).
FIBERMAP_COLUMNS: list[Column] = [
    Column("TARGETID", "i8", "DESI unique target id"),
    Column("TARGET_RA", "f8", "target right ascension, degrees (ICRS)"),
    Column("TARGET_DEC", "f8", "target declination, degrees (ICRS)"),
    Column("COADD_FIBERSTATUS", "i4", "bitwise AND of the input FIBERSTATUS (0 = good)"),
    Column("OBJTYPE", "S3", "object type: TGT, SKY, NON, BAD"),
    Column("MORPHTYPE", "S4", "Legacy Surveys morphological type"),
    Column("BRICKNAME", "S8", "Legacy Surveys brick name"),
    Column("PHOTSYS", "S1", "N for BASS/MzLS, S for DECaLS"),
    Column("REF_CAT", "S2", "astrometric reference catalog (G2, T2, L3 or empty)"),
    *_cols("i2", """
        RELEASE: Legacy Surveys release id
        MASKBITS: Legacy Surveys mask bits
        COADD_NUMEXP: number of exposures in the coadd
        COADD_NUMNIGHT: number of nights in the coadd
        COADD_NUMTILE: number of tiles in the coadd
    """),
    *_cols("i4", """
        BRICKID: Legacy Surveys brick id
        BRICK_OBJID: object id within its brick
    """),
    *_cols("i8", """
        REF_ID: astrometric catalog id (Gaia source_id, Tycho-2 id)
        PRIORITY_INIT: initial fiber-assignment priority
        NUMOBS_INIT: initial number of requested observations
    """),
    *_cols("f4", """
        EBV: Galactic E(B-V) from SFD98, mag
        FLUX_G: Legacy Surveys g flux, nanomaggies
        FLUX_R: Legacy Surveys r flux, nanomaggies
        FLUX_Z: Legacy Surveys z flux, nanomaggies
        FLUX_W1: WISE W1 flux, nanomaggies
        FLUX_W2: WISE W2 flux, nanomaggies
        FLUX_IVAR_G: inverse variance of FLUX_G, nanomaggies^-2
        FLUX_IVAR_R: inverse variance of FLUX_R, nanomaggies^-2
        FLUX_IVAR_Z: inverse variance of FLUX_Z, nanomaggies^-2
        FLUX_IVAR_W1: inverse variance of FLUX_W1, nanomaggies^-2
        FLUX_IVAR_W2: inverse variance of FLUX_W2, nanomaggies^-2
        FIBERFLUX_G: predicted g flux in a 1.5 arcsec fiber, nanomaggies
        FIBERFLUX_R: predicted r flux in a 1.5 arcsec fiber, nanomaggies
        FIBERFLUX_Z: predicted z flux in a 1.5 arcsec fiber, nanomaggies
        FIBERTOTFLUX_G: g flux in the fiber from all sources, nanomaggies
        FIBERTOTFLUX_R: r flux in the fiber from all sources, nanomaggies
        FIBERTOTFLUX_Z: z flux in the fiber from all sources, nanomaggies
        SERSIC: Sersic index of the galaxy model
        SHAPE_R: half-light radius of the galaxy model, arcsec
        SHAPE_E1: ellipticity component 1 of the galaxy model
        SHAPE_E2: ellipticity component 2 of the galaxy model
        GAIA_PHOT_G_MEAN_MAG: Gaia G magnitude
        GAIA_PHOT_BP_MEAN_MAG: Gaia BP magnitude
        GAIA_PHOT_RP_MEAN_MAG: Gaia RP magnitude
        PARALLAX: reference catalog parallax, mas
        PMRA: proper motion in RA (times cos dec), mas/yr
        PMDEC: proper motion in Dec, mas/yr
        COADD_EXPTIME: summed exposure time of the coadd, s
        MEAN_PSF_TO_FIBER_SPECFLUX: mean fraction of a point source's light in the fiber
    """),
    *_cols("f8", """
        MIN_MJD: first exposure MJD of the coadd
        MEAN_MJD: mean exposure MJD of the coadd
        MAX_MJD: last exposure MJD of the coadd
    """),
]

# Template signal-to-noise of the coadd, from the SCORES HDU (row-matched to FIBERMAP).
SCORES_COLUMNS: list[Column] = _cols("f4", """
    TSNR2_BGS: BGS template (S/N)^2 summed over B, R, Z
    TSNR2_ELG: ELG template (S/N)^2 summed over B, R, Z
    TSNR2_LRG: LRG template (S/N)^2 summed over B, R, Z
    TSNR2_LYA: LYA template (S/N)^2 summed over B, R, Z
    TSNR2_QSO: QSO template (S/N)^2 summed over B, R, Z
""")

# Redrock results (zall-pix ZCATALOG or redrock REDSHIFTS); missing targets get the fills.
CATALOG_COLUMNS: list[Column] = [
    Column("Z", "f8", "redrock redshift (NaN: not in the redshift catalog)"),
    Column("ZERR", "f8", "redrock redshift uncertainty"),
    Column("ZWARN", "i8", "redrock warning bits, 0 = good (-1: not in the catalog)"),
    Column("SPECTYPE", "S6", "redrock spectral type: GALAXY, QSO, STAR"),
    Column("SUBTYPE", "S20", "redrock spectral subtype"),
    Column("CHI2", "f8", "redrock best-fit chi^2"),
    Column("DELTACHI2", "f8", "chi^2 difference to the second-best redrock fit"),
    Column("NPIXELS", "i8", "unmasked pixels in the redrock fit"),
]

# Where each spectrum comes from, as mmu_desi.survey tells it (header, healpix name, tiles
# table, targeting columns); PROGRAM is empty when nothing tells it.
PROVENANCE_COLUMNS: list[Column] = [
    Column("SURVEY", "S7", "DESI survey of the coadd: main, sv1, sv3, ..."),
    Column("PROGRAM", "S6", "DESI program of the coadd: dark, bright, backup, other (empty: "
           "not told, e.g. a tile coadd without a tiles table)"),
]


@dataclass(frozen=True)
class ConfigSpec:
    """What a config keeps and which columns it stores."""

    name: str
    description: str
    survey: str  # the DESI SURVEY value kept
    specprod: str  # the spectroscopic production the config describes
    primary_flags: tuple[str, ...]  # catalog flags for the primary spectrum; first present wins
    target_columns: tuple[Column, ...]  # the survey's targeting bit columns


def _targets(prefix: str, survey: str) -> tuple[Column, ...]:
    return tuple(
        Column(f"{prefix}{kind}_TARGET", "i8", f"{survey} {label} targeting bits")
        for kind, label in (("DESI", "dark-time"), ("BGS", "bright galaxy"),
                            ("MWS", "Milky Way survey"), ("SCND", "secondary"))
    )


CONFIGS: dict[str, ConfigSpec] = {
    "dr1_main": ConfigSpec(
        "dr1_main", "DR1 (iron) main survey, primary spectra", "main", "iron",
        ("MAIN_PRIMARY", "ZCAT_PRIMARY"), _targets("", "main survey"),
    ),
    "edr_sv3": ConfigSpec(
        "edr_sv3", "EDR (fuji) SV3, the one-percent survey, primary spectra", "sv3", "fuji",
        ("SV_PRIMARY", "ZCAT_PRIMARY"), _targets("SV3_", "SV3"),
    ),
}
DEFAULT_CONFIG = "dr1_main"


def stored_columns(config: str) -> list[Column]:
    """Every native column a build of ``config`` stores, in a fixed order."""
    spec = CONFIGS[config]
    return [*FIBERMAP_COLUMNS, *spec.target_columns, *SCORES_COLUMNS, *CATALOG_COLUMNS,
            *PROVENANCE_COLUMNS]


def declared_columns() -> dict[str, str]:
    """Native column name -> description over all configs (``SurveyInfo.columns``)."""
    out: dict[str, str] = {}
    for config in CONFIGS:
        for col in stored_columns(config):
            out.setdefault(col.name, col.description)
    return out


def coerce(values: np.ndarray, column: Column) -> np.ndarray:
    """Cast a column read from FITS (any byte order, str or bytes) to its stored dtype."""
    target = np.dtype(column.dtype)
    values = np.asarray(values)
    if target.kind == "S":
        if values.dtype.kind == "U":
            values = np.char.encode(values, "ascii", "replace")
        # FITS pads strings with blanks; stored values are trimmed, fixed width
        return np.char.strip(values.astype(f"S{max(values.dtype.itemsize, 1)}")).astype(target)
    if target.kind == "b":
        return values.astype(bool)
    return values.astype(target)
