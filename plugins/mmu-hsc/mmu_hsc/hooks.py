"""mmu hook implementations for HSC PDR3 postage stamps (the work is in sibling modules)."""

from __future__ import annotations

import mmu_hsc
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, OptionInfo, SurveyInfo
from mmu_hsc import convert, discover, samples
from mmu_hsc.datamodel import BANDS

SURVEY = "hsc"

COLUMNS = {
    "object_id": "HSC object id (int64)",
    "ra": "right ascension, deg",
    "dec": "declination, deg",
    "tract": "HSC skymap tract",
    "patch": "HSC skymap patch, 100*x + y as the archive's SQL returns it",
    **{f"a_{b}": f"{b}-band Galactic extinction, mag" for b in BANDS},
    **{f"{b}_extendedness_value": f"{b}-band extendedness (0 point source, 1 extended)"
       for b in BANDS},
    **{f"{b}_cmodel_mag": f"{b}-band cmodel magnitude (AB)" for b in BANDS},
    **{f"{b}_cmodel_magerr": f"{b}-band cmodel magnitude error" for b in BANDS},
    **{f"{b}_cmodel_flux": f"{b}-band cmodel flux" for b in BANDS},
    **{f"{b}_cmodel_fluxerr": f"{b}-band cmodel flux error" for b in BANDS},
    **{f"{b}_sdssshape_psf_shape{s}": f"{b}-band PSF second moment {s}, pixels^2"
       for b in BANDS for s in ("11", "22", "12")},
    **{f"{b}_sdssshape_shape{s}": f"{b}-band object second moment {s}, pixels^2"
       for b in BANDS for s in ("11", "22", "12")},
}


@hookimpl
def mmu_describe():
    """The HSC survey: configs, native columns and build/sample options."""
    return [
        SurveyInfo(
            name=SURVEY,
            modality="image",
            units={f"{b}_cmodel_{k}": "mag" for b in "grizy" for k in ("mag", "magerr")}
            | {f"a_{b}": "mag" for b in "grizy"},
            description=(
                "Hyper Suprime-Cam Subaru Strategic Program PDR3 coadds: 160x160 g, r, i, z, y "
                "postage stamps centred on catalog objects, with inverse variance, good-pixel "
                "mask, PSF FWHM and extinction per band."
            ),
            configs=[
                ConfigInfo(name="pdr3_dud_22.5", description="Deep/UltraDeep, i cmodel mag < 22.5"),
                ConfigInfo(name="pdr3_wide", description="Wide layer, no magnitude cut"),
            ],
            default_config="pdr3_dud_22.5",
            citation="Aihara et al. 2022, PASJ 74, 247 (HSC-SSP Third Public Data Release)",
            license="HSC-SSP data policy (https://hsc-release.mtk.nao.ac.jp/doc/index.php/data-access__pdr3/)",
            homepage="https://hsc-release.mtk.nao.ac.jp/",
            version=mmu_hsc.__version__,
            columns=COLUMNS,
            build_options=[
                OptionInfo(name="require_all_bands",
                           help="skip the objects of a patch missing a band's calexp "
                                "(default: convert them with that band fully masked)"),
                OptionInfo(name="stamp_size", kind="int", default=convert.DEFAULT_STAMP_SIZE,
                           help="stamp side in pixels"),
            ],
            sample_options=samples.SAMPLE_OPTIONS,
        )
    ]


@hookimpl
def mmu_discover(survey, config, raw_dir, options):
    """One work unit per (tract, patch) of the catalog."""
    return discover.discover(survey, config, raw_dir, options)


@hookimpl
def mmu_convert(unit, context):
    """Stamps of one patch's objects, in batches."""
    return convert.convert(unit, context)


@hookimpl
def mmu_aliases(survey, config):
    """Standard names for magnitudes, their errors, fluxes and extinction."""
    aliases = {}
    for b in BANDS:
        aliases[f"{b}_cmodel_mag"] = f"mag_{b}"
        aliases[f"{b}_cmodel_magerr"] = f"mag_err_{b}"
        aliases[f"{b}_cmodel_flux"] = f"flux_{b}"
        aliases[f"{b}_cmodel_fluxerr"] = f"flux_err_{b}"
        aliases[f"a_{b}"] = f"extinction_{b}"
    return aliases


@hookimpl
def mmu_sample(survey, request):
    """Synthetic calexps and catalog in the archive's layout."""
    return samples.write_sample(request)
