"""Which DESI survey (and program) a coadd belongs to, and how that is known.

Tried in order (docs/surveys.md, DESI section):

1. a ``SURVEY`` / ``PROGRAM`` (or ``FAPRGRM``) keyword in the primary or FIBERMAP header
   (healpix coadds carry them in the primary header);
2. a healpix coadd's file name, ``coadd-{survey}-{program}-{pixel}.fits``;
3. the release's tiles table (``tiles-{specprod}.fits``) at the coadd's TILEID;
4. the FIBERMAP targeting columns holding a nonzero bit: those of one earlier survey carry its
   prefix (``CMX_TARGET``, ``SV1_DESI_TARGET``, ``SV3_BGS_TARGET`` ...); a coadd whose bits
   sit only in the unprefixed columns (``DESI_TARGET`` ...) is main-survey. The program is not
   told by the targeting columns.

Tile coadds carry no survey keyword in any HDU, so they are told by 3 or 4. The targeting
columns cannot tell the ``special`` survey from ``main``: only the tiles table can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmu_desi import datamodel as dm
from mmu_desi.catalogs import TileInfo
from mmu_desi.reader import CoaddSummary

TILES_HINT = "give the release's tiles-SPECPROD.fits (in the raw folder or with --tiles)"


@dataclass(frozen=True)
class Told:
    """A coadd's survey and program (lower case; None: not told) and where they came from,
    or, when the survey is None, why it cannot be told."""

    survey: str | None
    program: str | None
    how: str


def tell(path: Path, summary: CoaddSummary, tiles: dict[int, TileInfo]) -> Told:
    """The survey and program of the coadd at ``path`` (see the module docstring)."""
    name = dm.parse_coadd_name(path.name)
    healpix = name if name is not None and name.kind == "healpix" else None
    tile = tiles.get(summary.tileid) if summary.tileid is not None else None
    program = next((summary.keywords[k] for k in dm.PROGRAM_KEYS if k in summary.keywords),
                   healpix.program if healpix else tile.program if tile else None)
    if "SURVEY" in summary.keywords:
        return Told(summary.keywords["SURVEY"], program, "its SURVEY header keyword")
    if healpix is not None:
        return Told(healpix.survey, program, "its healpix file name")
    if tile is not None:
        return Told(tile.survey, program, f"TILEID {summary.tileid} in {Path(tile.file).name}")
    survey, how = _from_targeting(summary.targeting)
    if survey is not None:
        return Told(survey, program, how)
    where = ("no TILEID" if summary.tileid is None else
             f"TILEID {summary.tileid} is in no tiles file" if tiles else "no tiles file")
    return Told(None, program, f"cannot tell the DESI survey: no SURVEY keyword, {where}, "
                               f"and {how}; {TILES_HINT}")


def _from_targeting(targeting: dict[str, bool]) -> tuple[str | None, str]:
    """(survey, how) from which targeting columns hold bits; (None, why not) if they do not say."""
    prefixed = [s for s, columns in dm.PREFIXED_TARGET_COLUMNS.items()
                if any(targeting.get(c) for c in columns)]
    if len(prefixed) == 1:
        columns = [c for c in dm.PREFIXED_TARGET_COLUMNS[prefixed[0]] if targeting.get(c)]
        return prefixed[0], f"its FIBERMAP targeting bits ({', '.join(columns)})"
    if prefixed:
        return None, f"its FIBERMAP holds targeting bits of several surveys ({', '.join(prefixed)})"
    if any(targeting.get(c) for c in dm.MAIN_TARGET_COLUMNS):
        return "main", "its FIBERMAP targeting bits (only unprefixed ones: main survey)"
    return None, "no FIBERMAP targeting column holds a bit"
