"""What a match task hands back for its block, and the temporary part files that hold it.

A block's pairs, sorted by (healpix, left id, right id), travel as a :class:`BlockPart`: in
memory (an Arrow table, when the driver writes the catalog from it) and/or as an uncompressed
Arrow IPC file under ``OUT/parts.tmp-*`` (for the driver to settle ``nearest`` claims without
holding every pair, and for the matched-dataset writers). The part files are removed when the
cross-match ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Claims:
    """A ``nearest`` block's pairs whose right object lies in a pixel other blocks also read
    (so they may claim it too), sorted by that pixel: an Arrow table of ``row`` (in the
    block's pairs), ``right_pixel``, ``right_key`` (file << 32 | row of the right object),
    ``separation_arcsec`` and ``left_object_id``; in memory (``table``) or in the Arrow file
    ``path`` (None when there are none)."""

    pixels: np.ndarray  # the right pixels claimed, sorted
    counts: np.ndarray  # claims on each of them
    table: Any = None
    path: str | None = None


@dataclass
class BlockPart:
    """One match task's result: block ``block``'s pairs (``rows`` of them; for ``nearest``
    already one-to-one within the block) and, for ``nearest``, its claims to settle."""

    block: int  # the block's index in the plan (blocks are in healpix order)
    candidates: int  # pairs before the one-to-one rule (nearest: left objects with a match)
    rows: int
    table: Any = None  # the pairs as an Arrow table, when asked for
    path: str | None = None  # the pairs' Arrow part file, when written (None if no pairs)
    claims: Claims | None = None  # nearest only
    drop: np.ndarray | None = None  # rows of the pairs that lost a claim (set by the driver)

    def take_table(self) -> Any:
        """The in-memory table, released from the part."""
        table, self.table = self.table, None
        return table

    def read_table(self, columns: list[str] | None = None) -> Any:
        """The pairs, from memory or the part file."""
        if self.table is not None:
            return self.table if columns is None else self.table.select(columns)
        return read_part(self.path, columns)


def write_part(table: Any, path: str) -> None:
    """A temporary part: an uncompressed Arrow IPC file, written as fast as memory is copied
    and read back through a memory map without decoding."""
    import pyarrow as pa

    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_part(path: str, columns: list[str] | None = None) -> Any:
    """A part file's table (memory-mapped), or some of its columns."""
    import pyarrow as pa

    table = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
    return table if columns is None else table.select(columns)


def to_numpy(column: Any) -> np.ndarray:
    """An Arrow column as numpy (binary ids as fixed-width bytes)."""
    import pyarrow as pa

    if pa.types.is_binary(column.type) or pa.types.is_string(column.type):
        return np.array(column.to_pylist(), dtype=bytes)
    return column.to_numpy()
