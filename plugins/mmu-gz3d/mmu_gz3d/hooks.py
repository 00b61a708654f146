"""mmu hook implementations for Galaxy Zoo 3D segmentation maps (work in sibling modules)."""

from __future__ import annotations

import mmu_gz3d
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, OptionInfo, SurveyInfo
from mmu_gz3d import convert, discover, samples

SURVEY = "gz3d"

_CLUSTER_DOC = {
    "x": "cutout x (column) of the cluster mean",
    "y": "cutout y (row) of the cluster mean",
    "var_x": "variance of x", "var_y": "variance of y", "var_x_y": "covariance of x and y",
    "ra": "RA of the cluster mean, deg", "dec": "Dec of the cluster mean, deg",
    "var_ra": "variance of RA", "var_dec": "variance of Dec", "var_ra_dec": "RA-Dec covariance",
    "count": "volunteer clicks in the cluster (0 = padding)",
}

COLUMNS = {
    "MANGAID": "MaNGA target id (also object_id)",
    "IAUNAME": "IAU name",
    "IFUDESIGNSIZE": "IFU size in fibres (19-127)",
    "MANGA_TILEID": "MaNGA tile id",
    "nsa_id": "NASA-Sloan Atlas id",
    "explorer_link": "SkyServer explore link",
    "GZ_total_classifications": "Galaxy Zoo classifications of the galaxy (denominator of the "
                                "vote fractions)",
    "GZ_spiral_votes": "Galaxy Zoo volunteers who saw spiral arms",
    "GZ_bar_votes": "Galaxy Zoo volunteers who saw a bar",
    "sample": "MaNGA targeting sample",
    "file_name": "gz3d_metadata.fits file name",
    "zooniverse_subject_id": "Zooniverse subject id",
    "observed": "observed by MaNGA (gz3d_metadata.fits; False if not listed there)",
    "number_galaxy_centers": "centre clusters (rows of HDU 6)",
    "number_foreground_stars": "foreground-star clusters (rows of HDU 7)",
    "n_center_star_classifications": "volunteer classifications of centres/stars (HDU 8 rows)",
    "n_spiral_classifications": "volunteer classifications of spiral arms (HDU 9 rows)",
    "n_bar_classifications": "volunteer classifications of bars (HDU 10 rows)",
    **{f"center_{k}": f"centre clusters, padded with NaN: {v}" for k, v in _CLUSTER_DOC.items()},
    **{f"star_{k}": f"star clusters, padded with NaN: {v}" for k, v in _CLUSTER_DOC.items()},
    "wcs_ctype1": "mask WCS CTYPE1", "wcs_ctype2": "mask WCS CTYPE2",
    "wcs_crval1": "mask WCS CRVAL1, deg", "wcs_crval2": "mask WCS CRVAL2, deg",
    "wcs_crpix1": "mask WCS CRPIX1 (1-based)", "wcs_crpix2": "mask WCS CRPIX2 (1-based)",
    "wcs_cd": "mask WCS pixel-scale matrix (2x2, deg/pixel): CD, or PC times CDELT",
}


@hookimpl
def mmu_describe():
    """The gz3d survey: one config, dr17."""
    return [
        SurveyInfo(
            name=SURVEY,
            modality="segmentation",
            description=(
                "Galaxy Zoo 3D volunteer segmentation maps (galaxy centres, foreground stars, "
                "spiral arms, bars) of MaNGA galaxies on the 525x525 colour cutout they were "
                "drawn on."
            ),
            configs=[ConfigInfo(name="dr17", description="SDSS DR17 value-added catalog v4_0_0")],
            default_config="dr17",
            citation="Masters et al. 2021, MNRAS 507, 3923 (Galaxy Zoo: 3D)",
            license="SDSS data policy (public)",
            homepage="https://www.sdss4.org/dr17/data_access/value-added-catalogs/?vac_id=galaxy-zoo-3d",
            version=mmu_gz3d.__version__,
            columns=COLUMNS,
            build_options=[
                OptionInfo(name="max_centers", kind="int", default=convert.DEFAULT_MAX_CENTERS,
                           help="centre clusters kept per galaxy (columns center_*)"),
                OptionInfo(name="max_stars", kind="int", default=convert.DEFAULT_MAX_STARS,
                           help="foreground-star clusters kept per galaxy (columns star_*)"),
                OptionInfo(name="galaxies_per_unit", kind="int",
                           default=discover.DEFAULT_GALAXIES_PER_UNIT,
                           help="galaxies per unit of work"),
            ],
            sample_options=[OptionInfo(name="drpall", kind="path",
                                       help="take galaxies from this MaNGA drpall catalogue")],
        )
    ]


@hookimpl
def mmu_discover(survey, config, raw_dir, options):
    """Galaxy files (flat or SAS tree) and gz3d_metadata.fits -> units of a few galaxies."""
    return discover.discover_units(config, raw_dir, options)


@hookimpl
def mmu_convert(unit, context):
    """One unit's galaxies -> row batches (segmentation + source image + metadata)."""
    return convert.convert_unit(unit, context)


@hookimpl
def mmu_aliases(survey, config):
    """Standard names of native columns."""
    return {"GZ_total_classifications": "total_classifications"}


@hookimpl
def mmu_sample(survey, request):
    """Synthetic gz3d files in the DR17 layout (optionally for the galaxies of a drpall)."""
    return samples.write_sample(request)
