"""HATS both ways: export a stored dataset as a HATS catalog that LSDB opens, and import a HATS
catalog into the HDF5 layout for random access.

::

    from mmu_core.hats import export_hats, import_hats
    export_hats("data/desi/dr1_main", "hats/desi_dr1_main")          # catalog columns
    export_hats("data/hsc/pdr3_dud_22.5", "hats/hsc", arrays=True)   # + the image arrays
    lsdb.open_catalog("hats/desi_dr1_main")                           # (in LSDB)
    import_hats("hats/mmu_sdss_sdss", "data", survey="sdss", config="sdss")

**Export** writes a HATS *collection* (what ``lsdb.open_catalog`` opens with its margin):

- ``OUT/collection.properties``;
- ``OUT/<name>/``: the catalog: ``hats.properties``, ``partition_info.csv``,
  ``dataset/Norder=K/Dir=D/Npix=N.parquet``, ``dataset/_metadata`` and
  ``dataset/_common_metadata``, ``point_map.fits`` and ``skymap.fits``;
- ``OUT/<name>_<margin>arcs/``: its margin catalog (the rows within the margin of each
  partition, for LSDB's cross-matches across partition borders).

Every file is written with the ``hats`` library's own functions (paths, spatial index, partition
info, properties, Parquet metadata, skymaps, HATS's Parquet write settings); the rows are read
from the dataset pixel by pixel. Our NSIDE-16 NESTED pixels are HATS order-4 partitions, so a
pixel is a partition as it is; a pixel over the budget (``max_rows`` rows or ``max_bytes`` of
exported row data) is split the HATS way, into its four children at the next order, until every
partition fits. Within a partition rows are sorted by ``_healpix_29`` (then ``object_id``);
row groups hold about ``row_group_bytes`` each. The margin follows LSDB: the margin order is
the highest whose pixels are at least ``margin_arcsec`` wide, and a partition's margin holds
every row of the margin-order pixels bordering it (``hats``' ``get_margin``); the pixels of the
empty sky around the partitions get margins too, as LSDB writes them. Everything is written in a temporary folder beside ``OUT`` and renamed into
place at the end.

Columns: the catalog columns always (``object_id``, ``ra``, ``dec``, ``healpix`` and every
column that is not a modality array), the modality arrays (``image_array``,
``spectrum_flux`` ...) with ``arrays=True`` or when named in ``columns``; a given ``columns``
list replaces the catalog columns (``object_id``, ``ra``, ``dec``, ``healpix`` stay). Arrays
are fixed-size list columns (nested for 2-D and more), text is UTF-8 strings, numbers keep
their dtype. The Parquet metadata (key ``mmu``) records each column's dtype and shape, the
survey, config, modality, aliases and the source dataset, so :func:`import_hats` and
``open_dataset`` read the export back exactly.

**Import** converts a HATS catalog (an LSDB-written one, an MMU v1.5 catalog, an export above)
through the normal sharder: one unit of work per Parquet file, staged and merged exactly as a
build stages and merges (``mmu_core.storage.writer``), then the id index and the manifest, the
manifest last. It is resumable (a rerun finishes an interrupted import without redoing the
finished units) and a no-op once finished; a rerun on a catalog whose files changed is refused
unless ``overwrite``, which imports into a temporary folder and swaps it in at the end.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import BuildError
from mmu_core.executors import run_tasks
from mmu_core.models import check_slug
from mmu_core.progress import NullProgress, ProgressSink
from mmu_core.schemas import SCHEMA_VERSION, canonical_name, get_modality, modality_prefixes
from mmu_core.storage import layout
from mmu_core.storage.columns import ColumnSpec, merge_schema
from mmu_core.storage.derived import finalize_dataset
from mmu_core.storage.hats import (
    METADATA_KEY,
    SPATIAL_INDEX_COLUMN,
    HatsDataset,
    HatsError,
    layout_order,
    require_hats,
)
from mmu_core.storage.index import load_positions
from mmu_core.storage.manifest import load_manifest
from mmu_core.storage.reader import as_dataset
from mmu_core.storage.writer import (
    DEFAULT_MAX_FILE_BYTES,
    UnitResult,
    UnitStager,
    atomic_write_text,
    first_duplicate,
    read_unit_result,
    remove_leftovers,
    swap_in,
    tmp_token,
)
from mmu_core.version import __version__

DEFAULT_MAX_ROWS = 1_000_000  # rows per partition before it is split (hats-import's default)
DEFAULT_MAX_BYTES = 1 << 30  # bytes of exported row data per partition before it is split
ROW_GROUP_BYTES = 16 * 1024 * 1024  # about this much row data per Parquet row group
MAX_ROW_GROUP_ROWS = 100_000  # at most this many rows per row group (HATS's default size)
MAX_ORDER = 19  # partitions are never split beyond this order (0.1 arcmin pixels)
SKYMAP_ORDER = 8  # order of point_map.fits / skymap.fits (LSDB's default)
EXPORT_FORMAT = 1  # version of the "mmu" Parquet metadata
READ_BYTES = 64 * 1024 * 1024  # rows read per batch while exporting or importing
PLAN_NAME = "plan.json"


@dataclass
class HatsExport:
    """What :func:`export_hats` wrote."""

    path: Path
    catalog_path: Path
    margin_path: Path | None
    rows: int
    partitions: list[tuple[int, int]]
    margin_rows: int = 0
    margin_order: int | None = None
    columns: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def orders(self) -> list[int]:
        return sorted({o for o, _ in self.partitions})


@dataclass
class HatsImport:
    """What :func:`import_hats` did."""

    path: Path
    rows: int = 0
    pixels: int = 0
    files: int = 0
    units: int = 0
    units_converted: int = 0
    noop: bool = False
    modality: str | None = None
    seconds: float = 0.0


# ---- export ------------------------------------------------------------------------------------
def is_array_column(name: str) -> bool:
    """A modality array (``image_array``, ``hsc.image_array`` ...), not a catalog column."""
    return name.rsplit(".", 1)[-1].startswith(modality_prefixes())


def export_columns(ds: Any, columns: Iterable[str] | None, arrays: bool) -> list[str]:
    """The stored columns an export writes, in order (``object_id``, ``ra``, ``dec``,
    ``healpix`` first)."""
    first = [ds.resolve(c) for c in ("object_id", "ra", "dec")]
    if "healpix" in ds.columns:
        first.append("healpix")
    if columns is None:
        chosen = [c for c in ds.columns if not is_array_column(c)]
    else:
        asked = [columns] if isinstance(columns, str) else list(columns)
        chosen = [ds.resolve(c.strip()) for a in asked for c in a.split(",") if c.strip()]
    if arrays:
        chosen += [c for c in ds.columns if is_array_column(c)]
    names = [c for c in dict.fromkeys(first + chosen) if c != SPATIAL_INDEX_COLUMN]
    specs = ds.schema
    for name in names:
        kind = specs[name].np_dtype.kind
        if kind not in "biufS":
            raise HatsError(f"{ds.path}: column {name!r} has dtype {specs[name].dtype}, which "
                            "HATS export does not write (numbers, booleans and text only)")
    return names


def arrow_type(spec: ColumnSpec) -> Any:
    """The Arrow type a stored column is exported as: its scalar type (text as UTF-8 strings),
    in fixed-size lists for each per-row axis."""
    import pyarrow as pa

    dtype = spec.np_dtype
    t = pa.string() if dtype.kind == "S" else pa.from_numpy_dtype(dtype.newbyteorder("="))
    for n in reversed(spec.shape):
        t = pa.list_(t, int(n))
    return t


def to_arrow(values: np.ndarray, spec: ColumnSpec, where: str) -> Any:
    """One column's rows as the Arrow array of :func:`arrow_type`."""
    import pyarrow as pa

    flat = np.ascontiguousarray(values).reshape(-1)
    if spec.np_dtype.kind == "S":
        try:  # tolist keeps embedded NUL bytes (numpy strips only trailing ones)
            leaf = pa.array(flat.tolist(), type=pa.binary()).cast(pa.string())
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise HatsError(f"{where}: a value is not UTF-8 text ({exc}); HATS export writes "
                            "text columns as UTF-8 strings") from None
    else:
        leaf = pa.array(flat.astype(spec.np_dtype.newbyteorder("="), copy=False))
    for n in reversed(spec.shape):
        leaf = pa.FixedSizeListArray.from_arrays(leaf, int(n))
    return leaf


