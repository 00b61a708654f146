"""Column-level helpers shared by the writer, the reader and the validator.

A *batch* is a dict column name -> numpy array, all with the same first dimension. A
*schema* maps column name -> :class:`ColumnSpec` (numpy dtype string and per-row shape).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mmu_core.errors import BuildError

REQUIRED = ("object_id", "ra", "dec")

# Chunking: a column whose row is at least ROW_CHUNK_MIN bytes gets one row per chunk (so a
# single-row read decompresses about one row); a huge row is split further so a chunk stays
# near CHUNK_TARGET. Small rows are grouped so a chunk holds about SMALL_CHUNK_BYTES.
ROW_CHUNK_MIN = 16 * 1024
CHUNK_TARGET = 1024 * 1024
SMALL_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class ColumnSpec:
    dtype: str  # numpy dtype string, e.g. '<f4', '|S12', '|b1'
    shape: tuple[int, ...]  # per-row shape

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.np_dtype.itemsize

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: dict) -> ColumnSpec:
        return cls(str(data["dtype"]), tuple(int(x) for x in data["shape"]))


def normalise_array(name: str, value: object) -> np.ndarray:
    """numpy array in a dtype HDF5 stores: unicode -> UTF-8 bytes, native byte order."""
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        arr = np.char.encode(arr, "utf-8")
        if arr.dtype.itemsize == 0:
            arr = arr.astype("S1")
    elif arr.dtype.kind == "O":
        raise BuildError(f"column {name!r} has dtype object; give fixed-width strings or numbers")
    if arr.dtype.byteorder == ">":  # FITS is big-endian; store native little-endian
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def schema_of(batch: dict[str, np.ndarray]) -> dict[str, ColumnSpec]:
    return {k: ColumnSpec(v.dtype.str, tuple(v.shape[1:])) for k, v in batch.items()}


def merge_schema(
    current: dict[str, ColumnSpec] | None, new: dict[str, ColumnSpec], where: str
) -> dict[str, ColumnSpec]:
    """Check a new batch's schema against the build's so far; strings may widen."""
    if current is None:
        return dict(new)
    missing = sorted(set(current) - set(new))
    extra = sorted(set(new) - set(current))
    if missing or extra:
        raise BuildError(
            f"{where}: columns differ from earlier batches (missing {missing}, unexpected {extra})"
        )
    merged = {}
    for name, spec in current.items():
        other = new[name]
        if spec.shape != other.shape:
            raise BuildError(
                f"{where}: column {name!r} rows have shape {other.shape}, earlier batches {spec.shape}"
            )
        a, b = spec.np_dtype, other.np_dtype
        if a.kind == "S" and b.kind == "S":
            merged[name] = ColumnSpec(f"|S{max(a.itemsize, b.itemsize)}", spec.shape)
        elif a != b:
            promoted = np.promote_types(a, b)
            if promoted.kind != a.kind:
                raise BuildError(
                    f"{where}: column {name!r} has dtype {b}, earlier batches {a}"
                )
            merged[name] = ColumnSpec(promoted.str, spec.shape)
        else:
            merged[name] = spec
    return merged


def chunk_shape(spec: ColumnSpec, n_rows: int) -> tuple[int, ...]:
    """Chunk shape so a single-row read touches about one row of bytes."""
    itemsize = spec.np_dtype.itemsize
    row_bytes = max(1, spec.row_bytes)
    if row_bytes < ROW_CHUNK_MIN:
        rows = max(1, min(max(n_rows, 1), SMALL_CHUNK_BYTES // row_bytes))
        return (rows, *spec.shape)
    dims = list(spec.shape)
    # Shrink leading per-row dims (keeping the last, usually the spectral/x axis, whole).
    for i in range(len(dims) - 1):
        while dims[i] > 1 and int(np.prod(dims)) * itemsize > CHUNK_TARGET:
            dims[i] = (dims[i] + 1) // 2
    return (1, *dims)


# "auto" compresses a column only where gzip saves at least this much: half for rows under
# ROW_CHUNK_MIN (catalog columns, masks of spectra: read many rows a chunk), four fifths for
# the large rows that training reads at random (stamps, spectra, cubes), which otherwise stay
# contiguous and memory-mapped
AUTO_MIN_SAVING = 0.5
AUTO_MIN_SAVING_LARGE_ROWS = 0.8


def compression_for(spec: ColumnSpec, compression: str | None, sample: np.ndarray | None = None,
                    n_rows: int | None = None) -> dict:
    """h5py dataset keywords for a column of ``n_rows`` rows (``len(sample)`` when None).

    ``"auto"`` (the default of builds) test-compresses rows of the sample, chunk by chunk as they
    would be stored (``chunk_shape``), and uses gzip level 1 with shuffle only if that saves
    ``AUTO_MIN_SAVING`` (rows under 16 KiB) or ``AUTO_MIN_SAVING_LARGE_ROWS`` (larger rows):
    masks, padded cubes and repeated wavelength grids shrink 10-100x, while floats with noise
    save 20-40% at ~6x the read cost per row (0.96 ms vs 0.16 ms for a 512 kB stamp) and would
    lose the contiguous, memory-mapped layout random access relies on (500 random DESI rows of
    flux + ivar: ~10 ms contiguous, ~170 ms when ivar is in one-row gzip chunks), so they stay
    raw. Testing chunk by chunk matters: rows that repeat each other compress well together
    but not one chunk at a time (DESI sample ivar: 0.19 of its size over 33 rows at once, 0.62
    in its stored one-row chunks).
    """
    if compression in (None, "none"):
        return {}
    if compression == "auto":
        saving = AUTO_MIN_SAVING if spec.row_bytes < ROW_CHUNK_MIN else AUTO_MIN_SAVING_LARGE_ROWS
        if sample is None or sample.size == 0:
            return {}
        per_chunk = chunk_shape(spec, len(sample) if n_rows is None else n_rows)[0]
        if _gzip_ratio(sample, per_chunk) > 1 - saving:
            return {}
        compression = "gzip"
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": spec.np_dtype.itemsize > 1}
    return {
        "compression": "gzip",
        "compression_opts": 1,
        "shuffle": spec.np_dtype.itemsize > 1,
    }


SAMPLE_BYTES = 1024 * 1024


def _gzip_ratio(sample: np.ndarray, per_chunk: int = 1) -> float:
    """Compressed / raw size of ``sample``'s rows compressed ``per_chunk`` rows at a time (as
    HDF5 stores them), over at most SAMPLE_BYTES of chunks spread evenly through the sample."""
    import zlib

    # At most SAMPLE_BYTES: testing 4 MB of every column of every file cost 1.5 s of a 10 s
    # HSC build; 1 MB gives the same decisions on the surveys' columns (masks and grids shrink
    # 10-100x, noisy floats by under 40%).
    sample = np.ascontiguousarray(sample)
    per_chunk = max(1, min(per_chunk, len(sample)))
    chunk_bytes = max(1, sample[:per_chunk].nbytes)
    starts = np.arange(0, len(sample) - per_chunk + 1, per_chunk)
    keep = max(1, min(len(starts), SAMPLE_BYTES // chunk_bytes))
    raw = packed = 0
    for a in starts[np.linspace(0, len(starts) - 1, keep).astype(np.int64)].tolist():
        flat = sample[a:a + per_chunk].reshape(-1)[: max(1, SAMPLE_BYTES // sample.itemsize)]
        data = flat.view(np.uint8).reshape(-1, flat.dtype.itemsize).T.tobytes()  # byte shuffle
        raw += len(data)
        packed += len(zlib.compress(data, 1))
    return packed / max(1, raw)


class NamedColumns:
    """Column-name handling shared by the stored-dataset readers (``Dataset`` and
    ``HatsDataset``), which define ``columns``, ``resolve(name)`` (a stored or standard name ->
    the stored name) and ``standard_names()`` (stored -> standard)."""

    columns: list[str]

    def resolve(self, name: str) -> str:  # pragma: no cover - defined by the readers
        raise NotImplementedError

    def standard_names(self) -> dict[str, str]:  # pragma: no cover - defined by the readers
        raise NotImplementedError

    def _columns(self, columns: Iterable[str] | None) -> list[tuple[str, str]]:
        """[(name asked, stored name)]; None means every stored column."""
        if columns is None:
            return [(c, c) for c in self.columns]
        if isinstance(columns, str):
            columns = [columns]
        return [(c, self.resolve(c)) for c in columns]

    def _rename(self, out: dict[str, np.ndarray], aliases: bool) -> dict[str, np.ndarray]:
        """``out`` under the standard names when ``aliases``."""
        if not aliases:
            return out
        names = self.standard_names()
        return {names.get(k, k): v for k, v in out.items()}
