"""mmu hook implementations for MaNGA IFU cubes (the work is in sibling modules)."""

from __future__ import annotations

import mmu_manga
from mmu_core import hookimpl
from mmu_core.models import ConfigInfo, OptionInfo, SurveyInfo
from mmu_manga import convert, discover, samples
from mmu_manga import datamodel as dm

SURVEY = discover.SURVEY

COLUMNS = {
    "plateifu": "drpall: plate-IFU designation, e.g. 8485-1901 (the observation id)",
    "mangaid": "drpall: MaNGA target id, e.g. 1-209232 (also object_id)",
    "plate": "drpall: plate number",
    "ifudsgn": "drpall: IFU design, e.g. 12701",
    "objra": "drpall: target right ascension, degrees",
    "objdec": "drpall: target declination, degrees",
    "ifura": "drpall: IFU centre right ascension, degrees (also ra)",
    "ifudec": "drpall: IFU centre declination, degrees (also dec)",
    "nsa_z": "drpall: NSA redshift (aliased to z)",
    "drp3qual": "drpall: MANGA_DRP3QUAL quality bits",
    "exptime": "drpall: total exposure time, s",
    "ifudesignsize": "drpall: IFU size in fibres (19-127)",
    "nsa_elpetro_mass": "drpall: NSA stellar mass (elliptical Petrosian), Msun/h^2",
    "nsa_elpetro_th50_r": "drpall: NSA r-band half-light radius, arcsec",
    "DAPDONE": "dapall (the --daptype's table): the DAP finished this cube",
    "DAPQUAL": "dapall: MANGA_DAPQUAL quality bits",
}


@hookimpl
def mmu_describe():
    """The manga survey: one config, dr17."""
    drp = ", ".join(c.label for c in dm.DRP_CHANNELS)
    maps = ", ".join(dm.MAP_EXTENSIONS)
    return [
        SurveyInfo(
            name=SURVEY,
            modality="ifu",
            description=(
                "SDSS-IV MaNGA DR17 LOGCUBEs (4,563 log-spaced wavelengths) with ivar, mask and "
                f"LSF, padded to 96x96 spaxels, plus image channels: {drp}, then every channel "
                f"of the DAP maps {maps} as the MAPS headers list them (labels "
                "<extension>_<channel>, e.g. emline_gflux_ha_6564). "
                "Catalog columns: every drpall column (native lower-case names, except the "
                "targeting z) and every dapall column not already in drpall (upper-case)."
            ),
            configs=[ConfigInfo(name="dr17", description="SDSS DR17, DRP v3_1_1, DAP 3.1.0")],
            default_config="dr17",
            citation="Bundy et al. 2015, ApJ 798, 7; Abdurro'uf et al. 2022, ApJS 259, 35 (SDSS DR17)",
            license="SDSS data policy (public)",
            homepage="https://www.sdss4.org/dr17/manga/",
            version=mmu_manga.__version__,
            columns=COLUMNS,
            build_options=[
                OptionInfo(name="daptype", kind="str", default=dm.DAPTYPE,
                           help="the DAP analysis whose MAPS files (manga-*-MAPS-DAPTYPE) and "
                                "dapall table are read, e.g. HYB10-GAU-MILESHC, VOR10-..., "
                                "SPX-...; MAPS of other DAPTYPEs are listed as ignored"),
                OptionInfo(name="require_maps", default=False,
                           help="skip (and list) galaxies whose DAP MAPS file is missing instead "
                                "of converting them with masked map channels"),
            ],
            sample_options=samples.SAMPLE_OPTIONS,
        )
    ]


@hookimpl
def mmu_aliases(survey, config):
    """drpall nsa_z is the standard z; plateifu is the standard observation_id."""
    return {"nsa_z": "z", "plateifu": "observation_id"}


@hookimpl
def mmu_discover(survey, config, raw_dir, options):
    """One unit per LOGCUBE (see mmu_manga.discover)."""
    return discover.discover_units(config, raw_dir, options)


@hookimpl
def mmu_convert(unit, context):
    """One galaxy -> one row of ifu_ columns plus its drpall/dapall columns."""
    return convert.convert_unit(unit, context)


@hookimpl
def mmu_sample(survey, request):
    """Synthetic LOGCUBE, MAPS, drpall and dapall files (see mmu_manga.samples)."""
    return samples.write_sample(request)