def _positions(ds: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(file, row, object_id, ra, dec) of every row, in file order: from the positions sidecar
    when the dataset has one, else read from the files."""
    rows = np.asarray(ds.file_rows, dtype=np.int64)
    file_idx = np.repeat(np.arange(len(rows), dtype=np.int64), rows)
    row_idx = np.arange(int(rows.sum()), dtype=np.int64) - np.repeat(np.cumsum(rows) - rows, rows)
    side = load_positions(ds.path) if getattr(ds, "manifest", None) is not None else None
    if side is not None and len(side[3]) == len(rows) + 1 and \
            np.array_equal(np.diff(side[3]), rows):
        ids, ra, dec, _ = side
        return file_idx, row_idx, np.asarray(ids), np.asarray(ra, np.float64), \
            np.asarray(dec, np.float64)
    names = [ds.resolve(c) for c in ("object_id", "ra", "dec")]
    parts = [[ds.column(i, c).slice(0, int(n)) for c in names] for i, n in enumerate(rows)]
    if not parts:
        return file_idx, row_idx, np.empty(0, np.int64), np.empty(0), np.empty(0)
    ids, ra, dec = (np.concatenate([p[k] for p in parts]) for k in range(3))
    return file_idx, row_idx, ids, ra.astype(np.float64), dec.astype(np.float64)


def plan_partitions(hpx: np.ndarray, row_bytes: int, max_rows: int,
                    max_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, pixel) of each row's partition: its order-4 pixel, or while a pixel holds more
    than ``max_rows`` rows or ``max_bytes`` of row data, its children at the next order
    (HATS's split), up to ``MAX_ORDER``."""
    n = len(hpx)
    order = np.full(n, -1, np.int64)
    pixel = np.empty(n, np.int64)
    todo = np.arange(n)
    for k in range(layout_order(), MAX_ORDER + 1):
        keys = hpx[todo] >> (2 * (29 - k))
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        fits = ((counts <= max_rows) & (counts * max(row_bytes, 1) <= max_bytes)) | (k == MAX_ORDER)
        done = fits[inverse.reshape(-1)]
        order[todo[done]] = k
        pixel[todo[done]] = keys[done]
        todo = todo[~done]
        if not len(todo):
            break
    return order, pixel


def _write_parquet(ds: Any, path: Path, file_idx: np.ndarray, row_idx: np.ndarray,
                   hpx: np.ndarray, names: list[str], specs: dict[str, ColumnSpec], schema: Any,
                   rg_rows: int, write_kwargs: dict[str, Any]) -> int:
    """Write one partition's rows (in the order given) as a Parquet file of row groups of
    ``rg_rows`` rows, read from the dataset a row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {k: v for k, v in write_kwargs.items() if k != "row_group_size"}
    with pq.ParquetWriter(str(path), schema, **kwargs) as writer:
        for a in range(0, len(file_idx), rg_rows):
            b = min(len(file_idx), a + rg_rows)
            block = ds.read_rows(file_idx[a:b], row_idx[a:b], names)
            arrays = [to_arrow(block[c], specs[c], f"{ds.path}: column {c!r}") for c in names]
            arrays.append(pa.array(hpx[a:b].astype(np.int64)))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema),
                               row_group_size=b - a)
    return len(file_idx)


def _write_partition_task(src: str, path: str, file_idx: np.ndarray, row_idx: np.ndarray,
                          hpx: np.ndarray, names: list[str], specs_json: dict, schema: Any,
                          rg_rows: int, write_kwargs: dict[str, Any]) -> int:
    """Task (a worker process): write one partition file of the export."""
    from mmu_core.storage.reader import open_dataset

    specs = {k: ColumnSpec.from_json(v) for k, v in specs_json.items()}
    with open_dataset(src) as ds:
        return _write_parquet(ds, Path(path), file_idx, row_idx, hpx, names, specs, schema,
                              rg_rows, write_kwargs)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "catalog"


def export_hats(
    dataset: Any,
    out: Path | str,
    columns: Iterable[str] | None = None,
    margin_arcsec: float | None = 10.0,
    arrays: bool = False,
    *,
    name: str | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    row_group_bytes: int = ROW_GROUP_BYTES,
    overwrite: bool = False,
    workers: int = 1,
    write_table_kwargs: dict[str, Any] | None = None,
) -> HatsExport:
    """Export a stored dataset (a folder, a :class:`Dataset`, or a HATS catalog opened by
    ``open_dataset``) as a HATS collection in ``out`` that ``lsdb.open_catalog(out)`` opens.

    :param columns: the catalog columns to write (stored or standard names; modality arrays may
        be named too); default every catalog column. ``object_id``, ``ra``, ``dec`` and
        ``healpix`` are always written.
    :param margin_arcsec: width of the margin catalog; ``None`` or 0 writes none.
    :param arrays: also write every modality array (as fixed-size list columns).
    :param name: the catalog's name (default ``<survey>_<config>``).
    :param max_rows, max_bytes: a pixel over either is split into higher-order partitions.
    :param row_group_bytes: about this much row data per Parquet row group.
    :param overwrite: replace an existing ``out`` (swapped in when the new one is complete).
    :param workers: processes writing partition files.
    :param write_table_kwargs: overrides of HATS's Parquet write settings (``compression`` ...).

    Memory: the plan holds every row's id, position, spatial index and place (about 70 bytes a
    row: 0.7 GB for 10 million rows); the rows themselves are read a row group at a time.
    """
    started = time.perf_counter()
    hats = require_hats()
    from hats.catalog import CollectionProperties, PartitionInfo, TableProperties
    from hats.catalog.dataset.hats_properties import HatsProperties
    from hats.io import file_io, paths
    from hats.io.skymap import write_skymap
    from hats.pixel_math import HealpixPixel
    from hats.pixel_math.healpix_shim import margin2order
    from hats.pixel_math.spatial_index import compute_spatial_index

    ds = as_dataset(dataset)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise HatsError(f"{out} already exists and is not empty; pass overwrite=True "
                        "(--overwrite) or choose another output folder")
    if max_rows < 1 or max_bytes < 1 or row_group_bytes < 1:
        raise HatsError("max_rows, max_bytes and row_group_bytes must be >= 1")
    names = export_columns(ds, columns, arrays)
    all_specs = ds.schema
    specs = {c: all_specs[c] for c in names}
    name = _safe_name(name or f"{ds.survey}_{ds.config}")
    ra_col, dec_col = ds.resolve("ra"), ds.resolve("dec")

    # where every row goes
    file_idx, row_idx, ids, ra, dec = _positions(ds)
    hpx = compute_spatial_index(ra, dec).astype(np.int64) if len(ra) else np.empty(0, np.int64)
    row_bytes = sum(s.row_bytes for s in specs.values()) + 8
    p_order, p_pixel = plan_partitions(hpx, row_bytes, max_rows, max_bytes)
    sort = np.lexsort((ids, hpx))
    file_idx, row_idx, hpx = file_idx[sort], row_idx[sort], hpx[sort]
    p_order, p_pixel = p_order[sort], p_pixel[sort]
    cuts = np.flatnonzero((np.diff(p_order) != 0) | (np.diff(p_pixel) != 0)) + 1
    starts = np.r_[0, cuts] if len(hpx) else np.empty(0, np.int64)
    stops = np.r_[cuts, len(hpx)] if len(hpx) else np.empty(0, np.int64)
    partitions = [(int(p_order[a]), int(p_pixel[a])) for a in starts]
    if not partitions:
        raise HatsError(f"{ds.path}: no rows to export")
    highest = max(o for o, _ in partitions)
    margin_order = int(margin2order(float(margin_arcsec) / 60.0)) if margin_arcsec else None
    if margin_order is not None and margin_order <= highest:
        raise HatsError(
            f"a margin of {margin_arcsec} arcsec needs margin pixels of order {margin_order}, "
            f"coarser than the partitions it borders (order {highest} here): raise "
            "max_rows/max_bytes or lower margin_arcsec")

    # the Arrow schema, with what mmu reads back
    import pyarrow as pa

    recorded = {
        "format": EXPORT_FORMAT, "survey": ds.survey, "config": ds.config,
        "modality": ds.modality,
        "aliases": {k: v for k, v in ds.aliases.items() if k in specs},
        "columns": {c: s.to_json() for c, s in specs.items()},
        "core_version": __version__,
        "source": {"path": str(Path(ds.path).resolve()), "rows": len(ds),
                   "fingerprint": ds.manifest.fingerprint() if ds.manifest else None},
        "provenance": ds.manifest.provenance if ds.manifest else {},
    }
    schema = pa.schema([pa.field(c, arrow_type(specs[c])) for c in names]
                       + [pa.field(SPATIAL_INDEX_COLUMN, pa.int64())],
                       metadata={METADATA_KEY: json.dumps(recorded, default=str).encode()})
    write_kwargs = file_io.get_parquet_write_table_kwargs(schema,
                                                          write_table_kwargs=write_table_kwargs)
    rg_rows = max(1, min(MAX_ROW_GROUP_ROWS, row_group_bytes // max(row_bytes, 1)))

    tmp = layout.tmp_name(out, tmp_token())
    catalog_dir = tmp / name
    margin_name = None
    try:
        # 1. the catalog's partitions
        jobs = []
        for (order, pixel), a, b in zip(partitions, starts, stops, strict=True):
            dest = paths.new_pixel_catalog_file(str(catalog_dir), HealpixPixel(order, pixel))
            jobs.append((Path(str(dest)), slice(int(a), int(b))))
        _run_writes(ds, jobs, file_idx, row_idx, hpx, names, specs, schema, rg_rows,
                    write_kwargs, workers)
        counts = [int(b - a) for a, b in zip(starts, stops, strict=True)]
        info = PartitionInfo([HealpixPixel(o, p) for o, p in partitions])
        info.write_to_file(str(catalog_dir / "partition_info.csv"))
        hats.io.write_parquet_metadata(str(catalog_dir), create_per_partition_stats=True)
        skymap_order = min(max(SKYMAP_ORDER, highest), 10)
        histogram = np.bincount(hpx >> (2 * (29 - skymap_order)),
                                minlength=12 * 4 ** skymap_order).astype(np.int64)
        file_io.write_fits_image(histogram, paths.get_point_map_file_pointer(str(catalog_dir)))
        write_skymap(histogram, str(catalog_dir))
        default_columns = ([c for c in names if not is_array_column(c)]
                           if any(is_array_column(c) for c in names) else None)
        description = f"{ds.survey}/{ds.config} exported by mmu-core {__version__}"
        properties = TableProperties(
            catalog_name=name, catalog_type="object", total_rows=int(len(hpx)),
            ra_column=ra_col, dec_column=dec_col, healpix_column=SPATIAL_INDEX_COLUMN,
            healpix_order=29, default_columns=default_columns, hats_max_rows=max(counts),
            skymap_order=skymap_order, moc_sky_fraction=round(
                float(info.calculate_fractional_coverage()), 6),
            npix_suffix=".parquet", hats_order=highest, hats_cols_survey_id=ds.resolve("object_id"),
            obs_description=description,
            **HatsProperties.new_provenance_dict(str(catalog_dir),
                                                 builder=f"mmu-core v{__version__}"))
        properties.to_properties_file(str(catalog_dir))

        # 2. the margin catalog
        margin_rows = 0
        if margin_order is not None:
            targets = partitions + empty_sky(partitions)
            margin_name = f"{name}_{int(margin_arcsec)}arcs"
            margin_dir = tmp / margin_name
            margin_jobs, margin_counts, margin_parts, order_m = _margin_jobs(
                hpx, targets, margin_order, margin_dir)
            _run_writes(ds, margin_jobs, file_idx, row_idx, hpx, names, specs, schema, rg_rows,
                        write_kwargs, workers, order_m)
            margin_rows = int(sum(margin_counts))
            margin_dir.mkdir(parents=True, exist_ok=True)
            PartitionInfo([HealpixPixel(o, p) for o, p in margin_parts]).write_to_file(
                str(margin_dir / "partition_info.csv"))
            if margin_parts:
                hats.io.write_parquet_metadata(str(margin_dir), create_per_partition_stats=True)
            else:  # no margin rows: the metadata files hold the schema only (as LSDB writes)
                import pyarrow.parquet as pq

                (margin_dir / "dataset").mkdir(parents=True, exist_ok=True)
                for f in ("_metadata", "_common_metadata"):
                    pq.write_metadata(schema, str(margin_dir / "dataset" / f))
            margin_props = TableProperties(
                catalog_name=margin_name, catalog_type="margin", total_rows=margin_rows,
                ra_column=ra_col, dec_column=dec_col, healpix_column=SPATIAL_INDEX_COLUMN,
                healpix_order=29, primary_catalog=name,
                margin_threshold=float(margin_arcsec), npix_suffix=".parquet",
                hats_max_rows=max(margin_counts, default=0),
                hats_order=max((o for o, _ in margin_parts), default=None),
                **HatsProperties.new_provenance_dict(str(margin_dir),
                                                     builder=f"mmu-core v{__version__}"))
            margin_props.to_properties_file(str(margin_dir))

        # 3. the collection, then into place
        collection = {"name": name, "hats_primary_table_url": name}
        if margin_name:
            collection |= {"all_margins": [margin_name], "default_margin": margin_name}
        CollectionProperties(**collection, **HatsProperties.new_provenance_dict(
            str(tmp), builder=f"mmu-core v{__version__}")).to_properties_file(str(tmp))
        swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return HatsExport(path=out, catalog_path=out / name,
                      margin_path=None if margin_name is None else out / margin_name,
                      rows=int(len(hpx)), partitions=partitions, margin_rows=margin_rows,
                      margin_order=margin_order, columns=names,
                      seconds=time.perf_counter() - started)


def empty_sky(partitions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The pixels of the sky no partition covers, each at the lowest order it can have (what
    ``hats`` calls the negative tree; LSDB writes margins around them too). Computed here:
    ``hats``' own function compiles numba code on first use, several seconds a process."""
    have = set(partitions)
    split = {(k, p >> (2 * (o - k))) for o, p in partitions for k in range(o)}
    out, stack = [], [(0, p) for p in range(12)]
    while stack:
        o, p = stack.pop()
        if (o, p) in have:
            continue
        if (o, p) in split:
            stack.extend((o + 1, 4 * p + c) for c in range(4))
        else:
            out.append((o, p))
    return sorted(out)


