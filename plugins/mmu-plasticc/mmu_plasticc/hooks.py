"""mmu hook implementations for PLAsTiCC light curves (the work is in sibling modules)."""

from __future__ import annotations

import mmu_plasticc
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, OptionInfo, SurveyInfo

SURVEY = "plasticc"

COLUMNS = {
    "decl": "declination, degrees",
    "hostgal_specz": "host galaxy spectroscopic redshift",
    "hostgal_photoz": "host galaxy photometric redshift",
    "target": "class code",
    "obj_type": "class name, e.g. SNIa",
}


@hookimpl
def mmu_describe():
    return [
        SurveyInfo(
            name=SURVEY,
            modality="timeseries",
            description=(
                "PLAsTiCC simulated LSST light curves in u, g, r, i, z, y, sorted by band then "
                "time and padded per band, with metadata and class labels."
            ),
            configs=[
                ConfigInfo(name="train", description="training set"),
                ConfigInfo(name="test", description="test set"),
            ],
            default_config="train",
            citation="The PLAsTiCC team et al. 2018, arXiv:1810.00001; Kessler et al. 2019, PASP 131, 094501",
            license="CC BY 4.0",
            homepage="https://zenodo.org/record/2539456",
            version=mmu_plasticc.__version__,
            columns=COLUMNS,
            sample_options=[
                OptionInfo(name="release", kind="str", default="kaggle",
                           help="kaggle or unblinded file layout"),
            ],
        )
    ]


@hookimpl
def mmu_aliases(survey, config):
    if survey != SURVEY:
        return None
    return {"hostgal_specz": "specz", "hostgal_photoz": "photoz"}
