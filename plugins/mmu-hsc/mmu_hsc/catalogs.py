"""Reading the HSC catalog as the archive's SQL returns it (FITS table or CSV).

Columns keep their native names (``object_id``, ``ra``, ``dec``, ``tract``, ``patch``,
``a_g``, ``g_cmodel_mag``, ``g_sdssshape_psf_shape11``, ...). A catalog is held as a dict
of 1-D numpy arrays in native byte order.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from mmu_core.errors import InputError
from mmu_core.fits import fits_errors
from mmu_hsc.datamodel import parse_patch

Catalog = dict[str, np.ndarray]

REQUIRED = ("object_id", "ra", "dec", "tract", "patch")
# The i-band cmodel cut of MMU v1's Deep/UltraDeep sample (pdr3_dud_22.5.sql).
MAG_CUTS = {"pdr3_dud_22.5": ("i_cmodel_mag", 22.5)}
_NULLS = {"", "nan", "null", "none", "\\n", "na"}
_TRUE = {"t", "true"}
_FALSE = {"f", "false"}


def is_catalog_candidate(path: Path) -> bool:
    """Cheap name test: could this file be a catalog (FITS or CSV, not a calexp)?"""
    name = path.name.lower()
    if name.startswith("calexp-") or name.startswith("."):
        return False
    return name.endswith((".fits", ".fit", ".fits.gz", ".csv", ".csv.gz"))


def read_catalog(path: Path) -> Catalog | None:
    """Read one catalog file.

    :returns: the columns, or ``None`` for a readable FITS file that holds no catalog table
        (e.g. an unrelated image lying in the raw folder).
    :raises InputError: unreadable file, or a table without the required columns.
    """
    path = Path(path)
    name = path.name.lower()
    # any parse failure (FITS or CSV) means a bad file
    with fits_errors(path, "HSC catalog", errors=(Exception,)):
        if name.endswith((".csv", ".csv.gz")):
            columns = _read_csv(path)
        else:
            columns = _read_fits(path)
    if columns is None:
        return None
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InputError(
            f"HSC catalog lacks required column(s) {missing}; has {sorted(columns)[:12]}...",
            file=path,
        )
    try:
        columns["object_id"] = columns["object_id"].astype(np.int64, casting="same_kind")
    except TypeError as exc:
        raise InputError("object_id is not an integer column", file=path) from exc
    for name in ("ra", "dec"):
        columns[name] = columns[name].astype(np.float64)
    return columns


def _native(array: np.ndarray) -> np.ndarray:
    """A copy in native byte order (FITS data are big-endian)."""
    array = np.asarray(array)
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    return np.array(array)


def _read_fits(path: Path) -> Catalog | None:
    with warnings.catch_warnings():
        # Archive FITS files carry non-standard units; astropy's unit warnings are noise here.
        warnings.simplefilter("ignore")
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul[1:]:
                if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
                    names = list(hdu.columns.names)
                    if "object_id" not in names:
                        continue
                    data = hdu.data
                    return {n: _native(data[n]) for n in names}
    return None


def _read_csv(path: Path) -> Catalog:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="") as handle:
        text = handle.read()
    reader = csv.reader(io.StringIO(text))
    header = None
    rows: list[list[str]] = []
    for row in reader:
        if not row or not "".join(row).strip():
            continue
        if header is None:
            # The archive prefixes the header line with '# '.
            row[0] = row[0].lstrip("#").strip()
            header = [h.strip() for h in row]
            continue
        if row[0].lstrip().startswith("#"):
            continue
        if len(row) != len(header):
            raise InputError(
                f"CSV row {len(rows) + 2} has {len(row)} fields, header has {len(header)}",
                file=path,
            )
        rows.append(row)
    if header is None:
        raise InputError("empty CSV catalog", file=path)
    values = np.array(rows, dtype=str).reshape(len(rows), len(header))
    return {name: _parse_column(values[:, i]) for i, name in enumerate(header)}


def _parse_column(raw: np.ndarray) -> np.ndarray:
    """Strings from a CSV column -> int64, float64, bool or str, the narrowest that fits."""
    stripped = np.char.strip(raw)
    lowered = np.char.lower(stripped)
    null = np.isin(lowered, list(_NULLS))
    if not null.any():
        try:
            return stripped.astype(np.int64)
        except ValueError:
            pass
    try:
        return np.where(null, "nan", stripped).astype(np.float64)
    except ValueError:
        pass
    if np.isin(lowered, list(_TRUE | _FALSE)).all():
        return np.isin(lowered, list(_TRUE))
    return stripped.astype(str)


def concatenate(catalogs: Sequence[tuple[Path, Catalog]]) -> Catalog:
    """Rows of several catalog files; they must have the same columns."""
    first_path, first = catalogs[0]
    names = list(first)
    for path, cat in catalogs[1:]:
        if set(cat) != set(names):
            diff = sorted(set(cat) ^ set(names))
            raise InputError(
                f"catalog columns differ from those of {first_path.name}: {diff}", file=path
            )
    if len(catalogs) == 1:
        return dict(first)
    return {n: np.concatenate([cat[n] for _, cat in catalogs]) for n in names}


def selection(catalog: Catalog, config: str, source: str) -> np.ndarray:
    """Rows kept by a config (boolean array); ``source`` names the file(s) for errors."""
    keep = np.ones(len(catalog["object_id"]), bool)
    cut = MAG_CUTS.get(config)
    if cut is not None:
        column, limit = cut
        if column not in catalog:
            raise InputError(f"config {config} needs catalog column {column}", file=source)
        mag = np.asarray(catalog[column], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            keep &= mag < limit
    return keep


def patch_labels(patch: np.ndarray) -> np.ndarray:
    """The catalog's ``patch`` column -> array of ``x,y`` strings."""
    patch = np.asarray(patch)
    if patch.dtype.kind in "iu":
        x, y = np.divmod(patch.astype(np.int64), 100)
        return np.char.add(np.char.add(x.astype(str), ","), y.astype(str))
    uniques, inverse = np.unique(patch, return_inverse=True)
    return np.array([parse_patch(u) for u in uniques], dtype=str)[inverse]


