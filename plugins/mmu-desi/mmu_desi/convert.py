"""One coadd file -> batches of merged spectra with FIBERMAP, SCORES and redshift columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import ConvertContext, WorkUnit
from mmu_desi import catalogs, reader, select
from mmu_desi import columns as cols
from mmu_desi import datamodel as dm
from mmu_desi.merge import merge_cameras

# Rows per batch: 256 merged spectra are ~35 MB of output and ~150 MB of working memory.
BATCH_ROWS = 256
NO_CATALOG = ("no redshift catalog (zall-pix-*.fits or redrock-*.fits) in the raw folder: "
              "Z and ZERR are NaN")
MISSING_IN_CATALOG = ("some targets are missing from the redshift catalog: their Z and ZERR "
                      "are NaN and ZWARN is -1")
MISSING_COLUMNS = ("coadds without these stored columns (fuji FIBERMAPs lack the MJD ones) have "
                   "them filled: NaN (float), -1 (integer), empty (string)")


def convert(unit: WorkUnit, context: ConvertContext) -> Iterator[dict[str, np.ndarray]]:
    """Yield batches for the unit's coadd file (see the module docstring of ``hooks``)."""
    for entry in unit.meta.get("report", []):  # coadds discover did not take (one unit has them)
        context.skip(entry["message"], file=entry["file"])
    spec = cols.CONFIGS[unit.config]
    path = Path(unit.files[0])
    batch_rows = int(context.option("batch_rows", BATCH_ROWS))
    with reader.open_coadd(path) as coadd:
        file_survey, program = unit.meta.get("survey"), unit.meta.get("program")
        if not file_survey == spec.survey:  # discover could not read the file; now it opens
            raise InputError("the file could not be read when the build started, so its DESI "
                             "survey is unknown; build again", file=str(path))
        missing = coadd.missing(c for c in cols.stored_columns(unit.config)
                                if c not in cols.CATALOG_COLUMNS
                                and c not in cols.PROVENANCE_COLUMNS)
        if missing:
            context.warn(f"{MISSING_COLUMNS}: {', '.join(missing)}")
        tid = coadd.column(cols.FIBERMAP_COLUMNS[0])
        objtype = (coadd.column(cols.Column("OBJTYPE", "S3", ""))
                   if "OBJTYPE" in coadd.fibermap_columns else None)
        keep = select.real_targets(tid, reader.fiberstatus(coadd.fibermap, coadd.fibermap_columns),
                                   objtype)
        table = select.redshift_table(unit.config, unit.meta, program)
        if table is None:
            context.warn(NO_CATALOG)
        else:
            keep &= table.is_primary(tid)
        if unit.meta.get("exclude"):
            keep &= ~np.isin(tid, np.asarray(unit.meta["exclude"], dtype=np.int64))
        ra = coadd.column(cols.FIBERMAP_COLUMNS[1])
        dec = coadd.column(cols.FIBERMAP_COLUMNS[2])
        bad_pos = keep & ~(np.isfinite(ra) & np.isfinite(dec))
        for r in np.flatnonzero(bad_pos):
            context.skip("TARGET_RA/TARGET_DEC not finite", file=str(path), object=str(tid[r]))
        rows = np.flatnonzero(keep & ~bad_pos)
        for start in range(0, len(rows), batch_rows):
            yield _batch(coadd, rows[start:start + batch_rows], unit.config, table, file_survey,
                         program, context)


def _batch(coadd: reader.CoaddFile, rows: np.ndarray, config: str,
           table: catalogs.RedshiftTable | None, survey: str, program: str | None,
           context: ConvertContext) -> dict[str, np.ndarray]:
    n = len(rows)
    batch: dict[str, np.ndarray] = {}
    for col in cols.stored_columns(config):
        if col in cols.CATALOG_COLUMNS or col in cols.PROVENANCE_COLUMNS:
            continue
        batch[col.name] = coadd.column(col, rows)
    tid = batch["TARGETID"]
    if table is None:
        batch.update({c.name: c.empty(n) for c in cols.CATALOG_COLUMNS})
    else:
        values, found = table.columns(tid)
        if not found.all():
            context.warn(MISSING_IN_CATALOG)
        batch.update(values)
    batch["SURVEY"] = np.full(n, survey.encode(), dtype="S7")
    batch["PROGRAM"] = np.full(n, (program or "").encode(), dtype="S6")

    merged = merge_cameras(coadd.read_cameras(rows))
    grid = dm.merged_grid().astype(np.float32)
    batch.update({
        "object_id": tid.astype(np.int64),
        "ra": batch["TARGET_RA"].astype(np.float64),
        "dec": batch["TARGET_DEC"].astype(np.float64),
        "spectrum_lambda": np.repeat(grid[None, :], n, axis=0),
        "spectrum_flux": merged.flux,
        "spectrum_ivar": merged.ivar,
        "spectrum_lsf_sigma": merged.lsf_sigma,
        "spectrum_mask": merged.mask,
    })
    return batch
