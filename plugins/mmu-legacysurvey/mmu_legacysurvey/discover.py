"""Find the units of a raw Legacy Surveys folder.

- ``dr10_south_21``: one unit per brick, holding its Tractor catalog and its nine coadd files
  (image and invvar of g, r, i, z, and maskbits), found anywhere below the folder by name
  (the archive's ``coadd/<AAA>/<brick>/`` and ``tractor/<AAA>/`` tree, or flat). A brick seen
  in any of them is a unit, so a brick missing its catalog or a band is reported by its
  convert, naming the file it needs.
- ``stein_et_al``: one unit per block of rows (``--rows-per-unit``) of each
  ``images_npix152_*.h5`` file of a ``south/`` or ``north/`` folder. Each region numbers its
  objects by ``inds``; a repeated ``inds`` (MMU v1 met some) keeps its first row, in file
  name then row order, and the later rows are left out and listed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import WorkUnit
from mmu_legacysurvey import datamodel as dm

DEFAULT_ROWS_PER_UNIT = 100_000  # about 28 GB of 152 x 152 x 3 float32 cutouts


def _walk(raw_dir: Path):
    for folder, dirs, files in os.walk(raw_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            yield Path(folder) / name


def scan_bricks(raw_dir: Path) -> dict[str, dict[str, Any]]:
    """Brick name -> ``{"tractor": path, "files": {(kind, band): path}}`` for every brick
    file below ``raw_dir``; coadd products other than image, invvar and maskbits, and bands
    other than g, r, i, z, are ignored.

    :raises InputError: two files for the same product of one brick.
    """
    bricks: dict[str, dict[str, Any]] = {}
    for path in _walk(raw_dir):
        m = dm.TRACTOR_RE.match(path.name)
        if m:
            entry = bricks.setdefault(m["brick"], {"tractor": None, "files": {}})
            if entry["tractor"] is not None:
                raise InputError(f"two Tractor catalogs for brick {m['brick']}: "
                                 f"{entry['tractor']} and {path}", file=str(path))
            entry["tractor"] = str(path)
            continue
        m = dm.COADD_RE.match(path.name)
        if not m:
            continue
        key = ("maskbits", None) if m["maskbits"] else (m["kind"], m["band"])
        if key[1] is not None and key[1] not in dm.BANDS:
            continue
        entry = bricks.setdefault(m["brick"], {"tractor": None, "files": {}})
        if key in entry["files"]:
            raise InputError(f"two {path.name} files for brick {m['brick']}: "
                             f"{entry['files'][key]} and {path}", file=str(path))
        entry["files"][key] = str(path)
    return bricks


def _expected(raw_dir: Path, entry: dict[str, Any], brick: str) -> dict[str, str]:
    """Where a brick's missing files would be: beside its other coadd files (or its catalog's
    ``tractor/`` tree's sibling ``coadd/``), else the archive layout below ``raw_dir``."""
    coadd_dir = None
    if entry["files"]:
        coadd_dir = Path(next(iter(entry["files"].values()))).parent
    root = raw_dir
    if entry["tractor"] is not None:
        t = Path(entry["tractor"])
        if t.parent.parent.name == "tractor":
            root = t.parent.parent.parent
    if coadd_dir is None:
        coadd_dir = (root / dm.coadd_relpath(brick, "maskbits")).parent
    out = {"tractor": str(root / dm.tractor_relpath(brick))}
    for kind in ("image", "invvar"):
        for band in dm.BANDS:
            out[f"{kind}-{band}"] = str(coadd_dir / dm.coadd_name(brick, kind, band))
    out["maskbits"] = str(coadd_dir / dm.coadd_name(brick, "maskbits"))
    return out


def discover_bricks(survey: str, config: str, raw_dir: Path) -> list[WorkUnit]:
    """One unit per brick seen below ``raw_dir`` (catalog or coadd)."""
    bricks = scan_bricks(raw_dir)
    if not bricks:
        raise InputError("no Legacy Surveys brick files (tractor-<brick>.fits, "
                         "legacysurvey-<brick>-image-<band>.fits.fz ...) in this folder or "
                         "below", file=str(raw_dir))
    units = []
    for brick, entry in sorted(bricks.items()):
        ra, dec = dm.brick_centre(brick)
        files = {f"{k}-{b}" if b else k: p for (k, b), p in entry["files"].items()}
        units.append(WorkUnit(
            survey=survey, config=config, key=brick,
            files=[p for p in [entry["tractor"], *sorted(files.values())] if p],
            ra=ra, dec=dec,
            meta={"brick": brick, "tractor": entry["tractor"], "coadd": files,
                  "expected": _expected(raw_dir, entry, brick)},
        ))
    return units


