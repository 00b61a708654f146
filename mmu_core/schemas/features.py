"""HuggingFace ``datasets`` features of stored columns, for the modalities' ``features``.

A column is described by anything with ``np_dtype`` and ``shape`` (per row), such as
:class:`mmu_core.storage.columns.ColumnSpec`. ``datasets`` is imported only when a feature is
built, so the schemas stay importable without it.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class ColumnLike(Protocol):
    np_dtype: np.dtype
    shape: tuple[int, ...]


def value_feature(spec: ColumnLike | np.dtype | str) -> Any:
    """The ``datasets.Value`` of a column's (or a dtype's) scalar type."""
    from datasets import Value

    dtype = np.dtype(spec.np_dtype if hasattr(spec, "np_dtype") else spec)
    if dtype.kind in "SU":
        return Value("string")
    if dtype.kind == "b":
        return Value("bool")
    return Value(dtype.newbyteorder("=").name)


def list_feature(spec: ColumnLike | np.dtype | str, length: int = -1) -> Any:
    """A (fixed-length when ``length`` >= 0) list of the column's scalar type."""
    from datasets import List

    return List(value_feature(spec), length=length)


def array_feature(spec: ColumnLike | np.dtype | str, shape: tuple[int, ...]) -> Any:
    """``Array2D`` .. ``Array5D`` of the column's scalar type and the given shape."""
    from datasets import Array2D, Array3D, Array4D, Array5D

    kind = {2: Array2D, 3: Array3D, 4: Array4D, 5: Array5D}[len(shape)]
    return kind(shape=tuple(shape), dtype=value_feature(spec).dtype)


def column_feature(spec: ColumnLike) -> Any:
    """Feature of one stored column as it is: a Value, a fixed-length list, or an Array2D..5D
    (nested fixed-length lists for text and for shapes Array*D cannot hold)."""
    from datasets import List

    shape = tuple(spec.shape)
    if not shape:
        return value_feature(spec)
    if len(shape) == 1:
        return list_feature(spec, shape[0])
    if spec.np_dtype.kind in "SU" or len(shape) > 5 or 0 in shape:
        feature = value_feature(spec)
        for n in reversed(shape):
            feature = List(feature, length=n)
        return feature
    return array_feature(spec, shape)


# ---- Arrow columns ------------------------------------------------------------------------
# The HF integration builds its Arrow tables a block of rows at a time, straight from the
# stored column arrays: a modality's ``example_columns`` gives the fields of its examples for a
# whole block (each value holding every row along its first axis), and :func:`arrow_array`
# turns one such value into the Arrow array of its feature, vectorised.


class Ragged:
    """A column of variable-length lists: row ``i`` is ``values[offsets[i]:offsets[i + 1]]``,
    where ``values`` is itself a column (numpy array, dict of columns, or Ragged) of
    ``offsets[-1]`` entries."""

    __slots__ = ("offsets", "values")

    def __init__(self, offsets: Any, values: Any):
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.values = values

    @classmethod
    def from_lengths(cls, lengths: Any, values: Any) -> Ragged:
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(offsets, values)


def _text(value: Any) -> list[str | None]:
    from mmu_core.schemas.common import decode

    return [None if v is None else str(decode(v)) for v in value]


def _value_array(feature: Any, value: Any, n: int) -> Any:
    import pyarrow as pa

    pa_type = feature.pa_type
    if value is None:
        return pa.nulls(n, pa_type)
    if isinstance(value, (str, bytes, int, float, bool, np.generic)):  # the same in every row
        value = [value] * n
    textual = pa.types.is_string(pa_type) or pa.types.is_large_string(pa_type)
    if isinstance(value, list) or (isinstance(value, np.ndarray) and value.dtype == object):
        flat = list(np.asarray(value, dtype=object).reshape(n))
        if textual:
            return pa.array(_text(flat), type=pa_type)
        return pa.array([v.item() if isinstance(v, np.generic) else v for v in flat], type=pa_type)
    arr = np.asarray(value).reshape(n)
    if textual:
        if arr.dtype.kind == "S":
            arr = np.char.decode(arr, "utf-8", "replace")
        return pa.array(arr, type=pa_type)
    dtype = np.dtype(pa_type.to_pandas_dtype())
    return pa.array(arr.astype(dtype, copy=False))


def _offsets(count: int, size: int) -> Any:
    import pyarrow as pa

    if count * size >= 2**31:
        raise ValueError(f"a block of {count} x {size} values is too big for 32-bit list offsets; "
                         "read fewer rows at a time")
    return pa.array(np.arange(count + 1, dtype=np.int32) * np.int32(size))


