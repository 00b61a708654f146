"""The release's tables: redshift catalogs (``zall-pix-*.fits``, HDU ZCATALOG, and per-coadd
``redrock-*.fits``, HDU REDSHIFTS), reduced to the stored redrock columns and looked up by
TARGETID, and the tiles table (``tiles-*.fits``, HDU TILE_COMPLETENESS: a tile's survey and
program)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from mmu_core.errors import InputError
from mmu_core.fits import fits_errors, get_hdu, open_fits
from mmu_desi import columns as cols
from mmu_desi import datamodel as dm
from mmu_desi.reader import check_complete, table_columns

REDROCK = "redrock file"
ZALL = "zall-pix catalog"
TILES = "tiles file"


@dataclass
class RedshiftTable:
    """Redshift rows of one (survey, program), sorted by TARGETID for lookups."""

    targetid: np.ndarray  # sorted, unique
    values: dict[str, np.ndarray]  # CATALOG_COLUMNS present in the file, stored dtypes
    primary: np.ndarray | None  # bool, or None when the catalog has no primary flag

    @classmethod
    def build(cls, targetid: np.ndarray, values: dict[str, np.ndarray],
              primary: np.ndarray | None) -> RedshiftTable:
        # stable: the first row of a repeated TARGETID wins
        ids, first = np.unique(targetid, return_index=True)
        return cls(ids, {k: v[first] for k, v in values.items()},
                   None if primary is None else primary[first])

    def match(self, targetid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, index into this table) for each id."""
        if len(self.targetid) == 0:
            return np.zeros(len(targetid), bool), np.zeros(len(targetid), np.intp)
        pos = np.clip(np.searchsorted(self.targetid, targetid), 0, len(self.targetid) - 1)
        return self.targetid[pos] == targetid, pos

    def is_primary(self, targetid: np.ndarray) -> np.ndarray:
        """False only where the catalog has the target and says it is not primary."""
        if self.primary is None:
            return np.ones(len(targetid), bool)
        found, pos = self.match(targetid)
        return ~found | self.primary[pos]

    def columns(self, targetid: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The CATALOG_COLUMNS for these ids (fills where missing) and the found mask."""
        found, pos = self.match(targetid)
        out = {}
        for col in cols.CATALOG_COLUMNS:
            values = col.empty(len(targetid))
            if col.name in self.values:
                values[found] = self.values[col.name][pos[found]]
            out[col.name] = values
        return out, found


def _catalog_values(data: fits.FITS_rec, names: list[str]) -> dict[str, np.ndarray]:
    return {c.name: cols.coerce(data[c.name], c) for c in cols.CATALOG_COLUMNS if c.name in names}


def read_redrock(path: str | Path) -> RedshiftTable:
    """A per-coadd ``redrock-*.fits`` file (HDU REDSHIFTS); no primary flags."""
    path = Path(path)
    with open_fits(path, REDROCK, lazy=True) as hdul:
        hdu = get_hdu(hdul, "REDSHIFTS", path, REDROCK)
        check_complete(path, hdul, ["REDSHIFTS"])
        names = table_columns(hdu)
        for required in ("TARGETID", "Z"):
            if required not in names:
                raise InputError(f"REDSHIFTS has no {required} column", file=str(path))
        with fits_errors(path, REDROCK, hdu="REDSHIFTS"):
            data = hdu.data
            n = 0 if data is None else len(data)
            if n == 0:
                return RedshiftTable.build(np.zeros(0, "i8"), {}, None)
            return RedshiftTable.build(data["TARGETID"].astype("i8"), _catalog_values(data, names),
                                       None)


@dataclass
class ZallCatalog:
    """The rows of one DESI survey from ``zall-pix-*.fits``, split by program."""

    files: tuple[str, ...]
    survey: str
    primary_flag: str | None
    programs: dict[str, RedshiftTable]

    def table(self, program: str | None) -> RedshiftTable:
        empty = RedshiftTable.build(np.zeros(0, "i8"), {}, None)
        return self.programs.get((program or "").lower(), empty)


_ZALL_CACHE: dict[tuple, ZallCatalog] = {}
ZALL_CHUNK_ROWS = 200_000  # rows read at once: every page of the table is read once


def load_zall(paths: Iterable[str | Path], survey: str, primary_flags: Iterable[str]) -> ZallCatalog:
    """Read (once per process; cached) the ``survey`` rows of the zall-pix catalogs.

    Only the columns stored or needed for the selection are kept (about 90 bytes per row of
    the survey). The primary flag is the first of ``primary_flags`` the files carry.
    """
    paths = tuple(sorted(str(Path(p)) for p in paths))
    stamp = tuple((p, os.path.getmtime(p), os.path.getsize(p)) for p in paths if os.path.exists(p))
    key = (stamp, survey, tuple(primary_flags))
    if key not in _ZALL_CACHE:
        _ZALL_CACHE.clear()  # one catalog per process is plenty; they can be large
        _ZALL_CACHE[key] = _read_zall(paths, survey, tuple(primary_flags))
    return _ZALL_CACHE[key]


def _read_zall(paths: tuple[str, ...], survey: str, primary_flags: tuple[str, ...]) -> ZallCatalog:
    parts: dict[str, list[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None]]] = {}
    flag_used: str | None = None
    for p in paths:
        path = Path(p)
        with open_fits(path, ZALL, lazy=True) as hdul:
            hdu = get_hdu(hdul, "ZCATALOG", path, ZALL)
            check_complete(path, hdul, ["ZCATALOG"])
            names = table_columns(hdu)
            for required in ("TARGETID", "SURVEY", "PROGRAM", "Z"):
                if required not in names:
                    raise InputError(f"ZCATALOG has no {required} column", file=str(path))
            flag = next((f for f in primary_flags if f in names), None)
            flag_used = flag_used or flag
            with fits_errors(path, ZALL, hdu="ZCATALOG"):
                data = hdu.data
                n = 0 if data is None else len(data)
                for start in range(0, n, ZALL_CHUNK_ROWS):
                    rec = data[start:start + ZALL_CHUNK_ROWS]
                    surveys = cols.coerce(rec["SURVEY"], cols.Column("SURVEY", "S7", ""))
                    keep = np.char.lower(surveys) == survey.encode()
                    if not keep.any():
                        continue
                    rec = rec[keep]
                    programs = np.char.lower(cols.coerce(rec["PROGRAM"],
                                                         cols.Column("PROGRAM", "S6", "")))
                    tid = rec["TARGETID"].astype("i8")
                    values = _catalog_values(rec, names)
                    primary = rec[flag].astype(bool) if flag else None
                    for prog in np.unique(programs):
                        sel = programs == prog
                        parts.setdefault(prog.decode(), []).append(
                            (tid[sel], {k: v[sel] for k, v in values.items()},
                             None if primary is None else primary[sel]))
    programs_out = {}
    for prog, chunks in parts.items():
        tid = np.concatenate([c[0] for c in chunks])
        keys = set.intersection(*(set(c[1]) for c in chunks))
        values = {k: np.concatenate([c[1][k] for c in chunks]) for k in keys}
        prim = None if any(c[2] is None for c in chunks) else np.concatenate([c[2] for c in chunks])
        programs_out[prog] = RedshiftTable.build(tid, values, prim)
    return ZallCatalog(paths, survey, flag_used, programs_out)


# ---- tiles-{specprod}.fits -----------------------------------------------------------------
@dataclass(frozen=True)
class TileInfo:
    """A tile's survey and program (lower case; program None when the table leaves it blank)."""

    survey: str
    program: str | None
    file: str  # the tiles file that says so


def read_tiles(paths: Iterable[str | Path]) -> dict[int, TileInfo]:
    """TILEID -> survey and program from ``tiles-*.fits`` files (HDU TILE_COMPLETENESS).

    Rows with an empty SURVEY are left out. Two files giving one tile different surveys are an
    error naming both; otherwise the first file wins (paths in the order given).
    """
    out: dict[int, TileInfo] = {}
    for p in paths:
        path = Path(p)
        with open_fits(path, TILES, lazy=True) as hdul:
            hdu = get_hdu(hdul, dm.TILES_HDU, path, TILES)
            check_complete(path, hdul, [dm.TILES_HDU])
            names = table_columns(hdu)
            for required in ("TILEID", "SURVEY"):
                if required not in names:
                    raise InputError(f"{dm.TILES_HDU} has no {required} column", file=str(path))
            with fits_errors(path, TILES, hdu=dm.TILES_HDU):
                data = hdu.data
                if data is None or len(data) == 0:
                    continue
                tileid = data["TILEID"].astype("i8")
                survey = _lower_strings(data["SURVEY"])
                program = (_lower_strings(data["PROGRAM"]) if "PROGRAM" in names
                           else np.full(len(tileid), b""))
        for t, s, prog in zip(tileid.tolist(), survey.tolist(), program.tolist(), strict=True):
            if not s:
                continue
            info = TileInfo(s.decode(), prog.decode() or None, str(path))
            known = out.setdefault(t, info)
            if info.survey not in (known.survey,):
                raise InputError(f"tile {t} is of survey {known.survey!r} in {known.file} but "
                                 f"{info.survey!r} here; keep one tiles file", file=str(path))
    return out


def _lower_strings(values: np.ndarray) -> np.ndarray:
    """A FITS string column as trimmed, lower-case bytes."""
    return np.char.lower(cols.coerce(values, cols.Column("S", "S20", "")))
