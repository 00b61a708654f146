"""One unit of gz3d galaxies -> row batches in the stored segmentation layout.

Per galaxy (one row): the colour cutout as ``image_array`` (3, 525, 525) uint8, the four
masks as ``segmentation_array`` (4, 525, 525) int32 vote counts (exact: they exceed 255),
``segmentation_class`` / ``segmentation_vote_fraction``, the HDU 5 metadata under native
names, the catalogue columns of gz3d_metadata.fits, the centre and star clusters padded to a
fixed length, the number of volunteer classifications per workflow, and the mask WCS.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from typing import Any

import numpy as np
from astropy.wcs.utils import proj_plane_pixel_scales

from mmu_core.errors import InputError
from mmu_core.models import ConvertContext, WorkUnit
from mmu_gz3d import datamodel as dm
from mmu_gz3d.reader import Gz3dGalaxy, read_galaxy

DEFAULT_MAX_CENTERS = 8
DEFAULT_MAX_STARS = 20
BATCH_GALAXIES = 8  # ~5.3 MB per galaxy -> ~42 MB batches

# The colour cutout is the SDSS gri composite shown to volunteers: i -> red, r -> green,
# g -> blue. The channels are display values (asinh-stretched, uint8), not calibrated bands,
# so they are named after the channel, not the filter.
IMAGE_BANDS = ("red", "green", "blue")
CLUSTER_FLOAT_COLUMNS = tuple(c for c in dm.CLUSTER_COLUMNS if c != "count")
METADATA_NATIVE = tuple(c for c in dm.METADATA_DTYPE.names if c not in ("ra", "dec"))
STRING_COLUMNS = {"MANGAID", "IAUNAME", "explorer_link", "sample"}


def convert_unit(unit: WorkUnit, context: ConvertContext) -> Iterator[dict[str, np.ndarray]]:
    """Batches of rows for the galaxies of ``unit`` (see the module docstring)."""
    skip_bad = bool(context.option("skip_bad", False))
    max_centers = int(context.option("max_centers", DEFAULT_MAX_CENTERS))
    max_stars = int(context.option("max_stars", DEFAULT_MAX_STARS))
    has_catalog = unit.meta.get("metadata") is not None
    if not has_catalog:
        context.warn(f"no {dm.METADATA_NAME} found: 'observed' is False for every galaxy")

    rows: list[dict[str, Any]] = []
    # discover keeps every file of one MANGAID in one unit, in order: read them together so
    # a galaxy classified under two subjects still gives one row (object_id stays unique).
    for _, entries in groupby(unit.meta["galaxies"], key=lambda e: e["mangaid"]):
        read = []
        for entry in entries:
            try:
                if entry["path"] is None:
                    raise InputError(f"listed in {dm.METADATA_NAME} but the file is absent",
                                     file=entry["name"], object=entry["mangaid"])
                read.append((entry, read_galaxy(entry["path"])))
            except InputError as exc:
                if not skip_bad:
                    raise
                context.skip(exc.message, file=exc.file, object=exc.object)
        if not read:
            continue
        entry, galaxy = _most_classified(read, context)
        if has_catalog and not entry["listed"]:
            context.warn(f"galaxy files not listed in {dm.METADATA_NAME} were converted "
                         "with observed=False")
        rows.append(galaxy_row(galaxy, entry, max_centers, max_stars, context))
        if len(rows) == BATCH_GALAXIES:
            yield stack_rows(rows)
            rows = []
    if rows:
        yield stack_rows(rows)


def _most_classified(read: list[tuple[dict[str, Any], Gz3dGalaxy]],
                     context: ConvertContext) -> tuple[dict[str, Any], Gz3dGalaxy]:
    """Of several subjects of one MANGAID keep the one with most volunteer classifications
    (then the newest subject); the others are listed as skipped."""
    best = max(read, key=lambda r: (sum(r[1].n_classifications.values()), r[0]["subject_id"]))
    for entry, galaxy in read:
        if entry is not best[0]:
            context.skip(f"another subject of this MANGAID ({best[0]['subject_id']}) has more "
                         "classifications and is kept", file=str(galaxy.path),
                         object=entry["mangaid"])
    return best


def galaxy_row(galaxy: Gz3dGalaxy, entry: dict[str, Any], max_centers: int, max_stars: int,
               context: ConvertContext) -> dict[str, Any]:
    """One galaxy's stored row (column -> scalar or per-row array)."""
    meta = galaxy.metadata
    total = int(meta["GZ_total_classifications"])
    if total > 0:
        spiral = float(meta["GZ_spiral_votes"]) / total
        bar = float(meta["GZ_bar_votes"]) / total
    else:
        spiral = bar = -1.0
        context.warn("galaxies with GZ_total_classifications = 0 have vote fraction -1")
    scale = float(np.mean(proj_plane_pixel_scales(galaxy.wcs))) * 3600.0

    row: dict[str, Any] = {
        "object_id": galaxy.mangaid,
        "ra": float(meta["ra"]) % 360.0,  # a float32 just below 360 can round up to it
        "dec": float(meta["dec"]),
        "image_array": np.transpose(galaxy.image, (2, 0, 1)),
        "image_band": np.array(IMAGE_BANDS),
        "image_scale": np.full(3, scale, dtype=np.float32),
        "segmentation_array": galaxy.masks,
        "segmentation_class": np.array(dm.CLASSES),
        "segmentation_vote_fraction": np.array([-1.0, -1.0, spiral, bar], dtype=np.float32),
    }
    for name in METADATA_NATIVE:
        dtype = dm.METADATA_DTYPE[name]
        row[name] = str(meta[name]) if name in STRING_COLUMNS else dtype.newbyteorder("=").type(
            meta[name])

    row["file_name"] = dm.parse_file_name(galaxy.path.name).metadata_file_name
    row["zooniverse_subject_id"] = np.int64(entry["subject_id"])
    row["observed"] = bool(entry["observed"])
    n_centers, n_stars = len(galaxy.centers["x"]), len(galaxy.stars["x"])
    row["number_galaxy_centers"] = np.int32(n_centers)
    row["number_foreground_stars"] = np.int32(n_stars)
    for what, listed, found in (("centre", entry.get("catalog_centers"), n_centers),
                                ("star", entry.get("catalog_stars"), n_stars)):
        if listed is not None and listed != found:
            context.warn(f"some galaxies' {what} cluster tables disagree with the number in "
                         f"{dm.METADATA_NAME}; the file's table is kept")
    row.update(padded_clusters("center", galaxy.centers, max_centers, galaxy.mangaid, context))
    row.update(padded_clusters("star", galaxy.stars, max_stars, galaxy.mangaid, context))
    for workflow, n in galaxy.n_classifications.items():
        key = "center_star" if workflow == "center" else workflow
        row[f"n_{key}_classifications"] = np.int32(n)
    row.update(wcs_columns(galaxy))
    return row


