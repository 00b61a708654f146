"""The Galaxy Zoo 3D (DR17 VAC v4_0_0) on-disk layout: file names, HDU order, dtypes, WCS.

Facts from docs/surveys.md (the Galaxy Zoo 3D section gives each one's source: the data model
or the code that wrote the files). Nothing else in the plugin formats or parses a gz3d file
name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

# ---- file names ---------------------------------------------------------------------------
METADATA_NAME = "gz3d_metadata.fits"
CENTERS_NAME = "gz3d_galaxy_centers.fits"
STARS_NAME = "gz3d_foreground_stars.fits"

# gz3d_<MANGAID>_<IFUDESIGNSIZE>_<zooniverse subject id>.fits.gz (MANGAID like 1-641253)
FILE_RE = re.compile(
    r"^gz3d_(?P<mangaid>\d+-\d+)_(?P<ifu>\d+)_(?P<subject>\d+)\.fits(?P<gz>\.gz)?$"
)
# gz3d_metadata.fits's file_name: the production name, without the gz3d_ prefix and .gz
# (e.g. 1-109223_127_14715847.fits); the subject id is what ties a row to its file.
META_NAME_RE = re.compile(r"(?:^|_)(?P<mangaid>\d+-\d+)_(?P<ifu>\d+)_(?P<subject>\d+)\.fits")


@dataclass(frozen=True)
class GalaxyFileName:
    """The three fields a gz3d file name carries."""

    mangaid: str
    ifu_size: int
    subject_id: int

    @property
    def file_name(self) -> str:
        """Name of the released (gzipped) file."""
        return f"gz3d_{self.mangaid}_{self.ifu_size}_{self.subject_id}.fits.gz"

    @property
    def metadata_file_name(self) -> str:
        """The ``file_name`` value gz3d_metadata.fits gives the same galaxy."""
        return f"{self.mangaid}_{self.ifu_size}_{self.subject_id}.fits"


def parse_file_name(name: str) -> GalaxyFileName | None:
    """Fields of a galaxy file name, or None if ``name`` is not one."""
    m = FILE_RE.match(name)
    if m is None:
        return None
    return GalaxyFileName(m["mangaid"], int(m["ifu"]), int(m["subject"]))


def parse_metadata_file_name(value: str) -> GalaxyFileName | None:
    """Fields of a gz3d_metadata.fits ``file_name`` (with or without gz3d_ / .gz)."""
    m = META_NAME_RE.search(value.strip())
    if m is None:
        return None
    return GalaxyFileName(m["mangaid"], int(m["ifu"]), int(m["subject"]))


# ---- HDUs, read by index (they have no names) ----------------------------------------------
N_HDUS = 11
HDU_IMAGE = 0
HDU_MASKS = {"center": 1, "star": 2, "spiral": 3, "bar": 4}
HDU_METADATA = 5
HDU_CENTER_CLUSTERS = 6
HDU_STAR_CLUSTERS = 7
HDU_CENTER_STAR_CLASSIFICATIONS = 8
HDU_SPIRAL_CLASSIFICATIONS = 9
HDU_BAR_CLASSIFICATIONS = 10
HDU_CONTENT = {
    0: "colour image",
    1: "galaxy-centre mask",
    2: "foreground-star mask",
    3: "spiral-arm mask",
    4: "bar mask",
    5: "metadata table",
    6: "centre cluster table",
    7: "star cluster table",
    8: "centre/star classification table",
    9: "spiral classification table",
    10: "bar classification table",
}

IMAGE_SHAPE = (525, 525, 3)  # numpy order: rows, columns, RGB
PIXEL_SCALE = 0.099  # arcsec per pixel
CLASSES = ("center", "star", "spiral", "bar")

# HDU 5, one row; the production code wrote '#MANGA_TILEID' and renamed it.
METADATA_DTYPE = np.dtype([
    ("ra", ">f4"),
    ("dec", ">f4"),
    ("MANGAID", "S11"),
    ("IAUNAME", "S19"),
    ("IFUDESIGNSIZE", ">f8"),
    ("MANGA_TILEID", ">f8"),
    ("nsa_id", ">i8"),
    ("explorer_link", "S90"),
    ("GZ_total_classifications", ">i2"),
    ("GZ_bar_votes", ">i2"),
    ("GZ_spiral_votes", ">i2"),
    ("sample", "S70"),
])
# Columns gz3d_metadata.fits adds in front of the HDU 5 columns.
CATALOG_EXTRA = ("file_name", "zooniverse_subject_id", "number_galaxy_centers",
                 "number_foreground_stars", "observed")

# HDUs 6 and 7: one row per DBSCAN cluster of volunteer clicks.
CLUSTER_COLUMNS = ("x", "y", "var_x", "var_y", "var_x_y", "ra", "dec", "var_ra", "var_dec",
                   "var_ra_dec", "count")

# HDUs 8-10: JSON columns after classification_id and time_stamp.
CLASSIFICATION_JSON = {
    HDU_CENTER_STAR_CLASSIFICATIONS: ("center_points", "star_points"),
    HDU_SPIRAL_CLASSIFICATIONS: ("spiral_paths",),
    HDU_BAR_CLASSIFICATIONS: ("bar_paths",),
}

SPAXEL_SCALE = 0.5  # arcsec, MaNGA cube spaxels


def gz3d_wcs(ra: float, dec: float, scale: float = PIXEL_SCALE,
             shape: tuple[int, int] = IMAGE_SHAPE[:2]) -> WCS:
    """The TAN WCS the GZ3D pipeline gives every cutout: centre (ra, dec), CRPIX = size/2
    (262.5 for 525 px), CD = -scale/3600 on both axes (image row 0 is north). Written out with
    ``to_header()`` it is in PC form (PC1_1 = PC2_2 = -2.75e-5, CDELT = 1), as in the files."""
    w = WCS(naxis=2)
    w.wcs.crpix = np.array([shape[1], shape[0]], dtype=np.float64) / 2
    w.wcs.crval = [float(ra), float(dec)]
    w.wcs.cd = np.array([[-1.0, 0.0], [0.0, -1.0]]) * scale / 3600.0
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    return w
