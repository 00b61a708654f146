"""mmu hook implementations for Galaxy Zoo 3D segmentation maps (work in sibling modules)."""

from __future__ import annotations

import mmu_gz3d
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, OptionInfo, SurveyInfo

SURVEY = "gz3d"

COLUMNS = {
    "MANGAID": "MaNGA target id",
    "IAUNAME": "IAU name",
    "GZ_total_classifications": "number of volunteer classifications",
    "GZ_spiral_votes": "volunteers who drew spiral arms",
    "GZ_bar_votes": "volunteers who drew a bar",
}


@hookimpl
def mmu_describe():
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
            sample_options=[OptionInfo(name="drpall", kind="path",
                                       help="take galaxies from this MaNGA drpall catalogue")],
        )
    ]


@hookimpl
def mmu_aliases(survey, config):
    if survey != SURVEY:
        return None
    return {"GZ_total_classifications": "total_classifications"}
