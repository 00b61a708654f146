"""MaNGA DR17 file names, folder layout, mask bits and the image channels we store.

Sources: the SDSS DR17 data model (DRP ``v3_1_1`` LOGCUBE, ``drpall``), the DAP data model and
code (``MAPS-{DAPTYPE}``, ``dapall``); see docs/surveys.md. Every path is built or parsed here
and nowhere else. The DAP channels stored are every channel of ``MAP_EXTENSIONS`` as the MAPS
headers list them (their number and names differ between DAP versions), never a fixed table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DRPVER = "v3_1_1"
DAPVER = "3.1.0"
DAPTYPE = "HYB10-MILESHC-MASTARSSP"  # DR17's; --daptype chooses another
# The four DAPTYPE extensions of the DR17 dapall file (DAP 3.x: one extension per DAPTYPE);
# DAP 2.x dapall files have one extension, DAPALL, with a DAPTYPE column instead.
DAPALL_SINGLE_HDU = "DAPALL"
DAPALL_EXTENSIONS = (
    "SPX-MILESHC-MASTARSSP",
    "VOR10-MILESHC-MASTARSSP",
    "HYB10-MILESHC-MASTARSSP",
    "HYB10-MILESHC-MASTARHC2",
)
DRPALL_HDU = "MANGA"

NWAVE = 4563  # DR17 LOGCUBE wavelengths, 3621.6-10354.4 A, constant step in log10(lambda)
LOG_WAVE_START = 3.5589  # log10(3621.596)
LOG_WAVE_STEP = 1e-4
GRID = 96  # padded spaxel grid (MMU v1): the largest cube (127 fibres) is 74x74
SPAXEL_SIZE = 0.5  # arcsec

# Fibres per bundle -> cube side in spaxels (DRP v3_1_1).
CUBE_SIZE = {19: 32, 37: 42, 61: 54, 91: 64, 127: 74}
# The 17 science bundles of a MaNGA plate (ifudesign = fibres * 100 + bundle number).
PLATE_IFUDESIGNS = (
    1901, 1902, 3701, 3702, 3703, 3704, 6101, 6102, 6103, 6104, 9101, 9102,
    12701, 12702, 12703, 12704, 12705,
)

# MANGA_DRP3PIXMASK (cube MASK extension).
DRP_NOCOV = 1 << 0
DRP_LOWCOV = 1 << 1
DRP_DEADFIBER = 1 << 2
DRP_FORESTAR = 1 << 3
DRP_DONOTUSE = 1 << 10
# MANGA_DAPPIXMASK (MAPS *_MASK extensions).
DAP_NOCOV = 1 << 0
DAP_NOVALUE = 1 << 4
DAP_UNRELIABLE = 1 << 5
DAP_DONOTUSE = 1 << 30
# MANGA_DRP3QUAL (drpall drp3qual): the cube is unusable.
DRP3QUAL_CRITICAL = 1 << 30

CUBE_RE = re.compile(r"^manga-(?P<plate>\d+)-(?P<ifu>\d+)-LOGCUBE\.fits(?:\.gz)?$")
# Any DAPTYPE: HYB10-MILESHC-MASTARSSP, HYB10-GAU-MILESHC, VOR10-..., SPX-...
MAPS_RE = re.compile(r"^manga-(?P<plate>\d+)-(?P<ifu>\d+)-MAPS-(?P<daptype>[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+)"
                     r"\.fits(?:\.gz)?$")
DRPALL_RE = re.compile(r"^drpall-(?P<drpver>v\d+_\d+_\d+)\.fits(?:\.gz)?$")
DAPALL_RE = re.compile(r"^dapall-(?P<drpver>v\d+_\d+_\d+)-(?P<dapver>\d+\.\d+\.\d+)\.fits(?:\.gz)?$")


def plateifu_of(plate: int | str, ifudesign: int | str) -> str:
    return f"{int(plate)}-{int(ifudesign)}"


def cube_name(plateifu: str) -> str:
    return f"manga-{plateifu}-LOGCUBE.fits.gz"


def maps_name(plateifu: str, daptype: str = DAPTYPE) -> str:
    return f"manga-{plateifu}-MAPS-{daptype}.fits.gz"


def drpall_name(drpver: str = DRPVER) -> str:
    return f"drpall-{drpver}.fits"


def dapall_name(drpver: str = DRPVER, dapver: str = DAPVER) -> str:
    return f"dapall-{drpver}-{dapver}.fits"


# The SAS tree below https://data.sdss.org/sas/ (``dr17/manga/spectro/...``).
SAS_ROOT = Path("dr17/manga/spectro")


def sas_cube_path(plateifu: str, drpver: str = DRPVER) -> Path:
    plate, _ = plateifu.split("-")
    return SAS_ROOT / "redux" / drpver / plate / "stack" / cube_name(plateifu)


def sas_maps_path(plateifu: str, daptype: str = DAPTYPE, drpver: str = DRPVER,
                  dapver: str = DAPVER) -> Path:
    plate, ifu = plateifu.split("-")
    return (SAS_ROOT / "analysis" / drpver / dapver / daptype / plate / ifu
            / maps_name(plateifu, daptype))


def sas_drpall_path(drpver: str = DRPVER) -> Path:
    return SAS_ROOT / "redux" / drpver / drpall_name(drpver)


def sas_dapall_path(drpver: str = DRPVER, dapver: str = DAPVER) -> Path:
    return SAS_ROOT / "analysis" / drpver / dapver / dapall_name(drpver, dapver)


def expected_maps_path(cube: Path | str, plateifu: str, daptype: str = DAPTYPE) -> Path:
    """Where the MAPS file of a cube would be: the SAS analysis tree if the cube is in the SAS
    redux tree (``.../spectro/redux/v3_1_1/{plate}/stack/``), else beside the cube."""
    cube = Path(cube)
    parents = cube.parents
    if len(parents) > 4 and parents[0].name == "stack" and parents[3].name == "redux":
        plate, ifu = plateifu.split("-")
        return (parents[4] / "analysis" / parents[2].name / DAPVER / daptype / plate / ifu
                / maps_name(plateifu, daptype))
    return cube.parent / maps_name(plateifu, daptype)


def expected_cube_path(maps: Path | str, plateifu: str) -> Path:
    """Where the LOGCUBE of a MAPS file would be: the SAS redux tree if the MAPS file is in
    the SAS analysis tree (``.../analysis/{drpver}/{dapver}/{daptype}/{plate}/{ifu}/``), else
    beside it."""
    maps = Path(maps)
    parents = maps.parents
    if len(parents) > 6 and parents[5].name == "analysis":
        return parents[6] / "redux" / parents[4].name / parents[1].name / "stack" / cube_name(plateifu)
    return maps.parent / cube_name(plateifu)


def parse_maps_name(filename: str) -> tuple[str, str] | None:
    """``manga-8485-1901-MAPS-HYB10-GAU-MILESHC.fits.gz`` -> (``8485-1901``, DAPTYPE); else None."""
    m = MAPS_RE.match(filename)
    return (plateifu_of(m["plate"], m["ifu"]), m["daptype"]) if m else None


def parse_plateifu(filename: str) -> str | None:
    """``manga-8485-1901-LOGCUBE.fits.gz`` or its MAPS file -> ``8485-1901``; else None."""
    m = CUBE_RE.match(filename) or MAPS_RE.match(filename)
    return plateifu_of(m["plate"], m["ifu"]) if m else None


# ---- the image channels of ifu_image_* ------------------------------------------------------
@dataclass(frozen=True)
class Channel:
    """One stored image channel: a DRP reconstructed image/PSF or one channel of a DAP map."""

    label: str
    hdu: str  # FITS extension holding it
    channel: str | None = None  # DAP channel name (header C01, C1 ...); None: one-channel map
    filter: str = ""
    units: str = ""  # used when the file does not say (and when the MAPS file is missing)
    source: str = "dap"  # "drp" (LOGCUBE) or "dap" (MAPS)


def dap_channel(hdu: str, channel: str | None, units: str) -> Channel:
    """The stored channel of a DAP map: label ``{extension}_{channel}``, lower case, every run
    of other characters than letters and digits made one ``_`` (``emline_gflux_ha_6564``)."""
    name = hdu if channel is None else f"{hdu}_{channel}"
    label = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return Channel(label=label, hdu=hdu, channel=channel, units=units)


DRP_CHANNELS = tuple(
    Channel(f"reconstructed_{b}", f"{b.upper()}IMG", None, b, "nanomaggies/pixel", "drp")
    for b in "griz"
) + tuple(Channel(f"reconstructed_psf_{b}", f"{b.upper()}PSF", None, b, "", "drp") for b in "griz")

# The DAP maps stored, every channel of each as its header lists them (C1.. or C01.., zero
# padded to the digits of the channel count, as the DAP writes them; docs/surveys.md).
MAP_EXTENSIONS = ("STELLAR_VEL", "STELLAR_SIGMA", "EMLINE_GFLUX", "EMLINE_GEW", "EMLINE_GVEL",
                  "EMLINE_GSIGMA", "SPECINDEX")
EMLINE_FLUX_UNITS = "1E-17 erg/s/cm^2/spaxel"

# What the sample writer writes (the reader takes channel lists from the headers).
# DAP 3.1.0 (DR17) emission lines, in file order (datamodel "emission-line" and
# "spectral-index"); DAP 2.2.1's ELPMILES list has 22 ('{name}-{int(restwave)}').
EMLINE_NAMES = (
    "OII-3727", "OII-3729", "H12-3751", "H11-3771", "Hthe-3798", "Heta-3836", "NeIII-3869",
    "HeI-3889", "Hzet-3890", "NeIII-3968", "Heps-3971", "Hdel-4102", "Hgam-4341", "HeII-4687",
    "Hb-4862", "OIII-4960", "OIII-5008", "NI-5199", "NI-5201", "HeI-5877", "OI-6302", "OI-6365",
    "NII-6549", "Ha-6564", "NII-6585", "SII-6718", "SII-6732", "HeI-7067", "ArIII-7137",
    "ArIII-7753", "Peta-9017", "SIII-9071", "Pzet-9231", "SIII-9533", "Peps-9548",
)
EMLINE_NAMES_DAP2 = (
    "OII-3727", "OII-3729", "Hthe-3798", "Heta-3836", "NeIII-3869", "Hzet-3890", "NeIII-3968",
    "Heps-3971", "Hdel-4102", "Hgam-4341", "HeII-4687", "Hb-4862", "OIII-4960", "OIII-5008",
    "HeI-5877", "OI-6302", "OI-6365", "NII-6549", "Ha-6564", "NII-6585", "SII-6718", "SII-6732",
)
SPECINDEX_NAMES = (
    ("CN1", "mag"), ("CN2", "mag"), ("Ca4227", "ang"), ("G4300", "ang"), ("Fe4383", "ang"),
    ("Ca4455", "ang"), ("Fe4531", "ang"), ("C24668", "ang"), ("Hb", "ang"), ("Fe5015", "ang"),
    ("Mg1", "mag"), ("Mg2", "mag"), ("Mgb", "ang"), ("Fe5270", "ang"), ("Fe5335", "ang"),
    ("Fe5406", "ang"), ("Fe5709", "ang"), ("Fe5782", "ang"), ("NaD", "ang"), ("TiO1", "mag"),
    ("TiO2", "mag"), ("HDeltaA", "ang"), ("HGammaA", "ang"), ("HDeltaF", "ang"),
    ("HGammaF", "ang"), ("CaHK", "ang"), ("CaII1", "ang"), ("CaII2", "ang"), ("CaII3", "ang"),
    ("Pa17", "ang"), ("Pa14", "ang"), ("Pa12", "ang"), ("MgICvD", "ang"), ("NaICvD", "ang"),
    ("MgIIR", "ang"), ("FeHCvD", "ang"), ("NaI", "ang"), ("bTiO", "mag"), ("aTiO", "mag"),
    ("CaH1", "mag"), ("CaH2", "mag"), ("NaISDSS", "ang"), ("TiO2SDSS", "mag"), ("D4000", ""),
    ("Dn4000", ""), ("TiOCvD", ""),
)
