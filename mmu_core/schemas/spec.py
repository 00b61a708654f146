"""One record per modality (:class:`ModalitySpec`), gathered in one table.

Every part of the core that treats modalities differently — the validator, the reader's
logical examples, the HuggingFace features, the previews, the modality guess for folders
without a manifest — looks the modality up here and calls the record; none of them has a
branch per modality. Adding a modality is one module that defines a ``ModalitySpec`` and
:func:`register_modality` (the five built in are registered by :mod:`mmu_core.schemas`).

Checklist for a new modality (``schemas/<name>.py``):

1. ``name`` (one word, used in manifests and ``SurveyInfo.modality``) and ``prefix``
   (``<name>_``: its stored columns' prefix);
2. the pydantic model of one logical example (``example_model``);
3. ``check_columns``: problems with the stored columns' per-row shapes;
4. ``example_from_row``: one stored row -> the example's modality fields;
5. ``features``: the HuggingFace features of what ``example_from_row`` returns;
6. ``preview``: draw one row's panels into a matplotlib figure;
7. ``marker_columns`` (and ``priority``): which stored columns mark a folder of this
   modality when there is no manifest to say so;
8. optionally ``example_columns``: what ``features`` describes for a whole block of stored
   rows at once (the HuggingFace integration's fast path; without it, HF rows are built one
   ``example_from_row`` at a time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

MATCHED = "matched"  # a cross-match output: one namespace per side, each of its own modality

Shapes = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class ModalitySpec:
    """Everything the core needs to know about one modality.

    :param name: the modality's one name (manifests, ``SurveyInfo.modality``, ``mmu describe``).
    :param prefix: prefix of its stored columns (``image_``, ``spectrum_`` ...).
    :param description: one line for listings and docs.
    :param example_model: pydantic model of one logical example (common fields included).
    :param check_columns: ``(shapes) -> problems``: the stored columns' per-row shapes (column
        -> shape) checked; an empty list means fine.
    :param example_from_row: ``(row, **options) -> fields``: the modality's part of the logical
        example from one stored row (column -> value).
    :param features: ``(specs, options) -> features``: HuggingFace features of what
        ``example_from_row`` returns, from the stored columns' specs (``np_dtype``, ``shape``).
    :param preview: ``(fig, i, nrows, ncols, row, title)``: draw row ``i`` of a preview figure.
    :param check_row: optional per-row checks cheaper than building the example.
    :param marker_columns: a folder without a manifest is of this modality when it has one of
        these columns (or any column with the prefix when empty); specs with a higher
        ``priority`` are tried first (segmentation maps also carry ``image_`` columns).
    :param former_names: names this modality was known by (old manifests still open).
    :param known_columns: suffixes (after ``prefix``) of every column the modality defines;
        ``mmu info`` lists those a dataset lacks (absent is allowed, not corrupt).
    :param example_columns: optional ``(block, **options) -> fields``: the fields ``features``
        describes for a block of stored rows at once (``block``: column -> array with the rows
        first). Each field holds every row along its first axis, as
        :func:`mmu_core.schemas.features.arrow_array` takes it (numpy arrays of any shape with
        the feature's number of values per row, dicts, :class:`~mmu_core.schemas.features.Ragged`
        for variable-length lists); the values are ``example_from_row``'s, row by row, plus any
        field ``features`` adds for HF (image bands' ``shape``).
    """

    name: str
    prefix: str
    description: str
    example_model: type[BaseModel]
    check_columns: Callable[[Shapes], list[str]]
    example_from_row: Callable[..., dict[str, Any]]
    features: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    preview: Callable[..., None]
    check_row: Callable[[dict[str, Any]], list[str]] | None = None
    marker_columns: tuple[str, ...] = ()
    priority: int = 0
    former_names: tuple[str, ...] = field(default=())
    known_columns: tuple[str, ...] = ()  # suffixes of the columns the modality defines
    example_columns: Callable[..., dict[str, Any]] | None = None

    def marks(self, columns: set[str] | dict[str, Any]) -> bool:
        """Whether stored columns look like this modality's (for folders without a manifest)."""
        if self.marker_columns:
            return any(c in columns for c in self.marker_columns)
        return any(c.startswith(self.prefix) for c in columns)


_TABLE: dict[str, ModalitySpec] = {}
_FORMER: dict[str, str] = {}


def register_modality(spec: ModalitySpec) -> ModalitySpec:
    """Add a modality to the table (returns it); a name or prefix already taken is an error."""
    for other in _TABLE.values():
        if other.name == spec.name and other is not spec:
            raise ValueError(f"modality {spec.name!r} is already registered")
        if other.prefix == spec.prefix and other.name != spec.name:
            raise ValueError(f"column prefix {spec.prefix!r} of modality {spec.name!r} is "
                             f"already modality {other.name!r}'s")
    if spec.name == MATCHED or not spec.prefix.endswith("_"):
        raise ValueError(f"modality {spec.name!r}: the name {MATCHED!r} is reserved and the "
                         "prefix must end with '_'")
    _TABLE[spec.name] = spec
    for old in spec.former_names:
        _FORMER[old] = spec.name
    return spec


def unregister_modality(name: str) -> None:
    """Remove a modality (tests that register a toy modality clean up with this)."""
    spec = _TABLE.pop(name, None)
    for old in spec.former_names if spec else ():
        _FORMER.pop(old, None)


def canonical_name(name: str | None) -> str | None:
    """The current name of a modality given by any of its names; ``None`` and ``"matched"``
    pass through; an unknown name is returned unchanged (callers decide whether it is an
    error)."""
    if name is None or name in _TABLE or name == MATCHED:
        return name
    return _FORMER.get(name, name)


def get_modality(name: str) -> ModalitySpec:
    """The record of a modality (any of its names); ``ValueError`` listing the known ones."""
    spec = _TABLE.get(canonical_name(name) or "")
    if spec is None:
        raise ValueError(f"unknown modality {name!r} (known: {', '.join(_TABLE)})")
    return spec


def modalities() -> dict[str, ModalitySpec]:
    """name -> record of every registered modality."""
    return dict(_TABLE)


def modality_prefixes() -> tuple[str, ...]:
    """The column prefixes of every registered modality."""
    return tuple(s.prefix for s in _TABLE.values())


def guess_modality(columns: set[str] | dict[str, Any]) -> str | None:
    """The modality stored columns look like (highest priority first), or ``None``."""
    for spec in sorted(_TABLE.values(), key=lambda s: -s.priority):
        if spec.marks(columns):
            return spec.name
    return None
