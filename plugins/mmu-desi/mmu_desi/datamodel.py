"""DESI file names, folder layout and wavelength grids (docs/surveys.md), in one place.

Healpix coadds: ``healpix/{survey}/{program}/{hpix // 100}/{hpix}/coadd-{survey}-{program}-{hpix}.fits``
with hpix DESI's own NSIDE-64 NESTED pixel. Tile coadds: ``tiles/cumulative/{tileid}/{night}/
coadd-{spectro}-{tileid}-thru{night}.fits`` (and per-night / per-exposure variants). Redshifts:
``zall-pix-{specprod}.fits`` (HDU ``ZCATALOG``) or ``redrock-*.fits`` beside each coadd
(HDU ``REDSHIFTS``). A tile's survey and program: the release's ``tiles-{specprod}.fits``
(HDU ``TILE_COMPLETENESS``), or the survey prefix of the FIBERMAP targeting columns; tile
coadds carry no ``SURVEY``/``PROGRAM``/``FAPRGRM`` keyword (docs/surveys.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

CAMERAS = ("B", "R", "Z")

# Camera grids of the DESI spectrographs, 0.8 Å steps (inclusive ends).
STEP = 0.8
CAMERA_RANGES = {"B": (3600.0, 5800.0), "R": (5760.0, 7620.0), "Z": (7520.0, 9824.0)}
CAMERA_LENGTHS = {"B": 2751, "R": 2326, "Z": 2881}

# The merged grid every stored spectrum uses (MMU v1): 3600-9824 Å, 7781 pixels.
GRID_START = 3600.0
GRID_LENGTH = 7781
GRID_TOLERANCE = 0.01  # Å; camera wavelengths must sit on the merged grid within this

HPX_NSIDE = 64  # DESI groups healpix coadds by NSIDE-64 NESTED pixels

SURVEYS = ("cmx", "main", "special", "sv1", "sv2", "sv3")
PROGRAMS = ("backup", "bright", "dark", "other")

_HEALPIX_COADD = re.compile(r"^coadd-([a-z0-9]+)-([a-z0-9]+)-(\d+)\.fits$")
_TILE_COADD = re.compile(r"^coadd-(\d)-(\d+)-([A-Za-z0-9]+)\.fits$")
COADD_GLOB = "coadd-*.fits"
ZALL_GLOB = "zall-pix-*.fits"
REDROCK_GLOB = "redrock-*.fits"
TILES_GLOB = "tiles-*.fits"  # tiles-{specprod}.fits, one row per tile
TILES_HDU = "TILE_COMPLETENESS"  # TILEID, SURVEY, PROGRAM, FAPRGRM, ...

# Where a coadd says its survey and program: healpix coadds in the primary header; tile
# coadds nowhere (their primary header has SPGRP, SPGRPVAL, NIGHT, TILEID, SPECTRO, PETAL).
SURVEY_KEYS = ("SURVEY",)
PROGRAM_KEYS = ("PROGRAM", "FAPRGRM")
TILEID_KEY = "TILEID"

# FIBERMAP targeting columns by survey. Every coadd FIBERMAP has the main survey's
# (unprefixed) columns; those of an earlier survey carry its prefix and are optional.
MAIN_TARGET_COLUMNS = ("DESI_TARGET", "BGS_TARGET", "MWS_TARGET", "SCND_TARGET")
PREFIXED_TARGET_COLUMNS = {
    "cmx": ("CMX_TARGET",),
    **{sv: tuple(f"{sv.upper()}_{c}" for c in MAIN_TARGET_COLUMNS) for sv in ("sv1", "sv2", "sv3")},
}
TARGET_COLUMNS = MAIN_TARGET_COLUMNS + tuple(
    c for cols in PREFIXED_TARGET_COLUMNS.values() for c in cols)


def merged_grid() -> np.ndarray:
    """The 7781 merged wavelengths in Å (float64; computed by index, so no drift)."""
    return GRID_START + STEP * np.arange(GRID_LENGTH, dtype=np.float64)


def camera_grid(camera: str) -> np.ndarray:
    """The official wavelength grid of one camera (float64 Å)."""
    lo, _ = CAMERA_RANGES[camera]
    return lo + STEP * np.arange(CAMERA_LENGTHS[camera], dtype=np.float64)


@dataclass(frozen=True)
class CoaddName:
    """What a coadd file name tells: healpix (survey, program, pixel) or tile (spectrograph,
    tile, group)."""

    kind: str  # "healpix" or "tile"
    survey: str | None = None
    program: str | None = None
    healpix: int | None = None
    spectro: int | None = None
    tileid: int | None = None
    group: str | None = None


def parse_coadd_name(name: str) -> CoaddName | None:
    """Parse ``coadd-main-dark-9557.fits`` or ``coadd-3-80605-thru20210205.fits``; else None."""
    m = _HEALPIX_COADD.match(name)
    if m and m.group(1) in SURVEYS:
        return CoaddName("healpix", survey=m.group(1), program=m.group(2), healpix=int(m.group(3)))
    m = _TILE_COADD.match(name)
    if m:
        return CoaddName("tile", spectro=int(m.group(1)), tileid=int(m.group(2)), group=m.group(3))
    return None


def healpix_coadd_name(survey: str, program: str, healpix: int, prefix: str = "coadd") -> str:
    """``coadd-{survey}-{program}-{healpix}.fits`` (or ``redrock-...`` with ``prefix``)."""
    return f"{prefix}-{survey}-{program}-{int(healpix)}.fits"


def healpix_folder(survey: str, program: str, healpix: int) -> str:
    """The official relative folder of a healpix coadd: ``healpix/main/dark/95/9557``."""
    return f"healpix/{survey}/{program}/{int(healpix) // 100}/{int(healpix)}"


def redrock_name_for(coadd_name: str) -> str:
    """The redrock file that goes with a coadd: same name, ``redrock-`` prefix."""
    return "redrock-" + coadd_name[len("coadd-"):]


def tile_coadd_name(spectro: int, tileid: int, night: int, prefix: str = "coadd") -> str:
    """``coadd-{spectro}-{tileid}-thru{night}.fits`` (a cumulative tile coadd)."""
    return f"{prefix}-{int(spectro)}-{int(tileid)}-thru{int(night)}.fits"


def tile_folder(tileid: int, night: int) -> str:
    """The official relative folder of a cumulative tile coadd: ``tiles/cumulative/80605/20210205``."""
    return f"tiles/cumulative/{int(tileid)}/{int(night)}"
