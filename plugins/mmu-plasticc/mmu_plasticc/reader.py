"""Streaming readers for PLAsTiCC CSV files: bounded memory, exact line numbers.

Light-curve files (up to ~450 million rows) are read in blocks of whole lines. Each block is
parsed by pyarrow's CSV reader (fast path); a block pyarrow rejects is re-parsed line by line
(slow path) so that every bad line is reported with its number and object. Rows and lines stay
in step because blank lines are never silently dropped on the fast path.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from mmu_core.errors import InputError
from mmu_plasticc.datamodel import INT_META_COLUMNS, LC_FIELDS, N_BANDS

# One parse block. Memory per block is a few times this (the bytes, pyarrow's parse, numpy
# columns); 4 MB keeps a build near 300 MB while pyarrow still parses at full speed.
BLOCK_BYTES = 4 * 1024 * 1024
META_BLOCK_BYTES = 4 * 1024 * 1024

_INT_FIELDS = frozenset({"object_id", "passband", "detected"})


def open_binary(path: Path) -> BinaryIO:
    """Open a plain or gzipped file for reading bytes (decompressed)."""
    path = Path(path)
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def is_compressed(path: Path) -> bool:
    return Path(path).name.endswith(".gz")


def read_header(path: Path) -> tuple[list[str], int]:
    """Column names of a CSV file and the byte length of its header line (with newline)."""
    try:
        with open_binary(path) as fh:
            line = fh.readline(1 << 20)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read the header: {exc}", file=str(path)) from exc
    if not line.endswith(b"\n"):
        raise InputError("no complete header line (empty or truncated file)", file=str(path))
    try:
        text = line.decode("utf-8").strip().lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(f"header is not text: {exc}", file=str(path)) from exc
    return [name.strip().strip('"') for name in text.split(",")], len(line)


@dataclass
class Block:
    """Whole lines of a file: ``data`` starts at byte ``offset`` (decompressed) on line
    ``first_line`` (1-based, the header being line 1)."""

    data: bytes
    offset: int
    first_line: int

    def line_starts(self) -> np.ndarray:
        """Byte offset (in the file) of the start of each line of the block."""
        newlines = np.flatnonzero(np.frombuffer(self.data, np.uint8) == 10)
        starts = np.concatenate(([0], newlines + 1))
        if len(self.data) and self.data.endswith(b"\n"):
            starts = starts[:-1]
        return starts.astype(np.int64) + self.offset


def iter_blocks(
    path: Path,
    start: int,
    end: int | None,
    first_line: int,
    block_bytes: int | None = None,
) -> Iterator[Block]:
    """Blocks of whole lines of ``path`` between byte ``start`` and ``end`` (None: to the end).

    ``start`` and ``end`` must be line starts. A gzipped file is decompressed from its
    beginning (gzip cannot seek), so callers give gzipped files whole.
    """
    block_bytes = block_bytes or BLOCK_BYTES
    with open_binary(path) as fh:
        if is_compressed(path):
            _discard(fh, start)
        else:
            fh.seek(start)
        pos, line, carry = start, first_line, b""
        while end is None or pos < end:
            want = block_bytes if end is None else min(block_bytes, end - pos)
            try:
                chunk = fh.read(want)
            except (OSError, EOFError) as exc:
                raise InputError(f"cannot read near byte {pos}: {exc}", file=str(path)) from exc
            if not chunk:
                break
            pos += len(chunk)
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:  # no line ends in this chunk: keep reading
                carry += chunk
                continue
            block = carry + chunk[:cut] if carry else chunk[:cut]
            carry = chunk[cut:]
            yield Block(block, pos - len(chunk) + cut - len(block), line)
            line += block.count(b"\n")
        if carry:
            yield Block(carry, pos - len(carry), line)


def _discard(fh: BinaryIO, n: int) -> None:
    while n > 0:
        got = fh.read(min(n, BLOCK_BYTES))
        if not got:
            return
        n -= len(got)


@dataclass
class BadLine:
    """A light-curve line that cannot be used."""

    line: int
    object_id: int | None
    message: str

    def describe(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class Rows:
    """Parsed light-curve rows (one entry per good line) and the bad lines of a block."""

    columns: dict[str, np.ndarray]
    line: np.ndarray
    bad: list[BadLine] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.line)


def parse_lightcurve_block(
    block: Block,
    header: list[str],
    detected_column: str,
    fields: tuple[str, ...] = LC_FIELDS,
    check: bool = True,
) -> Rows:
    """Parse one block of a light-curve file into ``fields`` (our names, see LC_FIELDS).

    Malformed lines are left out of the rows and listed in ``Rows.bad``; with ``check`` so
    are lines with impossible values (passband outside 0-5, non-finite mjd, detected not 0/1).
    """
    native = {f: (detected_column if f == "detected" else f) for f in fields}
    n_lines = block.data.count(b"\n") + (0 if block.data.endswith(b"\n") else 1)
    try:
        table = pacsv.read_csv(
            io.BytesIO(block.data),
            # one thread: a build parallelises over units (workers), and pyarrow's
            # per-thread buffers would multiply the memory of every worker
            read_options=pacsv.ReadOptions(column_names=header, use_threads=False),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(native.values()),
                column_types={
                    n: pa.int64() if f in _INT_FIELDS else pa.float64() for f, n in native.items()
                },
                null_values=[],  # "nan" parses as NaN; an empty field is an error
            ),
        )
        ok = table.num_rows == n_lines
    except pa.ArrowInvalid:
        ok = False
    if ok:
        columns = {f: table.column(n).to_numpy() for f, n in native.items()}
        line = np.arange(block.first_line, block.first_line + n_lines, dtype=np.int64)
        rows = Rows(columns, line)
    else:
        rows = _parse_lines(block, header, native)
    return _check_values(rows) if check else rows


def _parse_lines(block: Block, header: list[str], native: dict[str, str]) -> Rows:
    """Slow path: parse line by line, keeping good lines and naming bad ones."""
    index = {name: i for i, name in enumerate(header)}
    wanted = [(f, index[n], int if f in _INT_FIELDS else float) for f, n in native.items()]
    id_index = index.get("object_id")
    values: dict[str, list] = {f: [] for f in native}
    lines: list[int] = []
    bad: list[BadLine] = []
    pieces = block.data.decode("utf-8", "replace").split("\n")
    if pieces[-1] == "":
        pieces.pop()  # after the final newline
    for k, raw in enumerate(pieces):
        number = block.first_line + k
        line = raw.rstrip("\r")
        if not line.strip():
            continue  # a blank line holds no observation
        parts = [p.strip().strip('"') for p in line.split(",")]
        object_id = (
            _int_or_none(parts[id_index])
            if id_index is not None and id_index < len(parts)
            else None
        )
        if len(parts) != len(header):
            bad.append(
                BadLine(
                    number,
                    object_id,
                    f"malformed line: {len(parts)} fields, expected {len(header)} "
                    f"({','.join(header)}): {line[:80]!r}",
                )
            )
            continue
        parsed = {}
        for f, i, cast in wanted:
            try:
                parsed[f] = cast(parts[i])
            except ValueError:
                kind = "an integer" if cast is int else "a number"
                bad.append(
                    BadLine(
                        number,
                        object_id,
                        f"malformed line: {header[i]} is not {kind}: {parts[i]!r}",
                    )
                )
                break
        else:
            for f, v in parsed.items():
                values[f].append(v)
            lines.append(number)
    columns = {
        f: np.array(v, dtype=np.int64 if f in _INT_FIELDS else np.float64)
        for f, v in values.items()
    }
    return Rows(columns, np.array(lines, dtype=np.int64), bad)


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _check_values(rows: Rows) -> Rows:
    """Move rows whose values are impossible into ``rows.bad``."""
    c = rows.columns
    problems: list[tuple[np.ndarray, str, str]] = []
    if "passband" in c:
        problems.append(
            (
                ~((c["passband"] >= 0) & (c["passband"] < N_BANDS)),
                "passband",
                "passband {} is outside 0-5",
            )
        )
    if "mjd" in c:
        problems.append((~np.isfinite(c["mjd"]), "mjd", "mjd is not finite: {}"))
    if "detected" in c:
        problems.append((~np.isin(c["detected"], (0, 1)), "detected", "detected is {}, not 0 or 1"))
    bad_mask = np.zeros(len(rows), bool)
    for mask, name, template in problems:
        for i in np.flatnonzero(mask & ~bad_mask):
            rows.bad.append(
                BadLine(int(rows.line[i]), int(c["object_id"][i]), template.format(c[name][i]))
            )
        bad_mask |= mask
    if bad_mask.any():
        keep = ~bad_mask
        rows.columns = {k: v[keep] for k, v in c.items()}
        rows.line = rows.line[keep]
    rows.bad.sort(key=lambda b: b.line)
    return rows


def release_memory() -> None:
    """Hand pyarrow's cached free memory back to the system (its allocator keeps it
    otherwise, ~100 MB after a pass over a big file)."""
    pa.default_memory_pool().release_unused()


def meta_column_types(header: list[str]) -> dict[str, pa.DataType]:
    """pyarrow types of the metadata columns: known integer columns int64, the rest float64."""
    return {n: pa.int64() if n in INT_META_COLUMNS else pa.float64() for n in header}


def iter_metadata(path: Path, columns: list[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Chunks of a metadata file (plain or gzipped) as numpy columns, memory bounded."""
    header, _ = read_header(path)
    types = meta_column_types(header)
    include = columns or header
    try:
        reader = pacsv.open_csv(
            str(path),
            read_options=pacsv.ReadOptions(block_size=META_BLOCK_BYTES, use_threads=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=include,
                column_types={n: types[n] for n in include},
                null_values=[],
            ),
        )
        for batch in reader:
            yield {n: batch.column(n).to_numpy(zero_copy_only=False) for n in include}
    except pa.ArrowInvalid as exc:
        raise InputError(f"bad metadata file: {exc}", file=str(path)) from exc