def _margin_jobs(hpx: np.ndarray, targets: list[tuple[int, int]], margin_order: int,
                 margin_dir: Path) -> tuple[list, list[int], list[tuple[int, int]], np.ndarray]:
    """For each target pixel (the partitions and the empty sky around them, which together
    tile the sky) the rows in the margin-order pixels bordering it (``hats``' ``get_margin``:
    the cells outside it sharing an edge or a corner with it). Found from the rows' side: a
    row belongs to the margin of every other target holding one of the 8 neighbours of its
    margin-order cell (the same pairs, without listing the thousands of border cells of each
    large empty-sky pixel). Returns (jobs, row counts, margin partitions, row order), the
    jobs' slices indexing the returned row order (rows by target, then spatial index)."""
    import cdshealpix
    from hats.io import paths
    from hats.pixel_math import HealpixPixel

    shift = 2 * (29 - margin_order)
    first = np.array([p << (2 * (29 - o)) for o, p in targets], np.int64)
    by_start = np.argsort(first)
    starts = first[by_start]

    def target_of(cells: np.ndarray) -> np.ndarray:
        return by_start[np.searchsorted(starts, cells << shift, side="right") - 1]

    pair_rows, pair_targets = [], []
    step = 1 << 20
    for a in range(0, len(hpx), step):
        cell = hpx[a:a + step] >> shift
        own = target_of(cell)
        around = cdshealpix.nested.neighbours(cell.astype(np.uint64), margin_order)
        around = np.asarray(around, dtype=np.int64)
        for j in range(around.shape[1]):
            ok = np.flatnonzero(around[:, j] >= 0)
            there = target_of(around[ok, j])
            keep = there != own[ok]
            pair_rows.append(a + ok[keep])
            pair_targets.append(there[keep])
    rows = np.concatenate(pair_rows) if pair_rows else np.empty(0, np.int64)
    row_target = np.concatenate(pair_targets) if pair_targets else np.empty(0, np.int64)
    pairs = np.unique(np.stack([row_target, rows]), axis=1) if len(rows) else \
        np.empty((2, 0), np.int64)
    row_target, rows = pairs[0], pairs[1]  # by target, then row (rows are in spatial order)
    cuts = np.flatnonzero(np.diff(row_target)) + 1
    jobs, counts, parts = [], [], []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(rows)], strict=True):
        if b <= a:
            continue
        o, p = targets[int(row_target[a])]
        dest = paths.new_pixel_catalog_file(str(margin_dir), HealpixPixel(o, p))
        jobs.append((Path(str(dest)), slice(int(a), int(b))))
        counts.append(int(b - a))
        parts.append((o, p))
    return jobs, counts, parts, rows


