"""Checksums of stored rows, written with every column and checked on every read.

Two mechanisms, one per storage layout (docs/format.md, "Integrity"):

- **Contiguous columns** (uncompressed, read at the file's speed: positional reads for large
  rows, memory maps for small ones) carry a checksum per block of rows in two attributes of
  their HDF5 dataset: ``mmu_block_rows`` (rows per block) and ``mmu_xxh3`` (uint64, one
  XXH3-64 digest of each block's bytes as stored). A read hashes the blocks it touched and
  compares. Rows of 4 kB and more are a block each (a read hashes exactly what it read);
  smaller rows are grouped into blocks of about ``BLOCK_BYTES``.
- **Chunked columns** (compressed) use HDF5's own Fletcher32 filter per chunk, which HDF5
  checks as it decompresses.

XXH3 rather than zlib's CRC32 (both well-kept): measured here on 500 random DESI-sized rows
(31 MB), XXH3 hashes in 1.4 ms and CRC32 in 5.1 ms, against 5 ms to read the rows themselves.

Files without these (MMU v1 files, older builds) are *unchecked*: read as they are, and
reported so by ``mmu validate``, never as corrupt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xxhash

from mmu_core.errors import MMUError

BLOCK_BYTES = 64 * 1024  # bytes of rows one checksum covers (at least one row)
DIGEST_ATTR = "mmu_xxh3"
BLOCK_ROWS_ATTR = "mmu_block_rows"


class CorruptDataError(MMUError):
    """Stored bytes do not match their checksum (or HDF5 could not read them)."""


ONE_ROW_BLOCKS_FROM = 4096  # rows at least this large get a digest each


def block_rows(row_bytes: int) -> int:
    """Rows per checksum block for a column with rows of ``row_bytes``: one for rows of 4 kB
    and more (they are read one by one at random, and a read then hashes exactly what it
    read), else about ``BLOCK_BYTES`` of rows."""
    if row_bytes >= ONE_ROW_BLOCKS_FROM:
        return 1
    return max(1, BLOCK_BYTES // max(1, row_bytes))


def digest_of(rows: np.ndarray) -> int:
    """The XXH3-64 digest of some rows' bytes as stored."""
    rows = np.ascontiguousarray(rows)
    return xxhash.xxh3_64_intdigest(rows.reshape(len(rows), -1).view(np.uint8) if len(rows)
                                    else rows)


def digests(data: np.ndarray, rows_per_block: int) -> np.ndarray:
    """The XXH3-64 digest of each block of ``rows_per_block`` rows of ``data`` (the last
    block may be shorter)."""
    n = len(data)
    out = np.empty((n + rows_per_block - 1) // rows_per_block, np.uint64)
    for k, a in enumerate(range(0, n, rows_per_block)):
        out[k] = digest_of(data[a : a + rows_per_block])
    return out


def write_digests(dataset: Any, values: np.ndarray, rows_per_block: int) -> None:
    """Record a contiguous column's block digests on its HDF5 dataset."""
    dataset.attrs[BLOCK_ROWS_ATTR] = np.int64(rows_per_block)
    dataset.attrs[DIGEST_ATTR] = np.asarray(values, np.uint64)


def read_digests(dataset: Any) -> tuple[int, np.ndarray] | None:
    """(rows per block, digests) of a column, or ``None`` when it has none (unchecked)."""
    attrs = dataset.attrs
    if DIGEST_ATTR not in attrs or BLOCK_ROWS_ATTR not in attrs:
        return None
    return int(attrs[BLOCK_ROWS_ATTR]), np.asarray(attrs[DIGEST_ATTR], np.uint64)


def bad_blocks(read: Callable[[int, int], np.ndarray], blocks: np.ndarray,
               rows_per_block: int, expected: np.ndarray, n_rows: int) -> list[int]:
    """The blocks among ``blocks`` whose bytes, as ``read(a, b)`` returns rows ``a:b``, do
    not match ``expected``."""
    bad = []
    for k in np.unique(blocks).tolist():
        a = k * rows_per_block
        if k >= len(expected) or digest_of(read(a, min(n_rows, a + rows_per_block))) != int(
                expected[k]):
            bad.append(k)
    return bad


def verify_rows(data: np.ndarray, rows: np.ndarray, expected: np.ndarray,
                at: np.ndarray | None = None) -> int | None:
    """For a column with one row per block: the first of ``rows`` whose bytes in ``data``
    (``data[k]`` holds row ``rows[k]``, or ``data[at[k]]`` when ``at`` is given) do not match
    ``expected``, or ``None``."""
    flat = np.ascontiguousarray(data).reshape(len(data), -1).view(np.uint8)
    digest = xxhash.xxh3_64_intdigest  # per row, on one flat view: no copy per row
    places = range(len(rows)) if at is None else np.asarray(at).tolist()
    for k, r in zip(places, rows.tolist(), strict=True):
        if r >= len(expected) or digest(flat[k]) != int(expected[r]):
            return r
    return None
