"""mmu hook implementations for MaNGA IFU cubes (the work is in sibling modules)."""

from __future__ import annotations

import mmu_manga
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, OptionInfo, SurveyInfo

SURVEY = "manga"

COLUMNS = {
    "plateifu": "plate-IFU designation, e.g. 8485-1901",
    "mangaid": "MaNGA target id, e.g. 1-209232",
    "objra": "target right ascension, degrees",
    "objdec": "target declination, degrees",
    "ifura": "IFU centre right ascension, degrees",
    "ifudec": "IFU centre declination, degrees",
    "nsa_z": "NSA redshift",
}


@hookimpl
def mmu_describe():
    return [
        SurveyInfo(
            name=SURVEY,
            modality="ifu",
            description=(
                "SDSS-IV MaNGA DR17 LOGCUBEs (4,563 log-spaced wavelengths) with ivar, mask and "
                "LSF, padded to 96x96 spaxels, plus reconstructed g, r, i, z images, PSFs and "
                "DAP maps (emission lines, stellar kinematics, spectral indices)."
            ),
            configs=[ConfigInfo(name="dr17", description="SDSS DR17, DRP v3_1_1, DAP 3.1.0")],
            default_config="dr17",
            citation="Bundy et al. 2015, ApJ 798, 7; Abdurro'uf et al. 2022, ApJS 259, 35 (SDSS DR17)",
            license="SDSS data policy (public)",
            homepage="https://www.sdss4.org/dr17/manga/",
            version=mmu_manga.__version__,
            columns=COLUMNS,
            build_options=[
                OptionInfo(name="require_maps", help="skip galaxies whose MAPS file is missing"),
            ],
        )
    ]


@hookimpl
def mmu_aliases(survey, config):
    if survey != SURVEY:
        return None
    return {"nsa_z": "z"}