def _run_writes(ds: Any, jobs: list[tuple[Path, slice]], file_idx: np.ndarray,
                row_idx: np.ndarray, hpx: np.ndarray, names: list[str],
                specs: dict[str, ColumnSpec], schema: Any, rg_rows: int,
                write_kwargs: dict[str, Any], workers: int,
                rows: np.ndarray | None = None) -> None:
    """Write each job's file (its slice of ``rows``, or of the rows themselves), inline or on
    ``workers`` processes."""
    def pick(sl: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r = np.arange(sl.start, sl.stop) if rows is None else rows[sl]
        return file_idx[r], row_idx[r], hpx[r]

    if workers <= 1 or len(jobs) <= 1:
        for dest, sl in jobs:
            f, r, h = pick(sl)
            _write_parquet(ds, dest, f, r, h, names, specs, schema, rg_rows, write_kwargs)
        return
    specs_json = {k: v.to_json() for k, v in specs.items()}
    args = [(str(Path(ds.path)), str(dest), *pick(sl), names, specs_json, schema, rg_rows,
             write_kwargs) for dest, sl in jobs]
    for _ in run_tasks(_write_partition_task, args, workers=workers):
        pass


# ---- import ------------------------------------------------------------------------------------
def unit_key(relpath: str) -> str:
    """A unit of work's key for one Parquet file (a file name: no slashes)."""
    stem = relpath[:-len(".parquet")] if relpath.endswith(".parquet") else relpath
    parts = [p for p in stem.split("/") if p not in ("dataset",)]
    return re.sub(r"[^A-Za-z0-9=_.-]+", "_", "_".join(parts[-3:])).strip("._") or "part"


def import_plan(src: HatsDataset, columns: Iterable[str] | None) -> dict[str, str]:
    """output column -> the catalog's column, for an import: ``object_id``, ``ra``, ``dec`` (from
    the catalog's id and position columns) and every other readable column (or those named),
    but ``healpix``, which the sharder computes."""
    if src.id_column is None:
        raise HatsError(f"{src.catalog_path}: no object_id column, and its properties name no "
                        "id column (hats_cols_survey_id); pass id_column=")
    plan = {"object_id": src.id_column, "ra": src.ra_column, "dec": src.dec_column}
    if columns is None:
        rest = [c for c in src.columns if c not in plan.values()]
    else:
        asked = [columns] if isinstance(columns, str) else list(columns)
        rest = [src.resolve(c.strip()) for a in asked for c in a.split(",") if c.strip()]
    for c in rest:
        if c in ("healpix", *plan.values()) or c in plan:
            continue
        plan[c] = c
    specs = src.schema
    kind = specs[plan["object_id"]].np_dtype.kind
    if kind not in "iuS" or specs[plan["object_id"]].shape:
        raise HatsError(f"{src.catalog_path}: id column {plan['object_id']!r} holds "
                        f"{specs[plan['object_id']].dtype} values; object ids must be integers "
                        "or text (pass id_column=)")
    return plan


def file_fingerprints(src: HatsDataset) -> dict[str, dict[str, Any]]:
    """relpath -> what identifies that data file (size, mtime and an XXH3 of its first and last
    MiB, as a build fingerprints its inputs)."""
    from mmu_core.build import input_fingerprint

    return {rel: input_fingerprint(src.path, rel) for rel in src.relpaths}


def source_fingerprint(files: dict[str, dict[str, Any]], plan: dict[str, str]) -> str:
    """What identifies an import's input: every data file's fingerprint and the columns."""
    h = hashlib.sha256()
    h.update(json.dumps([plan, files], sort_keys=True).encode())
    return h.hexdigest()[:20]


def _import_unit(src: HatsDataset, file_i: int, key: str, staging: str, plan: dict[str, str],
                 attrs: dict[str, Any], compression: str | None) -> dict:
    """Task: stage the rows of one Parquet file as one unit of work. Returns the unit's
    result (small). ``src`` travels to worker processes pickled: its schema with it, so no
    worker reads the catalog's text columns again."""
    staging_dir = Path(staging)
    done = read_unit_result(staging_dir, key)
    if done is not None:
        return done.to_json()
    specs = src.schema
    step = max(1, READ_BYTES // max(1, sum(specs[c].row_bytes for c in plan.values())))
    stager = UnitStager(staging_dir, key, attrs, compression)
    try:
        for k, batch in enumerate(src.stream_file(file_i, list(plan.values()), step)):
            stager.add({out: batch[c] for out, c in plan.items()}, k)
    except HatsError as exc:
        stager.abort()
        raise BuildError(f"unit {key}: {exc}") from None
    except BaseException:
        stager.abort()
        raise
    return stager.finish(UnitResult(key=key)).to_json()


def _check_plan(staging: Path, dataset_dir: Path, plan: dict[str, str],
                units: dict[str, dict[str, Any]]) -> None:
    """Resuming an interrupted import: staged units whose file changed (or is gone) are
    dropped and redone; a change after pixels were merged is refused, as is one of the
    columns asked for."""
    plan_file = staging / PLAN_NAME
    if plan_file.is_file():
        before = json.loads(plan_file.read_text())
        merged = bool(layout.list_shards(dataset_dir))
        stale = [k for k, f in before.get("units", {}).items() if units.get(k) != f]
        if before.get("plan") != plan or stale:
            what = ("the columns asked for changed" if before.get("plan") != plan
                    else f"{len(stale)} of its files changed ({', '.join(stale[:3])})")
            if merged:
                raise HatsError(f"{what} since the interrupted import into {dataset_dir}, and "
                                "pixels were already merged: rerun with overwrite=True "
                                "(--overwrite) to start over")
            for key in (before.get("units", {}) if before.get("plan") != plan else stale):
                shutil.rmtree(staging / key, ignore_errors=True)
    atomic_write_text(plan_file, json.dumps({"plan": plan, "units": units}))


def _check_unique_ids(staging: Path, keys: list[str], where: dict[str, str]) -> None:
    dup = first_duplicate(staging, keys)
    if dup is not None:
        value, a, b = dup
        raise HatsError(f"object {value} appears in both {where[a]} and {where[b]}: "
                        "object ids must be unique (pass id_column= for another column)")


def import_hats(
    hats_dir: Path | str | HatsDataset,
    out_root: Path | str,
    survey: str,
    config: str,
    *,
    columns: Iterable[str] | None = None,
    id_column: str | None = None,
    modality: str | None = None,
    workers: int = 1,
    overwrite: bool = False,
    max_file_bytes: int | None = None,
    compression: str | None = "auto",
    progress: ProgressSink | None = None,
    _dataset_dir: Path | None = None,
) -> HatsImport:
    """Convert a HATS catalog (or collection) into ``out_root/survey/config`` in the stored
    HDF5 layout, through the sharder a build uses (module docstring).

    :param columns: the columns to import (default every readable one); ``object_id``, ``ra``
        and ``dec`` always.
    :param id_column: the catalog's id column when it has no ``object_id`` and its properties
        name none.
    :param modality: the dataset's modality; default the one an mmu export recorded, else the
        one the columns look like, else none (a plain catalog).
    :param workers: processes staging the Parquet files and merging pixels.
    :param overwrite: replace a dataset already there (imported into a temporary folder,
        swapped in when complete).
    """
    started = time.perf_counter()
    progress = progress or NullProgress()
    try:
        check_slug(survey, "survey")
        check_slug(config, "config")
    except ValueError as exc:
        raise HatsError(str(exc)) from None
    src = hats_dir if isinstance(hats_dir, HatsDataset) else HatsDataset(hats_dir,
                                                                          id_column=id_column)
    plan = import_plan(src, columns)
    specs = src.schema
    if modality is not None:
        modality = canonical_name(modality)
        problems = _modality_problems(modality, {o: specs[c] for o, c in plan.items()})
        if problems:
            raise HatsError(f"{src.path} cannot be imported as {modality}: " + "; ".join(problems))
    else:
        modality = src.modality
    files = file_fingerprints(src)
    fingerprint = source_fingerprint(files, plan)
    dataset_dir = _dataset_dir or layout.dataset_dir(out_root, survey, config)
    summary = HatsImport(path=dataset_dir, modality=modality)
    existing = load_manifest(dataset_dir)
    if existing is not None and _dataset_dir is None:
        same = existing.provenance.get("hats", {}).get("fingerprint") == fingerprint
        if same and not overwrite:
            return _summary(summary, dataset_dir, started, noop=True)
        if not overwrite:
            raise HatsError(f"{dataset_dir} already holds a dataset made from other input; pass "
                            "overwrite=True (--overwrite) to replace it (it stays readable until "
                            "the new one is in place), or import to another --out")
        tmp = layout.tmp_name(dataset_dir, f"import-{tmp_token()}")
        try:
            done = import_hats(src, out_root, survey, config, columns=columns,
                               id_column=id_column, modality=modality, workers=workers,
                               max_file_bytes=max_file_bytes, compression=compression,
                               progress=progress, _dataset_dir=tmp)
            swap_in(tmp, dataset_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        done.path = dataset_dir
        done.seconds = time.perf_counter() - started
        return done

    relpaths = src.relpaths
    keys = [unit_key(r) for r in relpaths]
    if len(set(keys)) != len(keys):
        keys = [f"{k}_{i:05d}" for i, k in enumerate(keys)]
    staging = dataset_dir / layout.STAGING_DIR
    if dataset_dir.exists() and any(dataset_dir.iterdir()) and not (staging / PLAN_NAME).is_file():
        raise HatsError(f"{dataset_dir} is not empty and holds no interrupted import; delete it "
                        "or import to another --out")
    staging.mkdir(parents=True, exist_ok=True)
    remove_leftovers(dataset_dir)
    remove_leftovers(staging)
    _check_plan(staging, dataset_dir, plan, dict(zip(keys, files.values(), strict=True)))

    attrs = {"survey": survey, "config": config, "modality": modality or "",
             "distribution": "mmu-core", "plugin_version": __version__,
             "core_version": __version__, "schema_version": SCHEMA_VERSION,
             "nside": layout.NSIDE, "ordering": layout.ORDERING}
    # 1. stage every Parquet file not yet staged (one unit each)
    progress.start("import partitions", len(keys))
    results: dict[str, UnitResult] = {}
    todo = []
    for i, key in enumerate(keys):
        done = read_unit_result(staging, key)
        if done is not None:
            results[key] = done
            progress.advance("import partitions")
        else:
            todo.append((src, i, key, str(staging), plan, attrs, compression))
    for res in run_tasks(_import_unit, todo, workers=workers):
        r = UnitResult.from_json(res)
        results[r.key] = r
        progress.advance("import partitions")
    summary.units, summary.units_converted = len(keys), len(todo)

    # 2. one schema, ids unique across the files
    schema: dict[str, ColumnSpec] | None = None
    for key in keys:
        if results[key].rows:
            schema = merge_schema(schema, results[key].column_specs(), f"unit {key}")
    if schema is None:
        raise HatsError(f"{src.path}: no rows to import")
    _check_unique_ids(staging, [k for k in keys if results[k].rows],
                      dict(zip(keys, [str(f) for f in src.files], strict=True)))

    # 3. write each pixel's files, as a build does (resumes: finished pixels are kept)
    from mmu_core.build import write_pixels

    write_pixels(dataset_dir, staging, [k for k in keys if results[k].rows], results, schema,
                 attrs, max_file_bytes or DEFAULT_MAX_FILE_BYTES, compression, workers=workers,
                 progress=progress)

    # 4. index and manifest (last)
    recorded = src.recorded
    aliases = {k: v for k, v in (recorded.get("aliases") or {}).items()
               if k in schema and v not in schema}
    finalize_dataset(
        dataset_dir, survey=survey, config=config, modality=modality,
        columns={k: v for k, v in schema.items()}, aliases=aliases,
        provenance={"hats": {
            "path": str(Path(src.path).resolve()), "catalog": str(src.catalog_path.resolve()),
            "catalog_name": src.catalog_name, "fingerprint": fingerprint,
            "imported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "properties": {k: str(v) for k, v in src.properties.items()}},
            **({"exported_from": recorded.get("source")} if recorded.get("source") else {}),
            **(recorded.get("provenance") or {})},
        build_options={"columns": None if columns is None else list(plan),
                       "id_column": src.id_column},
        extra={"renamed_columns": {c: o for o, c in plan.items() if o != c},
               "unsupported_columns": dict(src.unsupported),
               "units": keys},
    )
    return _summary(summary, dataset_dir, started, noop=False)


def _modality_problems(modality: str, specs: dict[str, ColumnSpec]) -> list[str]:
    try:
        spec = get_modality(modality)
    except ValueError as exc:
        return [str(exc)]
    if not any(c.startswith(spec.prefix) for c in specs):
        return [f"no {spec.prefix}* column"]
    return list(spec.check_columns({k: v.shape for k, v in specs.items()})) \
        if spec.check_columns else []


def _summary(summary: HatsImport, dataset_dir: Path, started: float, noop: bool) -> HatsImport:
    m = load_manifest(dataset_dir)
    if m is not None:
        summary.rows, summary.pixels, summary.files = m.rows, len(m.pixels), len(m.files)
        summary.modality = m.modality
        summary.units = summary.units or len(m.extra.get("units", []))
    summary.noop = noop
    summary.seconds = time.perf_counter() - started
    return summary

