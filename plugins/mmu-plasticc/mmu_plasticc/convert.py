"""One unit of work (a byte range of a light-curve file) -> batches of padded light curves.

Per object: observations sorted by (band, mjd) — the files interleave bands in time order —
and laid out as (6, L) per quantity, real points first, padding (zeros, masked) after. L is
the dataset-wide length chosen by discover; nothing is ever truncated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import InputError
from mmu_core.models import ConvertContext, WorkUnit
from mmu_plasticc.datamodel import (
    BANDS,
    LC_FIELDS,
    N_BANDS,
    OBJ_TYPE_WIDTH,
    UNKNOWN_TARGET,
    class_name,
)
from mmu_plasticc.reader import (
    Rows,
    iter_blocks,
    iter_metadata,
    parse_lightcurve_block,
    release_memory,
)

BATCH_BYTES = 16 * 1024 * 1024  # output bytes per batch, about


@dataclass
class Metadata:
    """Metadata rows of one unit's objects, sorted by object_id."""

    ids: np.ndarray
    columns: dict[str, np.ndarray]

    def lookup(self, object_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row index of each id and whether it was found."""
        idx = np.searchsorted(self.ids, object_ids)
        idx = np.minimum(idx, max(len(self.ids) - 1, 0))
        found = (self.ids[idx] == object_ids) if len(self.ids) else np.zeros(len(object_ids), bool)
        return idx, found


def load_metadata(
    path: Path, header: list[str], id_min: int, id_max: int, wanted: np.ndarray | None = None
) -> Metadata:
    """Stream the metadata file keeping only this unit's objects (by id range, or exactly
    ``wanted`` when the unit's ids are not in ascending order)."""
    parts: dict[str, list[np.ndarray]] = {n: [] for n in header}
    for chunk in iter_metadata(path, header):
        ids = chunk["object_id"]
        keep = (ids >= id_min) & (ids <= id_max)
        if wanted is not None:
            keep &= np.isin(ids, wanted)
        for n in header:
            parts[n].append(chunk[n][keep])
    columns = {n: np.concatenate(v) if v else np.zeros(0) for n, v in parts.items()}
    order = np.argsort(columns["object_id"], kind="stable")
    columns = {n: v[order] for n, v in columns.items()}
    return Metadata(columns["object_id"].astype(np.int64), columns)


class UnitConverter:
    """Converts one unit; keeps the state that spans blocks (bad objects, the open object)."""

    def __init__(self, unit: WorkUnit, context: ConvertContext, block_bytes: int | None = None):
        self.unit = unit
        self.context = context
        self.meta = unit.meta
        self.lc_path = Path(unit.files[0])
        self.meta_path = Path(unit.files[1])
        self.length = int(self.meta["length"])
        self.skip_bad = bool(context.options.get("skip_bad"))
        self.block_bytes = block_bytes
        self.bad_objects: dict[int, str] = {}
        self.drop_ids = np.array(sorted(self.meta.get("drop_ids", [])), np.int64)
        self.reported: set[int] = set()
        per_object = N_BANDS * self.length * (8 + 4 + 4 + 1 + 1) + 8 * len(self.meta["meta_header"])
        self.batch_objects = max(1, BATCH_BYTES // per_object)

    # ---- driving --------------------------------------------------------------------------
    def batches(self) -> Iterator[dict[str, np.ndarray]]:
        """Yield batches of complete objects, in file order."""
        self._report_orphans()
        m = self.meta
        wanted = None if m["ascending"] else self._unit_ids()
        self.metadata = load_metadata(
            self.meta_path, m["meta_header"], m["id_min"], m["id_max"], wanted
        )
        release_memory()  # parsing the whole metadata file leaves ~100 MB in pyarrow's pool
        pending: Rows | None = None
        for block in self._blocks():
            rows = parse_lightcurve_block(block, m["lc_header"], m["detected_column"])
            self._handle_bad_lines(rows)
            pending = rows if pending is None else _concat(pending, rows)
            starts = _run_starts(pending.columns["object_id"])
            # the last object may go on in the next block: only the ones before it are complete
            while len(starts) - 1 >= self.batch_objects:
                cut = int(starts[self.batch_objects])
                batch = self._make_batch(_slice(pending, 0, cut))
                if batch is not None:
                    yield batch
                pending = _slice(pending, cut, len(pending))
                starts = starts[self.batch_objects :] - cut
        if pending is not None and len(pending):
            starts = _run_starts(pending.columns["object_id"])
            for k in range(0, len(starts), self.batch_objects):
                lo = int(starts[k])
                hi = (
                    int(starts[k + self.batch_objects])
                    if k + self.batch_objects < len(starts)
                    else len(pending)
                )
                batch = self._make_batch(_slice(pending, lo, hi))
                if batch is not None:
                    yield batch
        release_memory()

    def _blocks(self):
        m = self.meta
        return iter_blocks(self.lc_path, m["start"], m["end"], m["first_line"], self.block_bytes)

    def _unit_ids(self) -> np.ndarray:
        """Ids of this unit's objects (a cheap pass reading object_id only)."""
        m = self.meta
        found = [
            np.unique(
                parse_lightcurve_block(
                    b, m["lc_header"], m["detected_column"], fields=("object_id",), check=False
                ).columns["object_id"]
            )
            for b in self._blocks()
        ]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)

    # ---- trouble --------------------------------------------------------------------------
    def _problem(self, message: str, object_id: int | None, file: Path) -> None:
        """Raise, or with --skip-bad list the object (once) and go on."""
        if not self.skip_bad:
            raise InputError(
                message, file=str(file), object=None if object_id is None else str(object_id)
            )
        if object_id is None:
            self.context.skip(message + " (line left out)", file=str(file))
            return
        self.bad_objects.setdefault(object_id, message)
        if object_id not in self.reported:
            self.reported.add(object_id)
            self.context.skip(message + " (object left out)", file=str(file), object=str(object_id))

    def _handle_bad_lines(self, rows: Rows) -> None:
        for bad in rows.bad:
            self._problem(bad.describe(), bad.object_id, self.lc_path)

    def _report_orphans(self) -> None:
        orphans = self.meta.get("orphans", [])
        for object_id in orphans:
            self.context.skip(
                "metadata row with no light curve", file=str(self.meta_path), object=str(object_id)
            )
        more = int(self.meta.get("n_orphans", 0)) - len(orphans)
        if more > 0:
            self.context.skip(
                f"{more} more metadata rows with no light curve", file=str(self.meta_path)
            )

    # ---- one batch ------------------------------------------------------------------------
    def _make_batch(self, rows: Rows) -> dict[str, np.ndarray] | None:
        c = rows.columns
        ids = c["object_id"]
        starts = _run_starts(ids)
        obj_ids = ids[starts]
        first_line = rows.line[starts]
        n_rows = np.diff(np.r_[starts, len(ids)])
        obj = np.repeat(np.arange(len(starts)), n_rows)
        keep = np.ones(len(starts), bool)

        for i in np.flatnonzero(np.isin(obj_ids, self.drop_ids)):
            keep[i] = False
            self._problem(
                f"line {first_line[i]}: rows of this object are not together in "
                "the files, or its metadata row repeats",
                int(obj_ids[i]),
                self.lc_path,
            )
        if self.bad_objects:
            keep &= ~np.isin(obj_ids, np.fromiter(self.bad_objects, np.int64))

        meta_idx, found = self.metadata.lookup(obj_ids)
        for i in np.flatnonzero(keep & ~found):
            keep[i] = False
            self._problem(
                f"line {first_line[i]}: light-curve rows for an object with no row "
                f"in {self.meta_path.name}",
                int(obj_ids[i]),
                self.lc_path,
            )

        meta_cols = self.metadata.columns
        ra, dec = meta_cols["ra"][meta_idx], meta_cols["decl"][meta_idx]
        bad_pos = ~(
            np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra < 360) & (np.abs(dec) <= 90)
        )
        for i in np.flatnonzero(keep & bad_pos):
            keep[i] = False
            self._problem(
                f"ra, decl = {ra[i]}, {dec[i]} is not a sky position",
                int(obj_ids[i]),
                self.meta_path,
            )

        band = c["passband"]
        counts = np.bincount(obj * N_BANDS + band, minlength=len(starts) * N_BANDS)
        counts = counts.reshape(len(starts), N_BANDS)
        for i in np.flatnonzero(keep & (counts.max(axis=1) > self.length)):
            keep[i] = False
            b = int(np.argmax(counts[i]))
            self._problem(
                f"line {first_line[i]}: {counts[i, b]} points in band {BANDS[b]}, more "
                f"than the dataset length L={self.length} (never truncated)",
                int(obj_ids[i]),
                self.lc_path,
            )

        if not keep.any():
            return None
        if not keep.all():
            row_keep = keep[obj]
            new_index = np.cumsum(keep) - 1
            obj, c = new_index[obj[row_keep]], {k: v[row_keep] for k, v in c.items()}
            obj_ids, meta_idx, ra, dec = obj_ids[keep], meta_idx[keep], ra[keep], dec[keep]
        return self._assemble(obj, c, obj_ids, meta_idx, ra, dec)

    def _assemble(
        self,
        obj: np.ndarray,
        c: dict[str, np.ndarray],
        obj_ids: np.ndarray,
        meta_idx: np.ndarray,
        ra: np.ndarray,
        dec: np.ndarray,
    ) -> dict[str, np.ndarray]:
        n, length = len(obj_ids), self.length
        # band-major, then time; lexsort is stable, so equal times keep file order
        order = np.lexsort((c["mjd"], c["passband"], obj))
        group = obj[order] * N_BANDS + c["passband"][order]
        new_group = np.r_[True, group[1:] != group[:-1]]
        group_start = np.flatnonzero(new_group)
        pos = np.arange(len(order)) - np.repeat(
            group_start, np.diff(np.r_[group_start, len(order)])
        )
        flat = group * length + pos

        def padded(values: np.ndarray, dtype: Any, fill: Any = 0) -> np.ndarray:
            out = np.full(n * N_BANDS * length, fill, dtype)
            out[flat] = values[order]
            return out.reshape(n, N_BANDS, length)

        mask = np.ones(n * N_BANDS * length, bool)
        mask[flat] = False
        batch: dict[str, np.ndarray] = {
            "object_id": obj_ids.astype(np.int64),
            "ra": ra.astype(np.float64),
            "dec": dec.astype(np.float64),
            "lightcurve_time": padded(c["mjd"], np.float64),
            "lightcurve_flux": padded(c["flux"], np.float32),
            "lightcurve_flux_err": padded(c["flux_err"], np.float32),
            "lightcurve_detected": padded(c["detected"].astype(bool), bool, False),
            "lightcurve_mask": mask.reshape(n, N_BANDS, length),
            "lightcurve_band": np.tile(np.array(BANDS, "S1"), (n, 1)),
        }
        meta_cols = self.metadata.columns
        for name in self.meta["meta_header"]:
            if name not in ("object_id", "ra"):
                batch[name] = meta_cols[name][meta_idx]
        if "target" not in batch:  # the Kaggle test set has no labels
            batch["target"] = np.full(n, UNKNOWN_TARGET, np.int64)
        label = batch["true_target"] if "true_target" in batch else batch["target"]
        codes, inverse = np.unique(label, return_inverse=True)
        names = np.array([class_name(t) for t in codes], f"S{OBJ_TYPE_WIDTH}")
        batch["obj_type"] = names[inverse.reshape(-1)]
        batch["redshift"] = (
            batch["true_z"].astype(np.float64) if "true_z" in batch else np.full(n, np.nan)
        )
        return batch


def convert_unit(
    unit: WorkUnit, context: ConvertContext, block_bytes: int | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of one unit of work (see :class:`UnitConverter`)."""
    return UnitConverter(unit, context, block_bytes).batches()


def _run_starts(ids: np.ndarray) -> np.ndarray:
    """Index of the first row of each object (rows of an object are contiguous)."""
    if not len(ids):
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])


def _concat(a: Rows, b: Rows) -> Rows:
    return Rows(
        {k: np.concatenate((a.columns[k], b.columns[k])) for k in LC_FIELDS},
        np.concatenate((a.line, b.line)),
    )


def _slice(rows: Rows, lo: int, hi: int) -> Rows:
    return Rows({k: v[lo:hi] for k, v in rows.columns.items()}, rows.line[lo:hi])