def arrow_array(feature: Any, value: Any, n: int) -> Any:
    """The Arrow array (``n`` rows, of exactly ``feature``'s Arrow type) of one column of a
    block of examples.

    ``value`` holds all ``n`` rows: for a ``Value``, an array of ``n`` values (bytes are decoded
    for strings) or one scalar shared by every row (``None``: all null); for an ``Array2D`` ..
    ``Array5D`` or a fixed-length ``List``, an array of ``n`` rows of any shape with the right
    number of values, read row-major (a (n, B, H, W) image column fills a ``List`` of B bands
    whose planes are lists of H * W values); for a dict of features, a dict of columns; for a
    variable-length ``List``, a :class:`Ragged` (or a list of per-row lists).
    """
    import pyarrow as pa
    from datasets import Array2D, Array3D, Array4D, Array5D, List, Value

    if isinstance(feature, dict):
        if not feature:
            return pa.array([{}] * n, type=pa.struct([]))
        value = {} if value is None else value
        children = [arrow_array(f, value.get(k), n) for k, f in feature.items()]
        return pa.StructArray.from_arrays(
            children, fields=[pa.field(k, c.type) for k, c in zip(feature, children, strict=True)])
    if isinstance(feature, Value):
        return _value_array(feature, value, n)
    if isinstance(feature, (Array2D, Array3D, Array4D, Array5D)):
        shape = tuple(feature.shape)
        arr = np.asarray(value).astype(np.dtype(feature.dtype), copy=False).reshape(-1)
        if len(arr) != n * int(np.prod(shape)):
            raise ValueError(f"{n} rows of {feature} expected, got {len(arr)} values")
        storage = pa.array(arr)
        count = len(arr)
        for size in reversed(shape):
            count //= size
            storage = pa.ListArray.from_arrays(_offsets(count, size), storage)
        return pa.ExtensionArray.from_storage(feature(), storage)
    if isinstance(feature, List):
        if feature.length >= 0:
            child = arrow_array(feature.feature, value, n * feature.length)
            return pa.FixedSizeListArray.from_arrays(child, feature.length)
        ragged = value if isinstance(value, Ragged) else columns_from_rows(feature, list(value))
        if len(ragged.offsets) != n + 1:
            raise ValueError(f"{n} rows of {feature} expected, got {len(ragged.offsets) - 1}")
        total = int(ragged.offsets[-1])
        if total >= 2**31:
            raise ValueError(f"{total} list items in one block: too many for 32-bit offsets")
        child = arrow_array(feature.feature, ragged.values, total)
        return pa.ListArray.from_arrays(pa.array(ragged.offsets.astype(np.int32)), child)
    raise TypeError(f"no Arrow conversion for feature {feature!r}")


def _dense(feature: Any) -> bool:
    """Whether a feature's rows stack into one numpy array (no dicts, no variable lengths)."""
    from datasets import Array2D, Array3D, Array4D, Array5D, List, Value

    if isinstance(feature, (Value, Array2D, Array3D, Array4D, Array5D)):
        return True
    return isinstance(feature, List) and feature.length >= 0 and _dense(feature.feature)


def columns_from_rows(feature: Any, values: list[Any]) -> Any:
    """The column (as :func:`arrow_array` takes it) of a list of per-row values of
    ``feature``: the generic, row-by-row path for modalities without ``example_columns``."""
    from datasets import List, Value

    if isinstance(feature, dict):
        return {k: columns_from_rows(f, [None if v is None else v.get(k) for v in values])
                for k, f in feature.items()}
    if isinstance(feature, Value):
        return list(values)
    if isinstance(feature, List) and feature.length < 0:
        rows = [[] if v is None else list(v) for v in values]
        return Ragged.from_lengths([len(r) for r in rows],
                                   columns_from_rows(feature.feature, [x for r in rows for x in r]))
    if _dense(feature):
        if not values:
            return np.empty((0,))
        if all(v is None for v in values):
            return None  # absent in every row: nulls
        if isinstance(feature, List) and isinstance(feature.feature, Value) and \
                feature.feature.dtype in ("string", "large_string"):
            return [x for v in values for x in np.asarray(v, dtype=object).reshape(-1)]
        return np.stack([np.asarray(v) for v in values])
    # a fixed-length list of dicts or of variable-length lists: its items, row after row
    return columns_from_rows(feature.feature, [x for v in values for x in v])
