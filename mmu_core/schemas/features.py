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
