"""Step 4, the outputs: ``OUT/catalog.parquet`` and the matched dataset.

The catalog is written block by block in healpix order (for ``how="all"`` as soon as the
blocks before it are done, while later blocks are matched). The matched dataset's rows are
gathered from the two inputs by random access -- the (file, row) of every matched object is
known from the match, kept in the temporary part files -- one task per block again, each
writing whole pixels (no two tasks write the same one), in the stored layout
(``docs/format.md``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.crossmatch.errors import CrossMatchError
from mmu_core.crossmatch.parts import read_part
from mmu_core.executors import run_tasks
from mmu_core.schemas import SCHEMA_VERSION
from mmu_core.storage import layout
from mmu_core.storage.columns import ColumnSpec
from mmu_core.storage.derived import finalize_dataset, prepare_output
from mmu_core.storage.examples import side_namespaces
from mmu_core.storage.reader import Dataset, open_dataset
from mmu_core.version import __version__

CATALOG_NAME = "catalog.parquet"
MATCHED_CONFIG = "matched"
POSITION_COLUMNS = ("object_id", "ra", "dec")
GATHER_BATCH_BYTES = 128 * 1024 * 1024  # matched rows gathered and written per batch
# The catalog: uncompressed (every Parquet reader reads that), dictionaries only where values
# repeat: ids, coordinates and separations hardly compress, and snappy plus dictionary
# attempts on every column cost 2-3x the write.
CATALOG_PARQUET = {"compression": "none", "use_dictionary": ["healpix"]}
CATALOG_FIELDS = ("match_id", "left_object_id", "right_object_id", "separation_arcsec", "ra",
                  "dec", "healpix", "right_ra", "right_dec")


def check_out(out: Path, matched: Path, overwrite: bool) -> None:
    """Refuse to mix a new result with an old one; with ``overwrite`` remove the old one."""
    if out.exists() and not out.is_dir():
        raise CrossMatchError(f"{out} exists and is not a folder")
    old = [p for p in (out / CATALOG_NAME, matched) if p.exists()]
    if old and not overwrite:
        raise CrossMatchError(f"{old[0]} already exists; pass overwrite=True (--overwrite) or "
                              "choose another --out")
    for p in old:
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def keep_mask(rows: int, drop: np.ndarray) -> np.ndarray:
    """True for the rows not in ``drop``."""
    mask = np.ones(rows, bool)
    mask[drop] = False
    return mask


def _id_type(ds: Dataset) -> Any:
    import pyarrow as pa

    return pa.string() if ds.schema["object_id"].np_dtype.kind == "S" else pa.int64()


# ---- the catalog ------------------------------------------------------------------------
class CatalogWriter:
    """The catalog, block by block in healpix order, to the Parquet file ``path`` or (None)
    an in-memory table (``table``, after :meth:`close`); ``first[block]`` is each block's
    first match_id, ``n`` the pairs written so far."""

    def __init__(self, how: str, radius_arcsec: float, lds: Dataset, rds: Dataset,
                 path: Path | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        meta = {"how": how, "radius_arcsec": radius_arcsec,
                "core_version": __version__,
                "left": f"{lds.survey}/{lds.config}", "right": f"{rds.survey}/{rds.config}",
                "left_path": str(lds.path.resolve()), "right_path": str(rds.path.resolve())}
        self.schema = pa.schema([
            ("match_id", pa.int64()), ("left_object_id", _id_type(lds)),
            ("right_object_id", _id_type(rds)), ("separation_arcsec", pa.float64()),
            ("ra", pa.float64()), ("dec", pa.float64()), ("healpix", pa.int64()),
            ("right_ra", pa.float64()), ("right_dec", pa.float64()),
        ], metadata={"mmu": json.dumps(meta)})
        self.path = path
        self.writer = None if path is None else pq.ParquetWriter(path, self.schema,
                                                                 **CATALOG_PARQUET)
        self.tables: list[Any] = []
        self.table: Any = None
        self.first: dict[int, int] = {}
        self.n = 0

    def add(self, block: int, table: Any, drop: np.ndarray | None = None) -> None:
        """Block ``block``'s pairs (an Arrow table, or None for none), without the rows
        ``drop``."""
        import pyarrow as pa

        self.first[block] = self.n
        if table is None or not table.num_rows:
            return
        if drop is not None:
            table = table.filter(pa.array(keep_mask(table.num_rows, drop)))
        table = table.append_column("match_id", pa.array(np.arange(self.n,
                                                                   self.n + table.num_rows)))
        self.n += table.num_rows
        table = table.select(list(CATALOG_FIELDS)).cast(self.schema)
        if self.writer is not None:
            self.writer.write_table(table)
        else:
            self.tables.append(table)

    def close(self) -> None:
        import pyarrow as pa

        if self.writer is not None:
            self.writer.close()
        if self.path is None:
            self.table = (pa.concat_tables(self.tables) if self.tables
                          else self.schema.empty_table())


# ---- the matched dataset ----------------------------------------------------------------
def namespaces(lds: Dataset, rds: Dataset) -> tuple[str, str]:
    """Column prefixes of the two sides: the survey names, made distinct if need be."""
    return side_namespaces(lds, rds)


def matched_dirname(lds: Dataset, rds: Dataset) -> str:
    """The matched dataset's folder under OUT: ``<left>_x_<right>/matched``."""
    lns, rns = namespaces(lds, rds)
    return f"{lns}_x_{rns}/{MATCHED_CONFIG}"


def _side_columns(ds: Dataset, columns: Iterable[str] | None) -> list[str]:
    if columns is None:
        return list(ds.columns)
    chosen = [ds.resolve(c) for c in ([columns] if isinstance(columns, str) else columns)]
    return list(dict.fromkeys([*POSITION_COLUMNS, *chosen]))