@dataclass(frozen=True)
class CatalogIndex:
    """The selected catalog rows of a build, grouped by (tract, patch)."""

    columns: Catalog
    groups: dict[tuple[int, str], np.ndarray]  # (tract, "x,y") -> row numbers
    n_duplicates: int

    def rows(self, tract: int, patch: str) -> Catalog:
        idx = self.groups.get((int(tract), patch), np.zeros(0, np.int64))
        return {name: col[idx] for name, col in self.columns.items()}


def build_index(paths: Sequence[Path], config: str) -> CatalogIndex:
    """Read, concatenate, cut and group the catalog files of a raw folder."""
    loaded = []
    for path in paths:
        cat = read_catalog(Path(path))
        if cat is not None:
            loaded.append((Path(path), cat))
    if not loaded:
        raise InputError("no HSC catalog table (object_id, ra, dec, tract, patch) found",
                         file=", ".join(map(str, paths)))
    columns = concatenate(loaded)
    source = ", ".join(str(p) for p, _ in loaded)
    keep = selection(columns, config, source)
    ids = columns["object_id"]
    # Keep the first row of an object_id listed twice (e.g. two overlapping query outputs).
    _, first = np.unique(ids, return_index=True)
    unique = np.zeros(len(ids), bool)
    unique[first] = True
    n_duplicates = int((keep & ~unique).sum())
    keep &= unique
    columns = {name: col[keep] for name, col in columns.items()}
    try:
        labels = patch_labels(columns["patch"])
        tracts = columns["tract"].astype(np.int64)
    except (ValueError, TypeError) as exc:
        raise InputError(f"bad tract/patch values: {exc}", file=source) from exc
    groups: dict[tuple[int, str], np.ndarray] = {}
    if len(tracts):
        keys, inverse = np.unique(np.char.add(np.char.add(tracts.astype(str), "/"), labels),
                                  return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
        for k, key in enumerate(keys):
            tract, patch = key.split("/")
            groups[(int(tract), patch)] = order[bounds[k]:bounds[k + 1]]
    return CatalogIndex(columns=columns, groups=groups, n_duplicates=n_duplicates)


@functools.lru_cache(maxsize=2)
def _cached_index(paths: tuple[str, ...], stamps: tuple, config: str) -> CatalogIndex:
    return build_index([Path(p) for p in paths], config)


def load_index(paths: Sequence[str | Path], config: str) -> CatalogIndex:
    """:func:`build_index`, cached per process: each worker reads the catalog once, not once
    per patch. The cache key includes the files' sizes and mtimes, so edits are seen."""
    paths = tuple(str(p) for p in paths)
    stamps = tuple((os.stat(p).st_mtime_ns, os.stat(p).st_size) if os.path.exists(p) else None
                   for p in paths)
    return _cached_index(paths, stamps, config)


def band_column(catalog: Catalog, name: str, n: int) -> np.ndarray:
    """A float column, or NaN when the catalog lacks it."""
    col = catalog.get(name)
    if col is None:
        return np.full(n, np.nan)
    return np.asarray(col, dtype=np.float64)

