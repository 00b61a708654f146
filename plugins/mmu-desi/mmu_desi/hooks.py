"""mmu hook implementations for DESI coadd spectra (kept short: the work is in sibling modules).

- discover (:mod:`mmu_desi.discover`): one unit per ``coadd-*.fits`` of the config's DESI
  survey (``dr1_main``: main, ``edr_sv3``: sv3), told by :mod:`mmu_desi.survey` (header,
  healpix name, ``tiles-*.fits`` or ``--tiles``, FIBERMAP targeting columns); the other coadds
  are listed in the build summary; redshifts from ``zall-pix-*.fits`` or the coadd's
  ``redrock-*.fits``.
- convert (:mod:`mmu_desi.convert`): real targets on good fibers, primary spectra; B, R, Z
  merged onto 7781 pixels (:mod:`mmu_desi.merge`); FIBERMAP, SCORES and redshift columns under
  their DESI names (:mod:`mmu_desi.columns`).
- sample (:mod:`mmu_desi.samples`): synthetic healpix coadds and catalogs, official layout.
"""

from __future__ import annotations

import mmu_desi
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, OptionInfo, SurveyInfo
from mmu_desi import columns, convert, discover, samples

SURVEY = "desi"
# desidatamodel: FIBERMAP photometry in nanomaggies, positions in degrees, spectra in
# 1e-17 erg/s/cm^2/Angstrom on a wavelength grid in Angstrom
UNITS = {
    "TARGET_RA": "deg", "TARGET_DEC": "deg", "EBV": "mag", "SHAPE_R": "arcsec",
    **{f"{kind}_{b}": "nanomaggy" for kind in ("FLUX", "FIBERFLUX", "FIBERTOTFLUX")
       for b in ("G", "R", "Z", "W1", "W2")},
    **{f"FLUX_IVAR_{b}": "nanomaggy-2" for b in ("G", "R", "Z", "W1", "W2")},
    "spectrum_flux": "1e-17 erg / (s cm2 Angstrom)",
    "spectrum_ivar": "1e+34 (s2 cm4 Angstrom2) / erg2",
    "spectrum_lambda": "Angstrom", "spectrum_lsf_sigma": "Angstrom",
}

ALIASES = {
    "TARGETID": "object_id",
    "TARGET_RA": "ra",
    "TARGET_DEC": "dec",
    "Z": "z",
    "ZERR": "z_err",
    "ZWARN": "zwarn",
    "SPECTYPE": "spectype",
    "EBV": "ebv",
    **{f"FLUX_{b}": f"flux_{b.lower()}" for b in ("G", "R", "Z", "W1", "W2")},
    **{f"FLUX_IVAR_{b}": f"flux_ivar_{b.lower()}" for b in ("G", "R", "Z", "W1", "W2")},
}


@hookimpl
def mmu_describe():
    """The DESI survey, its two configs and the native columns it stores."""
    return [
        SurveyInfo(
            name=SURVEY,
            preview_columns=["Z", "SPECTYPE"],
            units=UNITS,
            modality="spectrum",
            description=(
                "DESI coadded spectra: B, R and Z cameras merged onto one 7,781-pixel grid "
                "(3600-9824 Å, 0.8 Å) by inverse-variance weighting, with per-pixel LSF sigma "
                "from the resolution matrix and redshifts from the redrock catalogs."
            ),
            configs=[ConfigInfo(name=c.name, description=c.description)
                     for c in columns.CONFIGS.values()],
            default_config=columns.DEFAULT_CONFIG,
            citation="DESI Collaboration et al. 2024, 'Data Release 1 of the Dark Energy "
            "Spectroscopic Instrument', arXiv:2503.14745",
            license="CC BY 4.0",
            homepage="https://data.desi.lbl.gov/doc/releases/",
            version=mmu_desi.__version__,
            columns=columns.declared_columns(),
            build_options=[
                OptionInfo(name="tiles", kind="path", default=None,
                           help="the release's tiles-SPECPROD.fits (TILEID -> SURVEY, PROGRAM), "
                           "for tile coadds, which carry no survey keyword; tiles-*.fits files "
                           "below --raw are read too"),
            ],
            sample_options=[
                OptionInfo(name="survey", kind="str", default="main",
                           help="DESI survey of the coadds: main (config dr1_main) or sv3 "
                           "(config edr_sv3)"),
                OptionInfo(name="program", kind="str", default="dark",
                           help="DESI program: dark, bright, backup or other"),
                OptionInfo(name="catalog", kind="str", default="zall",
                           help="redshift catalog to write: zall (zall-pix), redrock "
                           "(one per coadd) or none"),
            ],
        )
    ]


@hookimpl
def mmu_aliases(survey, config):
    """DESI names -> standard names (TARGETID -> object_id, Z -> z, FLUX_G -> flux_g, ...)."""
    return dict(ALIASES)


@hookimpl
def mmu_discover(survey, config, raw_dir, options):
    """One work unit per coadd file of the config's DESI survey."""
    return discover.discover(survey, config, raw_dir, options)


@hookimpl
def mmu_convert(unit, context):
    """Batches of merged spectra with FIBERMAP, SCORES and redshift columns."""
    return convert.convert(unit, context)


@hookimpl
def mmu_sample(survey, request):
    """Synthetic healpix coadds (and a redshift catalog) in the official layout."""
    return samples.write_sample(request)