def write_matched_dataset(
    lds: Dataset, rds: Dataset, out: Path, parts: list[tuple[str, np.ndarray | None, int]],
    *, how: str, radius_arcsec: float, left_columns: Iterable[str] | None = None,
    right_columns: Iterable[str] | None = None, workers: int = 1, scheduler: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``OUT/<left>_x_<right>/matched``: one row per pair, in the stored HEALPix layout.

    Top-level columns: ``object_id`` (= the catalog's ``match_id``, int64), ``ra``, ``dec`` and
    ``healpix`` of the left object, ``separation_arcsec``; then every selected column of each
    side under ``<namespace>.<column>`` (``hsc.image_array``, ``desi.spectrum_flux``,
    ``desi.object_id`` ...). Namespaces are the survey names. The HDF5 attribute
    ``namespaces`` maps each side with a modality to it (what the validator reads); the
    manifest has modality ``"matched"``, the sides' aliases under their namespaces and both
    sides' provenance (``provenance.left``/``right``, ``extra.sides``).

    ``parts`` are the match tasks' Arrow parts: (path, rows of the pairs dropped or None, first
    match_id). A part holds the pairs of one block of pixels, so each task writes whole pixels
    and no two tasks write the same one.
    """
    lns, rns = namespaces(lds, rds)
    dataset_dir = out / matched_dirname(lds, rds)
    prepare_output(dataset_dir, overwrite)
    lcols, rcols = _side_columns(lds, left_columns), _side_columns(rds, right_columns)
    schema = {"object_id": ColumnSpec("<i8", ()), "ra": ColumnSpec("<f8", ()),
              "dec": ColumnSpec("<f8", ()), "separation_arcsec": ColumnSpec("<f8", ())}
    schema.update({f"{lns}.{c}": lds.schema[c] for c in lcols})
    schema.update({f"{rns}.{c}": rds.schema[c] for c in rcols})
    sides = {lns: {"role": "left", **lds.side_info()}, rns: {"role": "right", **rds.side_info()}}
    ns_modalities = {ns: s["modality"] for ns, s in sides.items() if s["modality"]}
    survey = f"{lns}_x_{rns}"
    attrs = {"survey": survey, "config": MATCHED_CONFIG, "modality": "matched",
             "namespaces": ns_modalities, "core_version": __version__,
             "schema_version": SCHEMA_VERSION, "nside": layout.NSIDE, "ordering": layout.ORDERING}
    row_bytes = sum(s.row_bytes for s in schema.values())
    batch_rows = max(1, GATHER_BATCH_BYTES // max(row_bytes, 1))

    args = [(str(lds.path), str(rds.path), str(dataset_dir), f"part-{i:05d}", path, drop, first,
             lcols, rcols, lns, rns, attrs, batch_rows)
            for i, (path, drop, first) in enumerate(parts)]
    for _ in run_tasks(write_task, args, workers=workers, scheduler=scheduler):
        pass

    aliases = {}
    for ns, ds, cols in ((lns, lds, lcols), (rns, rds, rcols)):
        aliases.update({f"{ns}.{native}": f"{ns}.{standard}"
                        for native, standard in ds.aliases.items() if native in cols})
    finalize_dataset(
        dataset_dir, survey=survey, config=MATCHED_CONFIG, modality="matched", columns=schema,
        aliases=aliases,
        provenance={"left": sides[lns], "right": sides[rns], "namespaces": ns_modalities,
                    "how": how, "radius_arcsec": radius_arcsec,
                    "catalog": str((out / CATALOG_NAME).resolve())},
        build_options={"how": how, "radius_arcsec": radius_arcsec, "left_columns": lcols,
                       "right_columns": rcols},
        extra={"sides": sides},
    )
    return dataset_dir


def write_task(
    left_path: str, right_path: str, dataset_dir: str, key: str, part_path: str,
    drop: np.ndarray | None, first_match_id: int, lcols: list[str], rcols: list[str], lns: str,
    rns: str, attrs: dict, batch_rows: int,
) -> int:
    """Task: gather one block's matched rows from both inputs (random access) and write them."""
    from mmu_core.storage.writer import write_rows

    table = read_part(part_path, ["ra", "dec", "separation_arcsec", "left_file", "left_row",
                                  "right_file", "right_row"])
    pairs = {name: table.column(name).to_numpy() for name in table.column_names}
    if drop is not None:
        keep = keep_mask(len(pairs["ra"]), drop)
        pairs = {k: v[keep] for k, v in pairs.items()}
    n = len(pairs["ra"])
    pairs["match_id"] = np.arange(first_match_id, first_match_id + n, dtype=np.int64)
    lds, rds = open_dataset(left_path), open_dataset(right_path)

    def batches() -> Iterator[dict[str, np.ndarray]]:
        for a in range(0, n, batch_rows):
            s = slice(a, a + batch_rows)
            lrows = lds.read_rows(pairs["left_file"][s], pairs["left_row"][s], lcols)
            rrows = rds.read_rows(pairs["right_file"][s], pairs["right_row"][s], rcols)
            batch = {"object_id": pairs["match_id"][s], "ra": pairs["ra"][s],
                     "dec": pairs["dec"][s], "separation_arcsec": pairs["separation_arcsec"][s]}
            batch.update({f"{lns}.{c}": v for c, v in lrows.items()})
            batch.update({f"{rns}.{c}": v for c, v in rrows.items()})
            yield batch

    try:
        write_rows(Path(dataset_dir), batches(), attrs, key=key)
    finally:
        lds.close()
        rds.close()
    return n
