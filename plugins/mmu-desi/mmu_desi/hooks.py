"""mmu hook implementations for DESI coadd spectra (kept short: the work is in sibling modules)."""

from __future__ import annotations

import mmu_desi
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, SurveyInfo

SURVEY = "desi"

COLUMNS = {
    "TARGETID": "DESI target id (int64)",
    "TARGET_RA": "target right ascension, degrees",
    "TARGET_DEC": "target declination, degrees",
    "Z": "redrock redshift",
    "ZERR": "redshift uncertainty",
    "ZWARN": "redshift warning bits (0 = good)",
    "SPECTYPE": "redrock spectral type",
    "EBV": "Galactic E(B-V)",
}


@hookimpl
def mmu_describe():
    return [
        SurveyInfo(
            name=SURVEY,
            modality="spectrum",
            description=(
                "DESI coadded spectra: B, R and Z cameras merged onto one 7,781-pixel grid "
                "(3600-9824 Å, 0.8 Å) by inverse-variance weighting, with per-pixel LSF sigma "
                "from the resolution matrix and redshifts from the redrock catalogs."
            ),
            configs=[
                ConfigInfo(name="dr1_main", description="DR1 (iron) main survey, primary spectra"),
                ConfigInfo(name="edr_sv3", description="EDR (fuji) SV3, the one-percent survey"),
            ],
            default_config="dr1_main",
            citation="DESI Collaboration et al. 2024, 'Data Release 1 of the Dark Energy "
            "Spectroscopic Instrument', arXiv:2503.14745",
            license="CC BY 4.0",
            homepage="https://data.desi.lbl.gov/doc/releases/",
            version=mmu_desi.__version__,
            columns=COLUMNS,
        )
    ]


@hookimpl
def mmu_aliases(survey, config):
    if survey != SURVEY:
        return None
    return {"Z": "z", "ZERR": "z_err", "ZWARN": "zwarn"}
