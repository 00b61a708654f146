"""mmu hook implementations for PLAsTiCC light curves (the work is in sibling modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mmu_plasticc
from mmu_core import hookimpl
from mmu_core.models import (
    ConfigInfo,
    ConvertContext,
    OptionInfo,
    SampleRequest,
    SampleResult,
    SurveyInfo,
    WorkUnit,
)
from mmu_plasticc.datamodel import BANDS

SURVEY = "plasticc"

COLUMNS = {
    "decl": "declination, degrees (the files' name for dec)",
    "gal_l": "galactic longitude, degrees (Kaggle release only)",
    "gal_b": "galactic latitude, degrees (Kaggle release only)",
    "ddf": "1 if in a Deep Drilling Field, i.e. object_id < 1,000,000 (Kaggle release)",
    "ddf_bool": "1 if in a Deep Drilling Field (unblinded release)",
    "hostgal_specz": "host galaxy spectroscopic redshift (0 for galactic objects; NaN in Kaggle "
    "and -9 in the unblinded test set when unmeasured)",
    "hostgal_photoz": "host galaxy photometric redshift (0 for galactic objects)",
    "hostgal_photoz_err": "uncertainty of hostgal_photoz",
    "distmod": "distance modulus from hostgal_photoz (NaN for galactic objects)",
    "mwebv": "Milky Way E(B-V) extinction",
    "target": "class code (the files' `target`; -1 in the Kaggle test set, which has none; "
    "0 = blinded in the unblinded test set)",
    "true_target": "true class code (unblinded release)",
    "true_submodel": "simulation sub-model (unblinded release)",
    "true_z": "true redshift (unblinded release)",
    "true_distmod": "true distance modulus (unblinded release)",
    "true_lensdmu": "weak-lensing magnification, mag (unblinded release)",
    "true_vpec": "peculiar velocity, km/s (unblinded release)",
    "true_rv": "host R_V (unblinded release)",
    "true_av": "host A_V (unblinded release)",
    "true_peakmjd": "true time of peak, MJD (unblinded release)",
    "libid_cadence": "cadence library id (unblinded release)",
    **{f"tflux_{b}": f"true template flux in {b} (unblinded release)" for b in BANDS},
    "obj_type": "class name of true_target (else target), e.g. SNIa; '' when unknown",
    "redshift": "true redshift = true_z (NaN in the Kaggle release, which has none)",
}

# Standard names of native columns. The logical example's own keys (hostgal_specz, hostgal_photoz,
# redshift, obj_type) are stored under those names already, so they get no alias (an alias
# would rename them in the logical example). `decl` -> `dec` is stored too; declared anyway.
ALIASES = {
    "decl": "dec",
    "true_z": "z",  # unblinded release; the name DESI and MaNGA use for redshift
    "ddf_bool": "ddf",  # the unblinded spelling of the Kaggle column
}


@hookimpl
def mmu_describe() -> list[SurveyInfo]:
    """PLAsTiCC: one light-curve survey with configs train and test, either release."""
    return [
        SurveyInfo(
            name=SURVEY,
            preview_columns=["obj_type"],
            modality="lightcurve",
            description=(
                "PLAsTiCC simulated LSST light curves in u, g, r, i, z, y (passband 0-5), from "
                "the Kaggle 2018 or the unblinded (Zenodo 2539456) release: sorted by band then "
                "time, padded per band to one length L for the whole dataset (mask True = "
                "padding; lightcurve_detected is the files' detected flag), with the metadata "
                "under its native names, the class name in obj_type and redshift = true_z."
            ),
            configs=[
                ConfigInfo(
                    name="train",
                    description="training set (training_set*.csv or plasticc_train_*.csv.gz)",
                ),
                ConfigInfo(
                    name="test", description="test set (test_set*.csv or plasticc_test_*.csv.gz)"
                ),
            ],
            default_config="train",
            citation=(
                "The PLAsTiCC team et al. 2018, arXiv:1810.00001; "
                "Kessler et al. 2019, PASP 131, 094501"
            ),
            license="CC BY 4.0",
            homepage="https://zenodo.org/record/2539456",
            version=mmu_plasticc.__version__,
            columns=COLUMNS,
            build_options=[
                OptionInfo(
                    name="release",
                    kind="str",
                    default=None,
                    help="kaggle or unblinded, when the raw folder holds both",
                ),
                OptionInfo(
                    name="length",
                    kind="int",
                    default=None,
                    help="padded points per band L (default: the longest band in the "
                    "data); objects that need more are an error, or skipped with "
                    "--skip-bad",
                ),
                OptionInfo(
                    name="unit_mb",
                    kind="float",
                    default=256.0,
                    help="light-curve megabytes per unit of work (gzipped files are one unit each)",
                ),
            ],
            sample_options=[
                OptionInfo(
                    name="release",
                    kind="str",
                    default="kaggle",
                    help="kaggle or unblinded file layout",
                ),
            ],
        )
    ]


@hookimpl
def mmu_discover(
    survey: str, config: str, raw_dir: Path, options: dict[str, Any]
) -> list[WorkUnit] | None:
    """Units = byte ranges of the light-curve files, cut between objects."""
    from mmu_plasticc.discover import discover_units

    return discover_units(survey, config, raw_dir, options)


@hookimpl
def mmu_convert(unit: WorkUnit, context: ConvertContext):
    """Padded, band-sorted light curves plus metadata, in bounded batches."""
    from mmu_plasticc.convert import convert_unit

    return convert_unit(unit, context)


@hookimpl
def mmu_aliases(survey: str, config: str) -> dict[str, str] | None:
    """Native -> standard names (same for both configs and releases)."""
    return dict(ALIASES)


@hookimpl
def mmu_sample(survey: str, request: SampleRequest) -> SampleResult | None:
    """Synthetic train and test files of either release."""
    from mmu_plasticc.samples import write_sample

    return write_sample(request)