def padded_clusters(prefix: str, table: dict[str, np.ndarray], size: int, mangaid: str,
                    context: ConvertContext) -> dict[str, np.ndarray]:
    """HDU 6/7 columns as fixed-length arrays: NaN (count 0) after the real clusters.

    When a galaxy has more clusters than ``size``, the most-voted ``size`` are kept (in table
    order) and a warning is given; ``number_*`` still counts them all.
    """
    n = len(table["x"])
    keep = np.arange(n)
    if n > size:
        top = np.argsort(-np.asarray(table["count"]), kind="stable")[:size]
        keep = np.sort(top)
        context.warn(f"galaxies with more than {size} {prefix} clusters keep the {size} most "
                     f"voted (e.g. {mangaid} has {n}); raise --max-{prefix}s to keep all")
    out: dict[str, np.ndarray] = {}
    for column in CLUSTER_FLOAT_COLUMNS:
        values = np.full(size, np.nan, dtype=np.float64)
        values[: len(keep)] = np.asarray(table[column], dtype=np.float64)[keep]
        out[f"{prefix}_{column}"] = values
    counts = np.zeros(size, dtype=np.int32)
    counts[: len(keep)] = np.asarray(table["count"])[keep]
    out[f"{prefix}_count"] = counts
    return out


def wcs_columns(galaxy: Gz3dGalaxy) -> dict[str, Any]:
    """The TAN WCS of the masks: enough to rebuild it (spaxels.gz3d_wcs_from_row)."""
    w = galaxy.wcs.wcs
    return {
        "wcs_ctype1": str(w.ctype[0]),
        "wcs_ctype2": str(w.ctype[1]),
        "wcs_crval1": np.float64(w.crval[0]),
        "wcs_crval2": np.float64(w.crval[1]),
        "wcs_crpix1": np.float64(w.crpix[0]),
        "wcs_crpix2": np.float64(w.crpix[1]),
        "wcs_cd": np.asarray(galaxy.wcs.pixel_scale_matrix, dtype=np.float64),
    }


def stack_rows(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Row dicts -> one batch (column -> array with first axis = rows)."""
    batch = {}
    for name in rows[0]:
        values = [r[name] for r in rows]
        if isinstance(values[0], str):
            batch[name] = np.array(values, dtype=str)
        elif isinstance(values[0], np.ndarray):
            batch[name] = np.stack(values)
        else:
            batch[name] = np.array(values)
    return batch
