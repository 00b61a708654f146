"""mmu hook implementations for HSC PDR3 postage stamps (the work is in sibling modules)."""

from __future__ import annotations

import mmu_hsc
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, OptionInfo, SurveyInfo

SURVEY = "hsc"
BANDS = ("g", "r", "i", "z", "y")

COLUMNS = {
    "tract": "HSC tract",
    "patch": "HSC patch, 'x,y'",
    **{f"{b}_cmodel_mag": f"{b}-band cmodel magnitude (AB)" for b in BANDS},
    **{f"{b}_cmodel_magerr": f"{b}-band cmodel magnitude error" for b in BANDS},
    **{f"a_{b}": f"{b}-band Galactic extinction, mag" for b in BANDS},
}


@hookimpl
def mmu_describe():
    return [
        SurveyInfo(
            name=SURVEY,
            modality="image",
            description=(
                "Hyper Suprime-Cam Subaru Strategic Program PDR3 coadds: 160x160 g, r, i, z, y "
                "postage stamps centred on catalog objects, with inverse variance, good-pixel "
                "mask, PSF FWHM and extinction per band."
            ),
            configs=[
                ConfigInfo(name="pdr3_dud_22.5", description="Deep/UltraDeep, i cmodel mag < 22.5"),
                ConfigInfo(name="pdr3_wide", description="Wide layer"),
            ],
            default_config="pdr3_dud_22.5",
            citation="Aihara et al. 2022, PASJ 74, 247 (HSC-SSP Third Public Data Release)",
            license="HSC-SSP data policy (https://hsc-release.mtk.nao.ac.jp/doc/index.php/data-access__pdr3/)",
            homepage="https://hsc-release.mtk.nao.ac.jp/",
            version=mmu_hsc.__version__,
            columns=COLUMNS,
            build_options=[
                OptionInfo(name="require_all_bands", help="skip objects of a patch missing a band"),
            ],
        )
    ]


@hookimpl
def mmu_aliases(survey, config):
    if survey != SURVEY:
        return None
    aliases = {}
    for b in BANDS:
        aliases[f"{b}_cmodel_mag"] = f"mag_{b}"
        aliases[f"{b}_cmodel_magerr"] = f"mag_err_{b}"
        aliases[f"a_{b}"] = f"extinction_{b}"
    return aliases