# ---- Stein et al. ----------------------------------------------------------------------------
def scan_stein(raw_dir: Path) -> list[tuple[str, Path]]:
    """(region, path) of every ``images_npix152_*.h5`` below ``raw_dir``, sorted by region
    then name.

    :raises InputError: a file outside a ``south/`` or ``north/`` folder (its region, hence
        its objects' ids, cannot be told).
    """
    found = []
    for path in _walk(raw_dir):
        if not dm.STEIN_RE.match(path.name):
            continue
        region = path.parent.name
        if region not in dm.STEIN_REGIONS:
            raise InputError(f"Stein et al. file in folder {region!r}: each region numbers "
                             "its objects from 0, so files must sit in a 'south' or 'north' "
                             "folder as the release serves them", file=str(path))
        found.append((region, path))
    return sorted(found, key=lambda rp: (dm.STEIN_REGIONS.index(rp[0]), rp[1].name, str(rp[1])))


def _read_inds(path: Path) -> np.ndarray:
    try:
        with h5py.File(path, "r") as f:
            if "inds" not in f:
                raise InputError("Stein et al. file has no 'inds' dataset", file=str(path))
            return np.asarray(f["inds"][...], np.int64)
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"cannot read Stein et al. HDF5 file: {type(exc).__name__}: {exc}",
                         file=str(path)) from exc


def _repeats(arrays: list[np.ndarray]) -> dict[int, dict[int, tuple[int, int]]]:
    """Rows whose ``inds`` occurred earlier (files in the given order, then rows):
    ``{file: {row: (file of the first, row of the first)}}``."""
    if not arrays or not sum(len(a) for a in arrays):
        return {}
    values = np.concatenate(arrays)
    file_of = np.concatenate([np.full(len(a), k) for k, a in enumerate(arrays)])
    row_of = np.concatenate([np.arange(len(a)) for a in arrays])
    order = np.argsort(values, kind="stable")  # equal values keep file, row order
    sorted_values = values[order]
    new_run = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    run_first = order[np.flatnonzero(new_run)][np.cumsum(new_run) - 1]
    out: dict[int, dict[int, tuple[int, int]]] = {}
    for pos in np.flatnonzero(~new_run):
        i, j = order[pos], run_first[pos]
        out.setdefault(int(file_of[i]), {})[int(row_of[i])] = (int(file_of[j]), int(row_of[j]))
    return out


def discover_stein(survey: str, config: str, raw_dir: Path,
                   options: dict[str, Any]) -> list[WorkUnit]:
    """Units of ``--rows-per-unit`` rows of each Stein et al. file."""
    per_unit = int(options.get("rows_per_unit") or DEFAULT_ROWS_PER_UNIT)
    if per_unit < 1:
        raise InputError(f"rows_per_unit must be positive, got {per_unit}")
    files = scan_stein(raw_dir)
    if not files:
        raise InputError("no Stein et al. images_npix152_*.h5 files (in a south/ or north/ "
                         "folder) in this folder or below", file=str(raw_dir))
    by_region: dict[str, list[tuple[Path, np.ndarray]]] = {}
    for region, path in files:
        by_region.setdefault(region, []).append((path, _read_inds(path)))
    units = []
    for region, entries in by_region.items():
        repeats = _repeats([inds for _, inds in entries])
        for k, (path, inds) in enumerate(entries):
            stem = path.name.removesuffix(".h5")
            mine = repeats.get(k, {})
            for start in range(0, len(inds), per_unit):
                stop = min(start + per_unit, len(inds))
                rows = {str(r): [int(inds[r]), str(entries[fk][0]), fr]
                        for r, (fk, fr) in sorted(mine.items()) if start <= r < stop}
                units.append(WorkUnit(
                    survey=survey, config=config, key=f"{region}-{stem}-{start:09d}",
                    files=[str(path)], ra=None, dec=None,
                    meta={"path": str(path), "region": region, "start": start, "stop": stop,
                          "repeats": rows},
                ))
    return units


def discover(survey: str, config: str, raw_dir: Path, options: dict[str, Any]) -> list[WorkUnit]:
    """The units of a config (see the module docstring)."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError("raw folder does not exist", file=str(raw_dir))
    if config == "stein_et_al":
        return discover_stein(survey, config, raw_dir, options)
    return discover_bricks(survey, config, raw_dir)
