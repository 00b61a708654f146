"""Reading HATS catalogs: HEALPix-partitioned Parquet, the layout LSDB reads and writes and the
one the Multimodal Universe v1.5 is published in.

:func:`~mmu_core.storage.reader.open_dataset` returns a :class:`HatsDataset` for a folder that
holds ``hats.properties`` (one catalog) or ``collection.properties`` (a collection: its main
catalog is read; margin and index catalogs are not needed to read rows). Its public methods are
those of :class:`~mmu_core.storage.reader.Dataset` that make sense for Parquet: ``len``,
``columns``, ``schema``, ``get``, ``cone``, ``iter_batches``, ``read_rows``, ``read_pixel``,
``relpaths``, ``files``, ``file_rows``, ``example`` ... The catalog's structure (properties,
partition list, schema) is read with the ``hats`` package, the rows with pyarrow.

How Parquet columns become columns here:

- a top-level column keeps its name; ``_healpix_29`` (HATS's spatial index) and the
  ``Norder``/``Dir``/``Npix`` partition columns are structure, not columns;
- the fields of a struct column become ``<struct>_<field>``: the MMU v1.5 layout nests a
  modality's arrays in one struct (``spectrum.flux`` -> ``spectrum_flux``, our stored
  convention), and names an image band's pixels ``flux`` where we say ``image_array``
  (``image.flux`` -> ``image_array``); when that name is taken, ``<struct>.<field>``;
- ``healpix`` (NSIDE 16, NESTED, as in our stored layout) is computed from ra/dec when the
  catalog has no such column;
- the catalog's ra/dec columns (``hats_col_ra``/``hats_col_dec``) and its id column
  (``object_id``, else ``hats_cols_survey_id``, else the ``id_column`` given) are reachable
  as ``ra``, ``dec`` and ``object_id`` (aliases) when stored under other names.

Values: numbers and booleans as numpy arrays of their type; text as fixed-width UTF-8 bytes
(``|S<n>``, n the longest value: finding it reads the text columns of a catalog mmu did not
write once); fixed-size lists, and lists whose rows all have the same length (what the MMU
v1.5 layout and HuggingFace's ``Array2D`` store), as arrays with that per-row shape. Nulls in
float columns read as NaN; anywhere else they are an error naming the file, the column and
the row, as is a list row of another length. Columns of other types (timestamps, maps,
structs inside lists ...) are left out and listed in ``unsupported``. An export by mmu
(:func:`mmu_core.hats.export_hats`) records each column's dtype and shape and the dataset's
survey, config, modality and aliases in the Parquet metadata (key ``mmu``), so it reads back
exactly.

What reads cost (Parquet has no row-level random access: the smallest unit read is one
column of one row group, decompressed whole):

- ``get(ids)``: the first call reads the id column of every file, once, and keeps a sorted
  index in memory; then each call reads, for every column asked, every row group holding one
  of the ids. A row costs about its row group, not its own bytes (HDF5 datasets read a row's
  own bytes), so ``import_hats`` the catalog when you need random access at scale.
- ``cone``: the partitions whose pixels overlap the cone (``hats``' own cone filter), their
  ra/dec columns whole, then the rows inside, as ``get`` reads them.
- ``iter_batches``: every row group once, in file order (pyarrow streams each file).
- ``column(i, name).slice``/``take`` (what ``hf.load`` and the loaders use): the row groups
  holding the rows; the last ones decoded (up to 64 MiB) are kept, so a row group read a
  block at a time is decoded once.

Nothing outside the catalog folder is read: a collection whose main catalog, or a catalog
whose data files, resolve outside the folder opened (absolute paths, ``..``, symlinks) is
refused.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core.errors import MMUError
from mmu_core.schemas import canonical_name, get_modality, guess_modality
from mmu_core.storage import layout
from mmu_core.storage.columns import ColumnSpec, NamedColumns
from mmu_core.storage.examples import row_example
from mmu_core.storage.index import IdIndex, by_file

CATALOG_PROPERTIES = ("hats.properties", "properties")
COLLECTION_PROPERTIES = "collection.properties"
SPATIAL_INDEX_COLUMN = "_healpix_29"  # the HATS spatial index (HEALPix order 29, NESTED)
STRUCTURE_COLUMNS = (SPATIAL_INDEX_COLUMN, "Norder", "Dir", "Npix")
METADATA_KEY = b"mmu"  # Parquet schema metadata written by mmu's export (JSON)
STRUCT_RENAMES = {("image", "flux"): "image_array"}  # MMU v1.5 layout name -> ours
DEFAULT_CONFIG = "hats"  # the config name of a catalog that records none
MAX_OPEN_FILES = 64
CACHED_BYTES = 64 * 1024 * 1024  # decoded row groups kept per column of a file (the last read)


class HatsError(MMUError):
    """A HATS catalog cannot be read (or written): names the folder or file and what is
    wrong."""


def is_hats_catalog(path: Path | str) -> bool:
    """Whether ``path`` is a HATS catalog or collection folder (it holds ``hats.properties``,
    ``properties`` or ``collection.properties``). Reads no file and imports nothing."""
    p = Path(path)
    return p.is_dir() and any((p / n).is_file()
                              for n in (*CATALOG_PROPERTIES, COLLECTION_PROPERTIES))


def require_hats() -> Any:
    """The ``hats`` package, or a clear error saying how to install it."""
    try:
        import hats
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise HatsError(f"reading and writing HATS catalogs needs the 'hats' package ({exc}); "
                        "install it with: pip install 'mmu-core[hats]'") from None
    return hats


# ---- Arrow types -> our columns ------------------------------------------------------------
def _unwrap(t: Any) -> Any:
    import pyarrow as pa

    while isinstance(t, pa.BaseExtensionType):
        t = t.storage_type
    return t


def describe_type(t: Any) -> tuple[str, Any, list[int | None]] | None:
    """``(kind, numpy dtype or None, per-row shape)`` of an Arrow type, ``kind`` ``"number"``
    or ``"text"``; a ``None`` dimension is a variable-length list. ``None`` if unsupported."""
    import pyarrow as pa

    shape: list[int | None] = []
    t = _unwrap(t)
    while True:
        if pa.types.is_fixed_size_list(t):
            shape.append(int(t.list_size))
        elif pa.types.is_list(t) or pa.types.is_large_list(t) or (
                hasattr(pa.types, "is_list_view") and pa.types.is_list_view(t)):
            shape.append(None)
        else:
            break
        t = _unwrap(t.value_type)
    if pa.types.is_dictionary(t):
        t = _unwrap(t.value_type)
    if (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
            or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))):
        return "text", None, shape
    if pa.types.is_boolean(t):
        return "number", np.dtype(bool), shape
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number", np.dtype(t.to_pandas_dtype()), shape
    return None


def _leaf(arr: Any, dims: int, shape: Sequence[int] | None, where: str, row0: int) -> Any:
    """The flattened leaf values of ``dims`` list levels, every row of each level checked to
    have the length ``shape`` gives (when given)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    per_row = 1
    for level in range(dims):
        if isinstance(arr.type, pa.BaseExtensionType):
            arr = arr.storage
        want = None if shape is None else int(shape[level])
        if pa.types.is_fixed_size_list(arr.type):
            if want is not None and arr.type.list_size != want:
                raise HatsError(f"{where}: lists of {arr.type.list_size} values, expected {want}")
            if arr.null_count:
                bad = int(np.flatnonzero(~np.asarray(arr.is_valid()))[0]) // per_row
                raise HatsError(f"{where}: row {row0 + bad} is null")
        else:
            lengths = pc.list_value_length(arr)
            if lengths.null_count:
                bad = int(np.flatnonzero(~np.asarray(lengths.is_valid()))[0]) // per_row
                raise HatsError(f"{where}: row {row0 + bad} is null")
            if want is not None:
                got = np.asarray(lengths)
                wrong = np.flatnonzero(got != want)
                if len(wrong):
                    k = int(wrong[0])
                    raise HatsError(f"{where}: row {row0 + k // per_row} holds a list of "
                                    f"{int(got[k])} values where the column's rows hold {want}: "
                                    "lists of varying length are not supported")
        per_row *= want if want is not None else 1
        arr = arr.flatten()
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def arrow_to_numpy(arr: Any, spec: ColumnSpec, where: str, row0: int = 0) -> np.ndarray:
    """One column's Arrow values (an Array or ChunkedArray, one entry per row) as a numpy array
    of ``spec``'s dtype and per-row shape; ``where`` names the file and column in errors,
    ``row0`` is the first row's number in the file."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    values = _leaf(arr, len(spec.shape), spec.shape, where, row0)
    dtype = spec.np_dtype
    per_row = int(np.prod(spec.shape, dtype=np.int64))
    if values.null_count:
        if dtype.kind == "f":
            values = pc.fill_null(values.cast(pa.from_numpy_dtype(dtype)), np.nan)
        else:
            bad = int(np.flatnonzero(~np.asarray(values.is_valid()))[0])
            raise HatsError(f"{where}: row {row0 + bad // max(per_row, 1)} holds a null, which "
                            f"a {dtype} column cannot hold")
    if dtype.kind == "S":
        t = values.type
        if not (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
            values = values.cast(pa.large_binary())
        width = pc.max(pc.binary_length(values)).as_py() if len(values) else 0
        if width and width > dtype.itemsize:
            raise HatsError(f"{where}: a value of {width} bytes does not fit the column's "
                            f"{dtype.itemsize}")
        out = np.asarray(values.to_numpy(zero_copy_only=False), dtype=object).astype(dtype)
    elif pa.types.is_string(values.type) or pa.types.is_binary(values.type) or \
            pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type):
        raise HatsError(f"{where}: holds text where {dtype} numbers were expected")
    else:
        out = np.asarray(values.to_numpy(zero_copy_only=False)).astype(dtype, copy=False)
    if out.size != n * per_row:
        raise HatsError(f"{where}: {out.size} values for {n} rows of shape {spec.shape}")
    return out.reshape((n, *spec.shape))


# ---- one column of one file ------------------------------------------------------------------
class ParquetColumn:
    """One column of one Parquet file, read by row groups (the smallest unit Parquet reads).

    :meth:`take` (rows sorted ascending) and :meth:`slice` read only the row groups that hold
    the rows asked for."""

    def __init__(self, owner: HatsDataset, file_i: int, name: str):
        self.owner, self.file_i, self.name = owner, file_i, name
        self.offsets = owner.row_group_offsets(file_i)
        self.n = int(self.offsets[-1])
        self.spec = owner.schema[name]
        self._last: tuple[int, int, np.ndarray] | None = None  # the last row groups decoded

    def _read(self, g0: int, g1: int) -> np.ndarray:
        """Row groups g0 .. g1 - 1, as numpy. The last ones decoded are kept (up to
        ``CACHED_BYTES``), so reading a row group's rows a block at a time decodes it once."""
        last = self._last
        if last is not None and last[0] <= g0 and g1 <= last[1]:
            a = int(self.offsets[g0] - self.offsets[last[0]])
            return last[2][a:a + int(self.offsets[g1] - self.offsets[g0])]
        groups = list(range(g0, g1))
        arr = self.owner.read_arrow(self.file_i, self.name, groups)
        data = arrow_to_numpy(arr, self.spec, self.owner.where(self.file_i, self.name),
                              int(self.offsets[g0]))
        self._last = (g0, g1, data) if data.nbytes <= CACHED_BYTES else None
        return data

    def slice(self, a: int, b: int) -> np.ndarray:
        """Rows ``a:b``."""
        a, b = max(0, int(a)), min(self.n, int(b))
        if b <= a:
            return np.empty((0, *self.spec.shape), self.spec.np_dtype)
        g0 = int(np.searchsorted(self.offsets, a, side="right")) - 1
        g1 = int(np.searchsorted(self.offsets, b - 1, side="right"))
        data = self._read(g0, g1)
        base = int(self.offsets[g0])
        return data[a - base:b - base]

    def take(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``rows`` (ascending), into ``out`` when given."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.empty((0, *self.spec.shape), self.spec.np_dtype) if out is None else out
        if rows[0] < 0 or rows[-1] >= self.n:
            raise IndexError(f"{self.owner.where(self.file_i, self.name)}: rows out of range "
                             f"0..{self.n - 1}")
        groups = np.searchsorted(self.offsets, rows, side="right") - 1
        wanted = np.unique(groups)
        parts, base = [], {}
        start = 0
        # consecutive row groups are read in one call, so runs of groups cost one read
        runs = np.split(wanted, np.flatnonzero(np.diff(wanted) != 1) + 1)
        for run in runs:
            g0, g1 = int(run[0]), int(run[-1]) + 1
            parts.append(self._read(g0, g1))
            for g in range(g0, g1):
                base[g] = start + int(self.offsets[g] - self.offsets[g0])
            start += int(self.offsets[g1] - self.offsets[g0])
        data = parts[0] if len(parts) == 1 else np.concatenate(parts)
        pos = np.array([base[int(g)] for g in wanted], np.int64)
        where = pos[np.searchsorted(wanted, groups)] + (rows - self.offsets[groups])
        if out is None:
            return data[where]
        out[...] = data[where]
        return out

    def close(self) -> None:
        pass


class HealpixColumn:
    """The ``healpix`` column (NSIDE 16, NESTED) of a catalog that stores none: computed from
    its ra/dec columns, row for row as the build computes it."""

    def __init__(self, ra: ParquetColumn, dec: ParquetColumn):
        self.ra, self.dec, self.n = ra, dec, ra.n
        self.spec = ColumnSpec("<i8", ())

    def slice(self, a: int, b: int) -> np.ndarray:
        return layout.healpix_of(self.ra.slice(a, b), self.dec.slice(a, b))

    def take(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        got = layout.healpix_of(self.ra.take(rows), self.dec.take(rows))
        if out is None:
            return got
        out[...] = got
        return out

    def close(self) -> None:
        pass


# ---- the catalog -----------------------------------------------------------------------------
class HatsDataset(NamedColumns):
    """A HATS catalog (or collection) folder opened for reading. Use
    :func:`~mmu_core.storage.reader.open_dataset` (or this class directly).

    :param path: the catalog folder (``hats.properties``) or collection folder
        (``collection.properties``).
    :param memory_map: accepted for compatibility with :class:`Dataset`; Parquet is read by
        row groups.
    :param id_column: the column holding object ids when the catalog has no ``object_id`` and
        its properties name none (``hats_cols_survey_id``).
    """

    manifest = None  # no mmu manifest: the catalog's own metadata describes it

    def __init__(self, path: Path | str, memory_map: bool = True, id_column: str | None = None):
        self.path = Path(path)
        self.memory_map = memory_map
        self._id_column_given = id_column
        self._load()

    # ---- loading --------------------------------------------------------------------------
    def _load(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        hats = require_hats()
        if not is_hats_catalog(self.path):
            raise HatsError(f"{self.path}: not a HATS catalog folder (no hats.properties or "
                            "collection.properties)")
        root = self.path.resolve()
        self.collection: dict[str, Any] | None = None
        self.margin_path: Path | None = None
        catalog_dir = self.path
        try:
            if not any((self.path / n).is_file() for n in CATALOG_PROPERTIES):
                # a collection: its catalogs are named relative to it, and must lie inside it
                from hats.catalog.dataset.collection_properties import CollectionProperties

                props = CollectionProperties.read_from_dir(self.path)
                self.collection = props.explicit_dict()
                catalog_dir = self._inside(props.hats_primary_table_url, "main catalog")
                if props.default_margin:
                    margin = self.path / props.default_margin
                    if "://" not in props.default_margin and margin.resolve().is_relative_to(root):
                        self.margin_path = margin
            catalog = hats.read_hats(catalog_dir, single_catalog=True, read_moc=False)
        except (OSError, ValueError, TypeError, NotImplementedError) as exc:
            raise HatsError(f"{catalog_dir}: cannot be read as a HATS catalog ({exc})") from None
        self.catalog_path = Path(str(catalog.catalog_base_dir))
        info = catalog.catalog_info
        kind = str(getattr(info.catalog_type, "value", info.catalog_type))
        if kind not in ("object", "source"):
            raise HatsError(f"{self.catalog_path}: a HATS {kind} catalog, not a catalog of rows "
                            "(object or source): open its primary catalog instead")
        self.properties: dict[str, Any] = info.model_dump(by_alias=True, exclude_none=True)
        self.catalog_name = str(info.catalog_name)
        self.partitions: list[tuple[int, int]] = [(int(p.order), int(p.pixel))
                                                  for p in catalog.get_healpix_pixels()]
        npix_suffix = info.npix_suffix or ".parquet"
        files: list[Path] = []
        partition_of: list[int] = []
        for k, pixel in enumerate(catalog.get_healpix_pixels()):
            target = Path(str(hats.io.paths.pixel_catalog_file(
                catalog.catalog_base_dir, pixel, npix_suffix=npix_suffix)))
            if npix_suffix in ("/", "\\"):
                found_files = sorted(target.glob("*.parquet")) if target.is_dir() else []
                if not found_files:
                    raise HatsError(f"{target}: partition {pixel} has no Parquet files")
            else:
                if not target.is_file():
                    raise HatsError(f"{target}: partition {pixel} is listed in "
                                    "partition_info.csv but its file is missing")
                found_files = [target]
            for f in found_files:
                if not f.resolve().is_relative_to(root):
                    raise HatsError(f"{f} leads outside the catalog folder (to {f.resolve()}): "
                                    "refused")
                files.append(f)
                partition_of.append(k)
        self._files = files
        self._partition_of = partition_of
        schema = catalog.schema
        if schema is None:
            if not files:
                raise HatsError(f"{self.catalog_path}: no schema (_common_metadata) and no files")
            schema = pq.read_schema(files[0])
        self.arrow_schema: pa.Schema = schema
        raw = (schema.metadata or {}).get(METADATA_KEY)
        self.recorded: dict[str, Any] = json.loads(raw) if raw else {}
        self._columns_from_schema(schema)
        self._rows: list[int] | None = None
        self._row_groups: dict[int, np.ndarray] = {}
        self._specs: dict[str, ColumnSpec] | None = None
        self._handles: OrderedDict[int, Any] = OrderedDict()
        self._access: dict[tuple[int, str], Any] = {}
        self._index: IdIndex | None = None
        self._structure: Any = None
        self._modality: str | None = None
        self.last_cone_partitions: list[tuple[int, int]] = []

    def _inside(self, name: str, what: str) -> Path:
        """A catalog a collection names: a relative path that stays inside the collection."""
        target = self.path / name
        if "://" in name or Path(name).is_absolute() or \
                not target.resolve().is_relative_to(self.path.resolve()):
            raise HatsError(f"{self.path / COLLECTION_PROPERTIES}: its {what} {name!r} is not "
                            "a folder inside the collection: refused (mmu reads only files "
                            "inside the folder opened)")
        return target

    def _columns_from_schema(self, schema: Any) -> None:
        """Our column names, where each is read from, and the columns left out."""
        import pyarrow as pa

        self._source: dict[str, tuple[str, str | None, Any]] = {}
        self.unsupported: dict[str, str] = {}
        top = set(schema.names)
        for fld in schema:
            if fld.name in STRUCTURE_COLUMNS:
                continue
            t = _unwrap(fld.type)
            if pa.types.is_struct(t):
                for sub in t:
                    name = STRUCT_RENAMES.get((fld.name, sub.name), f"{fld.name}_{sub.name}")
                    if name in top or name in self._source:
                        name = f"{fld.name}.{sub.name}"
                    self._add_source(name, fld.name, sub.name, sub.type)
            else:
                self._add_source(fld.name, fld.name, None, fld.type)
        info = self.properties
        self.ra_column = str(info.get("hats_col_ra") or "ra")
        self.dec_column = str(info.get("hats_col_dec") or "dec")
        for what, name in (("ra", self.ra_column), ("dec", self.dec_column)):
            if name not in self._source:
                raise HatsError(f"{self.catalog_path}: the {what} column {name!r} named by its "
                                f"properties is not a readable column ({self._why(name)})")
        ids = self._id_column_given
        if ids is None and "object_id" in self._source:
            ids = "object_id"
        if ids is None:
            survey_id = info.get("hats_cols_survey_id")
            if survey_id:
                ids = str(survey_id).split()[0]
        if ids is not None and ids not in self._source:
            raise HatsError(f"{self.catalog_path}: the id column {ids!r} is not a readable "
                            f"column ({self._why(ids)})")
        self.id_column: str | None = ids
        self._virtual_healpix = "healpix" not in self._source
        recorded = self.recorded.get("aliases") or {}
        aliases = {k: v for k, v in recorded.items() if k in self._source}
        for native, standard in ((self.ra_column, "ra"), (self.dec_column, "dec"),
                                 (self.id_column, "object_id")):
            if native is not None and native != standard:
                aliases[native] = standard
        self.aliases: dict[str, str] = aliases

    def _why(self, name: str) -> str:
        if name in self.unsupported:
            return self.unsupported[name]
        return "no such column; columns: " + ", ".join(self._source)

    def _add_source(self, name: str, field: str, sub: str | None, t: Any) -> None:
        desc = describe_type(t)
        if desc is None:
            self.unsupported[name] = f"Arrow type {t} is not supported"
            return
        self._source[name] = (field, sub, desc)

    def __getstate__(self) -> dict[str, Any]:
        # Open files stay in their process; a pickled catalog (DataLoader workers, spawned
        # processes) reopens lazily. The structure read by hats is read again.
        return {"path": self.path, "memory_map": self.memory_map,
                "_id_column_given": self._id_column_given, "_specs": self._specs,
                "_rows": self._rows}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.memory_map = state["path"], state["memory_map"]
        self._id_column_given = state["_id_column_given"]
        self._load()
        self._specs, self._rows = state["_specs"], state["_rows"]

    # ---- description ----------------------------------------------------------------------
    @property
    def survey(self) -> str:
        return str(self.recorded.get("survey") or self.catalog_name)

    @property
    def config(self) -> str:
        return str(self.recorded.get("config") or DEFAULT_CONFIG)

    @property
    def modality(self) -> str | None:
        """The modality recorded by an mmu export when its columns are all here, else the one
        the columns look like (``None`` for a plain catalog)."""
        if self._modality is None:
            self._modality = self._find_modality() or ""
        return self._modality or None

    def _find_modality(self) -> str | None:
        recorded = canonical_name(self.recorded.get("modality")) if self.recorded else None
        if recorded and not self._modality_problems(recorded):
            return recorded
        guessed = guess_modality(set(self._source))
        return guessed if guessed and not self._modality_problems(guessed) else None

    def _modality_problems(self, modality: str) -> list[str]:
        try:
            spec = get_modality(modality)
        except ValueError as exc:
            return [str(exc)]
        if not any(c.startswith(spec.prefix) for c in self._source):
            return [f"no {spec.prefix}* column"]
        shapes = {k: v.shape for k, v in self.schema.items()}
        return list(spec.check_columns(shapes)) if spec.check_columns else []

    def sides(self) -> dict[str, dict[str, Any]]:
        """Empty: a HATS catalog is never a cross-match output."""
        return {}

    @property
    def columns(self) -> list[str]:
        """Every readable column (``healpix`` included, computed when not stored)."""
        names = list(self._source)
        if self._virtual_healpix:
            names.append("healpix")
        return names

    @property
    def schema(self) -> dict[str, ColumnSpec]:
        """column -> dtype and per-row shape. For a catalog mmu did not write, the first access
        reads the text columns once (their widths) and one row of each list column whose
        length the Arrow type leaves open."""
        if self._specs is None:
            self._specs = self._make_specs()
        return dict(self._specs)

    def _make_specs(self) -> dict[str, ColumnSpec]:
        recorded = self.recorded.get("columns") or {}
        specs: dict[str, ColumnSpec] = {}
        for name, (_field, _sub, (kind, dtype, shape)) in self._source.items():
            if name in recorded:
                spec = ColumnSpec.from_json(recorded[name])
                if len(spec.shape) == len(shape) and (kind == "text") == (spec.np_dtype.kind
                                                                          == "S"):
                    specs[name] = spec
                    continue
            if None in shape:
                shape = self._probe_shape(name, len(shape))
            if kind == "text":
                dtype = np.dtype(f"S{max(1, self._text_width(name, len(shape)))}")
            specs[name] = ColumnSpec(dtype.str, tuple(int(s) for s in shape))
        if self._virtual_healpix:
            specs["healpix"] = ColumnSpec("<i8", ())
        return specs

    def _probe_shape(self, name: str, dims: int) -> list[int]:
        """The per-row shape of a list column, from its first row."""
        import pyarrow as pa
        import pyarrow.compute as pc

        for i in range(len(self._files)):
            if not self.row_group_offsets(i)[-1]:
                continue
            field, sub, _ = self._source[name]
            batch = next(self._file(i).iter_batches(batch_size=1, columns=[self._path_of(name)],
                                                    use_threads=False))
            arr = batch.column(0)
            if sub is not None:
                arr = pc.struct_field(arr, sub)
            arr = arr.slice(0, 1)
            shape = []
            for _ in range(dims):
                arr = arr.storage if isinstance(arr.type, pa.BaseExtensionType) else arr
                if pa.types.is_fixed_size_list(arr.type):
                    shape.append(int(arr.type.list_size))
                else:
                    lengths = pc.list_value_length(arr)
                    if lengths.null_count:
                        raise HatsError(f"{self.where(i, name)}: row 0 is null; its shape is "
                                        "unknown")
                    shape.append(int(lengths[0].as_py()))
                arr = arr.flatten()
                arr = arr.slice(0, 1) if len(arr) else arr
            return shape
        return [0] * dims

    def _text_width(self, name: str, dims: int) -> int:
        """The longest value of a text column, in UTF-8 bytes (reads the column once)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        width = 0
        for i in range(len(self._files)):
            if not self.row_group_offsets(i)[-1]:
                continue
            values = _leaf(self.read_arrow(i, name, None).combine_chunks(), dims, None,
                           self.where(i, name), 0)
            if not (pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type)):
                values = values.cast(pa.large_binary())
            if len(values):
                width = max(width, int(pc.max(pc.binary_length(values)).as_py() or 0))
        return width

    @property
    def pixels(self) -> list[int]:
        """The NSIDE-16 pixels the partitions cover (a partition of a lower order covers all
        its order-4 children, one of a higher order its order-4 parent)."""
        out: set[int] = set()
        for order, pixel in self.partitions:
            if order >= layout_order():
                out.add(pixel >> (2 * (order - layout_order())))
            else:
                span = 4 ** (layout_order() - order)
                out.update(range(pixel * span, (pixel + 1) * span))
        return sorted(out)

    @property
    def files(self) -> list[Path]:
        """Every data file, in the catalog's partition order."""
        return list(self._files)

    @property
    def relpaths(self) -> list[str]:
        """Each file's path inside the folder opened, in file order."""
        root = self.path.resolve()
        return [f.resolve().relative_to(root).as_posix() for f in self._files]

    @property
    def file_partitions(self) -> list[tuple[int, int]]:
        """Each file's HATS partition (order, pixel), in file order."""
        return [self.partitions[k] for k in self._partition_of]

    @property
    def file_rows(self) -> list[int]:
        """Each file's row count, in file order (from ``_metadata`` when it lists every file,
        else each file's footer)."""
        if self._rows is None:
            self._rows = self._count_rows()
        return list(self._rows)

    def _count_rows(self) -> list[int]:
        import pyarrow.parquet as pq

        meta_path = self.catalog_path / "dataset" / "_metadata"
        dataset_dir = (self.catalog_path / "dataset").resolve()
        if meta_path.is_file():
            try:
                meta = pq.read_metadata(meta_path)
                rows: dict[str, int] = {}
                for g in range(meta.num_row_groups):
                    rg = meta.row_group(g)
                    rel = rg.column(0).file_path if rg.num_columns else ""
                    rows[rel] = rows.get(rel, 0) + rg.num_rows
                rels = [f.resolve().relative_to(dataset_dir).as_posix()
                        if f.resolve().is_relative_to(dataset_dir) else None for f in self._files]
                if all(r in rows for r in rels):
                    return [int(rows[r]) for r in rels]
            except (OSError, ValueError):
                pass
        return [int(self.row_group_offsets(i)[-1]) for i in range(len(self._files))]

    def __len__(self) -> int:
        return int(sum(self.file_rows))

    def __repr__(self) -> str:
        if not hasattr(self, "_files"):  # failed while opening
            return f"<mmu HatsDataset {self.path} (not opened)>"
        return (f"<mmu HatsDataset {self.survey}/{self.config}: {len(self):,} rows, "
                f"{len(self.partitions)} partitions, {len(self._files)} files>")

    def info(self) -> dict[str, Any]:
        inverse = self.standard_names()
        specs = self.schema
        orders = sorted({o for o, _ in self.partitions})
        return {
            "path": str(self.path), "format": "hats", "catalog": str(self.catalog_path),
            "margin": None if self.margin_path is None else str(self.margin_path),
            "survey": self.survey, "config": self.config, "modality": self.modality,
            "rows": len(self), "n_pixels": len(self.pixels), "pixels": self.pixels,
            "n_partitions": len(self.partitions), "orders": orders,
            "n_files": len(self._files),
            "bytes": int(sum(f.stat().st_size for f in self._files)),
            "columns": {k: {"dtype": str(v.np_dtype), "shape": list(v.shape),
                            "alias": inverse.get(k)} for k, v in specs.items()},
            "aliases": self.aliases, "unsupported_columns": dict(self.unsupported),
            "absent_columns": self.absent_columns(),
            "provenance": {"hats_properties": {k: str(v) for k, v in self.properties.items()},
                           **({"recorded": self.recorded.get("provenance")}
                              if self.recorded.get("provenance") else {})},
            "manifest": False,
        }

    def absent_columns(self) -> list[str]:
        modality = self.modality
        if modality is None:
            return []
        spec = get_modality(modality)
        return [spec.prefix + c for c in spec.known_columns if spec.prefix + c not in self._source]

    def side_info(self) -> dict[str, Any]:
        """What a derived dataset records about this input."""
        return {"survey": self.survey, "config": self.config, "modality": self.modality,
                "path": str(self.path.resolve()), "rows": len(self), "fingerprint": None,
                "distribution": None, "plugin_version": None,
                "provenance": {"hats": str(self.catalog_path)}}

    # ---- aliases ----------------------------------------------------------------------------
    def standard_names(self) -> dict[str, str]:
        """native -> standard, for aliases whose standard name is not itself a column."""
        cols = set(self.columns)
        return {n: s for n, s in self.aliases.items() if n in cols and s not in cols}

    def resolve(self, name: str) -> str:
        """Column for a column name or a standard (aliased) name."""
        if name in self._source or (name == "healpix" and self._virtual_healpix):
            return name
        for native, standard in self.standard_names().items():
            if standard == name:
                return native
        extra = (f"; left out (unsupported): {', '.join(self.unsupported)}"
                 if self.unsupported else "")
        raise KeyError(f"{self.path}: no column {name!r} (columns: {', '.join(self.columns)}; "
                       f"aliases: {self.standard_names()}{extra})")

    # ---- file access ------------------------------------------------------------------------
    def where(self, file_i: int, name: str) -> str:
        return f"{self._files[file_i]}: column {name!r}"

    def _file(self, i: int) -> Any:
        """The open ``pyarrow.parquet.ParquetFile`` of file ``i`` (at most MAX_OPEN_FILES)."""
        import pyarrow.parquet as pq

        h = self._handles.get(i)
        if h is None:
            try:
                h = pq.ParquetFile(self._files[i])
            except (OSError, ValueError) as exc:
                raise HatsError(f"{self._files[i]}: cannot be read as Parquet ({exc})") from None
            self._handles[i] = h
            if len(self._handles) > MAX_OPEN_FILES:
                old_i, old = self._handles.popitem(last=False)
                for key in [k for k in self._access if k[0] == old_i]:
                    self._access.pop(key)
                old.close()
        else:
            self._handles.move_to_end(i)
        return h

    def row_group_offsets(self, i: int) -> np.ndarray:
        """Cumulative row counts of file ``i``'s row groups (from its own footer)."""
        got = self._row_groups.get(i)
        if got is None:
            meta = self._file(i).metadata
            sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            got = self._row_groups[i] = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
            if self._rows is not None and int(got[-1]) != self._rows[i]:
                raise HatsError(f"{self._files[i]}: holds {int(got[-1])} rows, the catalog's "
                                f"_metadata says {self._rows[i]} (stale _metadata?)")
        return got

    def _path_of(self, name: str) -> str:
        field, sub, _ = self._source[name]
        return field if sub is None else f"{field}.{sub}"

    def read_arrow(self, i: int, name: str, row_groups: list[int] | None) -> Any:
        """One stored column of file ``i`` (given row groups, or all) as an Arrow array."""
        import pyarrow.compute as pc

        field, sub, _ = self._source[name]
        pf = self._file(i)
        cols = [self._path_of(name)]
        try:
            table = (pf.read(columns=cols, use_threads=False) if row_groups is None
                     else pf.read_row_groups(row_groups, columns=cols, use_threads=False))
        except (OSError, ValueError) as exc:
            raise HatsError(f"{self.where(i, name)}: cannot be read ({exc})") from None
        arr = table.column(0)
        return arr if sub is None else pc.struct_field(arr, sub)

    def column(self, i: int, stored: str) -> Any:
        """Access to one column of file ``i`` (``slice``, ``take``), read by row groups."""
        access = self._access.get((i, stored))
        if access is None:
            if stored == "healpix" and self._virtual_healpix:
                access = HealpixColumn(self.column(i, self.ra_column),
                                       self.column(i, self.dec_column))
            elif stored in self._source:
                access = ParquetColumn(self, i, stored)
            else:
                raise HatsError(f"{self._files[i]}: no column {stored!r}")
            self._access[(i, stored)] = access
        return access

    def close(self) -> None:
        self._access.clear()
        for h in self._handles.values():
            h.close()
        self._handles.clear()

    def __enter__(self) -> HatsDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def index(self) -> IdIndex:
        """The sorted id index, built in memory on first use from the id column of every file
        (the cost ``get`` pays once)."""
        if self._index is None:
            if self.id_column is None:
                raise HatsError(f"{self.catalog_path}: no object_id column, and its properties "
                                "name no id column (hats_cols_survey_id); pass id_column=")
            ids, files, rows = [], [], []
            for i, n in enumerate(self.file_rows):
                a = self.column(i, self.id_column).slice(0, n)
                ids.append(a)
                files.append(np.full(len(a), i, np.int32))
                rows.append(np.arange(len(a), dtype=np.int64))
            if not ids:
                self._index = IdIndex(np.empty(0, np.int64), np.empty(0, np.int32),
                                      np.empty(0, np.int64))
            else:
                all_ids = np.concatenate(ids)
                order = np.argsort(all_ids, kind="stable")
                self._index = IdIndex(all_ids[order], np.concatenate(files)[order],
                                      np.concatenate(rows)[order])
        return self._index

    def _gather(self, file_idx: np.ndarray, row_idx: np.ndarray,
                cols: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        specs = self.schema
        n = len(file_idx)
        out = {asked: np.empty((n, *specs[stored].shape), dtype=specs[stored].np_dtype)
               for asked, stored in cols}
        for f, rows, dest in by_file(file_idx, row_idx):
            for asked, stored in cols:
                out[asked][dest] = self.column(f, stored).take(rows)
        return out

    def read_rows(self, file_idx: np.ndarray, row_idx: np.ndarray,
                  columns: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Rows given as (file index, row in file) pairs, in the order given."""
        return self._gather(np.asarray(file_idx), np.asarray(row_idx, dtype=np.int64),
                            self._columns(columns))

    # ---- public reads -----------------------------------------------------------------------
    def get(self, object_ids: Sequence[Any] | np.ndarray | Any,
            columns: Iterable[str] | None = None, aliases: bool = False) -> dict[str, np.ndarray]:
        """Rows for ``object_ids`` in the order asked: dict column -> array. A missing id raises
        ``KeyError`` naming it. Cost (module docstring): whole row groups per column asked,
        plus the id column of every file on the first call."""
        ids = np.atleast_1d(np.asarray(object_ids))
        if ids.dtype.kind == "U":
            ids = np.char.encode(ids, "utf-8")
        cols = self._columns(columns)
        index = self.index()
        if ids.dtype.kind in "iu" and np.asarray(index.ids).dtype.kind == "S":
            ids = ids.astype(str).astype(bytes)
        file_idx, row_idx, found = index.locate(ids)
        if not found.all():
            missing = ids[~found][:10]
            shown = [m.decode() if isinstance(m, bytes) else m.item() for m in missing]
            raise KeyError(f"object_id(s) not in {self.path}: {shown}")
        return self._rename(self._gather(file_idx, row_idx.astype(np.int64), cols), aliases)

    def _structure_catalog(self) -> Any:
        """A ``hats`` catalog structure of the partitions (for its cone filter)."""
        if self._structure is None:
            hats = require_hats()
            from hats.catalog import Catalog, TableProperties

            info = TableProperties(**{k: v for k, v in self.properties.items()})
            pixels = [hats.pixel_math.HealpixPixel(o, p) for o, p in self.partitions]
            self._structure = Catalog(info, pixels)
        return self._structure

    def cone(self, ra: float, dec: float, radius_deg: float,
             columns: Iterable[str] | None = None, aliases: bool = False) -> dict[str, np.ndarray]:
        """Every row within ``radius_deg`` of (ra, dec). Only the partitions whose pixels overlap
        the cone (the ``hats`` cone filter) are read; the test of each row is the one
        :meth:`Dataset.cone` applies (unit vectors, ``dot >= cos(radius)``)."""
        import healpy

        cols = self._columns(columns)
        specs = self.schema
        vec = healpy.ang2vec(ra, dec, lonlat=True)
        cos_r = np.cos(np.radians(radius_deg))
        kept = self._structure_catalog().filter_by_cone(ra, dec, radius_deg * 3600.0)
        touched = {(int(p.order), int(p.pixel)) for p in kept.get_healpix_pixels()}
        self.last_cone_partitions = sorted(touched)
        file_hits, row_hits = [], []
        for i, k in enumerate(self._partition_of):
            if self.partitions[k] not in touched:
                continue
            n = self.file_rows[i]
            r = self.column(i, self.ra_column).slice(0, n).astype(np.float64)
            d = self.column(i, self.dec_column).slice(0, n).astype(np.float64)
            inside = np.flatnonzero(healpy.ang2vec(r, d, lonlat=True) @ vec >= cos_r)
            file_hits.append(np.full(len(inside), i))
            row_hits.append(inside)
        if not file_hits:
            return {asked: np.empty((0, *specs[s].shape), specs[s].np_dtype) for asked, s in cols}
        return self._rename(self._gather(np.concatenate(file_hits),
                                         np.concatenate(row_hits).astype(np.int64), cols), aliases)

    def _files_of_pixels(self, pixels: set[int]) -> list[tuple[int, bool]]:
        """(file, whether its rows must be filtered by pixel) of the files that may hold rows
        of these NSIDE-16 pixels."""
        out = []
        lo = layout_order()
        for i, k in enumerate(self._partition_of):
            order, pixel = self.partitions[k]
            if order >= lo:
                if pixel >> (2 * (order - lo)) in pixels:
                    out.append((i, False))
            else:
                span = 4 ** (lo - order)
                if any(pixel * span <= p < (pixel + 1) * span for p in pixels):
                    out.append((i, True))
        return out

    def iter_batches(self, batch_size: int = 1024, columns: Iterable[str] | None = None,
                     pixels: Iterable[int] | None = None,
                     aliases: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """Batches of at most ``batch_size`` rows, file by file, each file streamed once by
        pyarrow; ``pixels`` (NSIDE 16) keeps only the rows in those pixels."""
        cols = self._columns(columns)
        if pixels is None:
            work = [(i, False) for i in range(len(self._files))]
            wanted: set[int] = set()
        else:
            wanted = {int(p) for p in pixels}
            work = self._files_of_pixels(wanted)
        for i, filtered in work:
            for batch in self.stream_file(i, [s for _, s in cols] + (["healpix"] if filtered else []),
                                      batch_size):
                if filtered:
                    keep = np.isin(batch["healpix"], list(wanted))
                    batch = {k: v[keep] for k, v in batch.items()}
                yield self._rename({asked: batch[stored] for asked, stored in cols}, aliases)

    def stream_file(self, i: int, names: list[str], batch_size: int) -> Iterator[dict[str, Any]]:
        """File ``i``'s rows of the columns ``names`` (stored names), ``batch_size`` at a time,
        each row group decoded once (pyarrow's batches): dict column -> array."""
        import pyarrow.compute as pc

        specs = self.schema
        names = list(dict.fromkeys(names))
        virtual = "healpix" in names and self._virtual_healpix
        stored = [n for n in names if not (n == "healpix" and virtual)]
        if virtual:
            stored += [c for c in (self.ra_column, self.dec_column) if c not in stored]
        paths = list(dict.fromkeys(self._path_of(n) for n in stored))
        row0 = 0
        try:
            batches = self._file(i).iter_batches(batch_size=max(1, int(batch_size)),
                                                 columns=paths, use_threads=False)
            for rb in batches:
                out: dict[str, Any] = {}
                for name in stored:
                    field, sub, _ = self._source[name]
                    arr = rb.column(rb.schema.get_field_index(field))
                    if sub is not None:
                        arr = pc.struct_field(arr, sub)
                    out[name] = arrow_to_numpy(arr, specs[name], self.where(i, name), row0)
                if virtual:
                    out["healpix"] = layout.healpix_of(out[self.ra_column], out[self.dec_column])
                row0 += rb.num_rows
                yield out
        except (OSError, ValueError) as exc:
            raise HatsError(f"{self._files[i]}: cannot be read ({exc})") from None

    def read_pixel(self, pixel: int, columns: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Every row of one NSIDE-16 pixel, for the given columns."""
        specs = self.schema
        cols = self._columns(columns)
        parts = []
        for i, filtered in self._files_of_pixels({int(pixel)}):
            n = int(self.file_rows[i])
            rows = np.arange(n)
            if filtered:
                rows = np.flatnonzero(self.column(i, "healpix").slice(0, n) == int(pixel))
            parts.append({asked: self.column(i, stored).take(rows) for asked, stored in cols})
        if not parts:
            return {asked: np.empty((0, *specs[s].shape), specs[s].np_dtype) for asked, s in cols}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    # ---- logical examples -------------------------------------------------------------------
    def example(self, object_id: Any, columns: Iterable[str] | None = None, **kwargs: Any) -> dict:
        """One row as the logical example of the catalog's modality (docs/examples.md)."""
        row = {k: v[0] for k, v in self.get([object_id], columns=columns).items()}
        return self.row_to_example(row, **kwargs)

    def row_to_example(self, row: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return row_example(self, row, **kwargs)


def layout_order() -> int:
    """The HEALPix order of our stored layout (NSIDE 16 is order 4)."""
    return int(layout.NSIDE).bit_length() - 1
