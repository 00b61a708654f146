"""mmu hook implementations for the Legacy Surveys (the work is in sibling modules).

- discover (:mod:`mmu_legacysurvey.discover`): one unit per brick (``dr10_south_21``), or
  per block of rows of a Stein et al. file (``stein_et_al``).
- convert (:mod:`mmu_legacysurvey.convert`, :mod:`mmu_legacysurvey.stein`): 160 x 160 g, r,
  i, z stamps of the selected Tractor objects, cut from the fpack coadds; or the Stein et al.
  152 x 152 g, r, z cutouts as they are.
- sample (:mod:`mmu_legacysurvey.samples`): synthetic bricks and Stein et al. files.
"""

from __future__ import annotations

import mmu_legacysurvey
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, OptionInfo, SurveyInfo
from mmu_legacysurvey import convert, discover, samples
from mmu_legacysurvey import datamodel as dm

SURVEY = "legacysurvey"
# the Legacy Surveys' Tractor catalogs: fluxes in nanomaggies, sizes in arcsec, positions in deg
BANDS = ("g", "r", "i", "z", "w1", "w2", "w3", "w4")
UNITS = {
    "ebv": "mag", "shape_r": "arcsec",
    **{f"{kind}_{b}": "nanomaggy" for kind in ("flux", "fiberflux", "fibertotflux")
       for b in BANDS},
    **{f"flux_ivar_{b}": "nanomaggy-2" for b in BANDS},
    **{f"psfsize_{b}": "arcsec" for b in ("g", "r", "i", "z")},
    **{f"model_mag_{b}": "mag" for b in ("g", "r", "i", "z")},
}


def _columns() -> dict[str, str]:
    cols = {c.name: c.description for c in dm.TRACTOR_COLUMNS + dm.DERIVED_COLUMNS}
    cols.update(dm.STAMP_WCS_COLUMNS)
    for c in dm.STEIN_COLUMNS + dm.STEIN_DERIVED:
        cols.setdefault(c.name, f"{c.description} (stein_et_al)")
    return cols


@hookimpl
def mmu_describe():
    """The Legacy Surveys: two configs, native columns, build and sample options."""
    return [
        SurveyInfo(
            name=SURVEY,
            modality="image",
            preview_columns=["type", "model_mag_z"],
            units=UNITS,
            description=(
                "DESI Legacy Imaging Surveys. dr10_south_21: 160x160 g, r, i, z stamps cut "
                "from the DR10 south brick coadds (0.262\"/pixel, nanomaggies) around Tractor "
                "objects with z < 21 (MMU v1's selection), with inverse variance, maskbits "
                "good-pixel mask, PSF FWHM and extinction per band. stein_et_al: the 152x152 "
                "g, r, z DR9 cutouts of Stein et al. (2021)."
            ),
            configs=[
                ConfigInfo(name="dr10_south_21",
                           description="DR10 south bricks: brick_primary, z mag "
                           "(extinction-corrected) < 21, observed in g, r, i, z, not PSF, "
                           "clean maskbits"),
                ConfigInfo(name="stein_et_al",
                           description="Stein et al. (2021) self-supervised cutouts, g, r, z"),
            ],
            default_config="dr10_south_21",
            citation="Dey et al. 2019, AJ 157, 168 (DESI Legacy Imaging Surveys); Stein et al. "
            "2022, ApJ 932, 107, arXiv:2110.00023 (stein_et_al)",
            license="Legacy Surveys data are public; acknowledge them as the survey asks "
            "(https://www.legacysurvey.org/acknowledgment/)",
            homepage="https://www.legacysurvey.org/dr10/",
            version=mmu_legacysurvey.__version__,
            columns=_columns(),
            build_options=[
                OptionInfo(name="rows_per_unit", kind="int",
                           default=discover.DEFAULT_ROWS_PER_UNIT,
                           help="stein_et_al: rows of an HDF5 file per unit of work"),
            ],
            sample_options=samples.SAMPLE_OPTIONS,
        )
    ]


@hookimpl
def mmu_discover(survey, config, raw_dir, options):
    """One unit per brick, or per block of Stein et al. rows."""
    return discover.discover(survey, config, raw_dir, options)


@hookimpl
def mmu_convert(unit, context):
    """Stamps of one brick's objects, or a block of Stein et al. rows, in batches."""
    return convert.convert(unit, context)


@hookimpl
def mmu_aliases(survey, config):
    """Standard names: magnitudes, their errors and extinctions per band (and ``z`` for the
    Stein et al. spectroscopic redshifts); ``flux_<b>`` already is one."""
    if config == "stein_et_al":
        aliases = {}
        for b in dm.STEIN_BANDS:
            aliases[f"model_mag_{b}"] = f"mag_{b}"
            aliases[f"mw_extinction_{b}"] = f"extinction_{b}"
        aliases["z_spec"] = "z"
        return aliases
    aliases = {}
    for b in dm.MAG_BANDS:
        aliases[f"model_mag_{b}"] = f"mag_{b}"
        aliases[f"model_mag_err_{b}"] = f"mag_err_{b}"
        aliases[f"mw_extinction_{b}"] = f"extinction_{b}"
    return aliases


@hookimpl
def mmu_sample(survey, request):
    """Synthetic DR10 bricks (fpack coadds, Tractor catalogs) and Stein et al. files."""
    return samples.write_sample(request)
