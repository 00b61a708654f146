"""Concatenating stored datasets of one modality (several surveys or configs) into one.

Columns are matched by their standard (aliased) names, so ``Z`` of one survey and ``z`` of
another land in one column ``z``. The output is an ordinary stored dataset in the same HEALPix
layout (``healpix=N/i-of-n.hdf5`` + manifest + id index), written pixel by pixel: rows never
change pixel, so each task reads one group of pixels from every input and writes those pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from mmu_core.errors import MMUError
from mmu_core.executors import run_tasks
from mmu_core.schemas import SCHEMA_VERSION, modality_prefixes
from mmu_core.storage import layout
from mmu_core.storage.columns import ColumnSpec
from mmu_core.storage.derived import finalize_dataset, prepare_output
from mmu_core.storage.reader import Dataset, as_dataset, open_dataset
from mmu_core.storage.writer import write_rows
from mmu_core.version import __version__

BATCH_BYTES = 128 * 1024 * 1024  # rows read and written per batch, to bound memory
TASK_ROWS = 2_000_000  # rows per concatenation task (a group of whole pixels)
ID_SHIFT = 48  # new object_id = (input index << 48) + row number inside that input


class ConcatError(MMUError):
    """The datasets cannot be concatenated (different modalities, incompatible columns...)."""


# ---- concatenation ------------------------------------------------------------------------
def concatenate(
    datasets: Sequence[Dataset | Path | str],
    out: Path | str,
    columns: Iterable[str] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    new_ids: bool | None = None,
    survey: str | None = None,
    config: str | None = None,
    overwrite: bool = False,
) -> Dataset:
    """Concatenate datasets of one modality into the stored dataset folder ``out``.

    Columns are matched through their standard (aliased) names and stored under them (the
    output needs no aliases). ``columns`` (standard or stored names) picks the catalog columns to
    keep; by default every column all inputs share is kept. ``object_id``, ``ra``, ``dec`` and
    the modality's columns (``image_*``, ``spectrum_*`` ...) are always kept; a modality column
    whose per-row shape differs between inputs is an error (resample first), any other column
    the inputs do not share, or share with different shapes, is dropped and listed in the
    manifest (``extra.dropped_columns``). Numbers of different dtypes are promoted; strings are
    widened.

    Every row gets ``source`` (``"survey/config"`` of its input). ``object_id`` stays the input's
    id when all inputs' ids are of one kind (integers or strings) and unique across the inputs;
    otherwise (or with ``new_ids=True``) it becomes ``(input index << 48) + row number`` inside
    that input (int64, deterministic) and the original id is kept in ``source_object_id``.

    A dataset given twice (the same folder, a copy of it, or two inputs with the same
    ``survey/config`` label) is refused, naming it, rather than doubling its rows.

    Returns the opened output dataset. Pixels are written in parallel with ``workers``
    processes (or on the dask ``scheduler``).
    """
    inputs = [as_dataset(d) for d in datasets]
    if len(inputs) < 2:
        raise ConcatError("concatenate needs at least two datasets")
    _refuse_repeats(inputs)
    modalities = {d.modality for d in inputs}
    if len(modalities) != 1:
        listed = ", ".join(f"{d.survey}/{d.config}: {d.modality}" for d in inputs)
        raise ConcatError(f"datasets of different modalities cannot be concatenated ({listed})")
    modality = modalities.pop()
    out = Path(out)

    renames = [_standard_renames(d) for d in inputs]  # per input: output name -> stored name
    schema, dropped = _common_schema(inputs, renames, columns)
    id_kinds = {d.schema["object_id"].np_dtype.kind for d in inputs}
    if new_ids:
        keep_ids = False
    else:
        keep_ids = len(id_kinds) == 1 and _ids_disjoint(inputs)
        if new_ids is False and not keep_ids:
            raise ConcatError("the inputs' object_ids collide or mix integers and strings; "
                              "use new_ids=True (or leave it None)")
    if keep_ids:
        schema["object_id"] = _merge_specs([d.schema["object_id"] for d in inputs], "object_id")
    else:
        schema["source_object_id"] = _id_spec([d.schema["object_id"] for d in inputs])
        schema["object_id"] = ColumnSpec("<i8", ())
    sources = [f"{d.survey}/{d.config}" for d in inputs]
    schema["source"] = ColumnSpec(f"|S{max(len(s.encode()) for s in sources)}", ())

    prepare_output(out, overwrite)
    survey = survey or "+".join(dict.fromkeys(d.survey for d in inputs))
    config = config or "+".join(dict.fromkeys(d.config for d in inputs))
    attrs = {"survey": survey, "config": config, "modality": modality or "",
             "core_version": __version__, "schema_version": SCHEMA_VERSION,
             "nside": layout.NSIDE, "ordering": layout.ORDERING}
    schema_json = {k: v.to_json() for k, v in schema.items()}
    groups = _pixel_groups(inputs)
    args = [
        (str(out), f"part-{i:05d}", [str(d.path) for d in inputs], pixels, renames,
         schema_json, sources, keep_ids, attrs)
        for i, pixels in enumerate(groups)
    ]
    for _ in run_tasks(_concat_task, args, workers=workers, scheduler=scheduler):
        pass
    finalize_dataset(
        out, survey=survey, config=config, modality=modality, columns=schema,
        provenance={"concatenated": [d.side_info() for d in inputs]},
        build_options={"columns": None if columns is None else list(columns),
                       "new_ids": not keep_ids},
        extra={"dropped_columns": dropped, "sources": sources,
               "id_rule": "kept" if keep_ids else "(input index << 48) + row number"},
    )
    return open_dataset(out)


def _refuse_repeats(inputs: list[Dataset]) -> None:
    """A dataset given twice would have its rows written twice (under new ids, since its ids
    collide with themselves): refuse it when two inputs are the same folder (paths resolved:
    symbolic links and relative paths alike) or URL, copies of one dataset (the same manifest
    fingerprint: same creation time and file checksums), or carry the same ``source`` label
    (``survey/config``), which would leave their rows' ``source`` indistinguishable."""
    def where(d: Dataset) -> str:
        return getattr(d, "url", None) or str(Path(d.path).resolve())

    seen: dict[tuple[str, str], int] = {}
    for j, d in enumerate(inputs):
        keys = [("folder", where(d))]
        fingerprint = d.manifest.fingerprint() if d.manifest is not None else None
        if fingerprint is not None:
            keys.append(("fingerprint", fingerprint))
        keys.append(("source", f"{d.survey}/{d.config}"))
        for key in keys:
            i = seen.get(key)
            if i is None:
                continue
            a, b = where(inputs[i]), where(d)
            label = f"{d.survey}/{d.config}"
            if key[0] == "folder":
                why = f"dataset {label} is given twice (inputs {i + 1} and {j + 1} are both {a})"
            elif key[0] == "fingerprint":
                why = (f"dataset {label} is given twice: inputs {i + 1} ({a}) and {j + 1} ({b}) "
                       f"are copies of it (manifest fingerprint {key[1]})")
            else:
                raise ConcatError(
                    f"inputs {i + 1} ({a}) and {j + 1} ({b}) are both {label}: a dataset given "
                    "twice (or two builds of it), whose rows' source label could not tell them "
                    "apart; give each dataset once (or build one under another config name)")
            raise ConcatError(f"{why}; concatenating a dataset with itself would double its "
                              "rows: give each dataset once")
        for key in keys:
            seen[key] = j


def _standard_renames(ds: Dataset) -> dict[str, str]:
    """output (standard) name -> stored name, for every stored column but healpix."""
    standard = ds.standard_names()
    out: dict[str, str] = {}
    for stored in ds.columns:
        if stored == "healpix":
            continue
        out.setdefault(standard.get(stored, stored), stored)
    return out


def _common_schema(
    inputs: list[Dataset], renames: list[dict[str, str]], columns: Iterable[str] | None
) -> tuple[dict[str, ColumnSpec], dict[str, str]]:
    names = set(renames[0])
    for r in renames[1:]:
        names &= set(r)
    wanted: set[str] | None = None
    if columns is not None:
        wanted = set()
        for name in [columns] if isinstance(columns, str) else columns:
            hits = {out for out in names if out == name or any(r.get(out) == name for r in renames)}
            if not hits:
                lacking = [f"{d.survey}/{d.config}" for d, r in zip(inputs, renames, strict=True)
                           if name not in r and name not in r.values()]
                raise ConcatError(f"column {name!r} is not in every input (missing from "
                                  f"{', '.join(lacking) or 'some input under a common name'})")
            wanted |= hits
    schema: dict[str, ColumnSpec] = {}
    dropped: dict[str, str] = {}
    every = set().union(*renames)
    for name in sorted(every):
        if name == "object_id":
            continue
        required = name in ("ra", "dec") or name.startswith(modality_prefixes())
        if name not in names:
            if required:
                raise ConcatError(f"column {name!r} is missing from some inputs")
            dropped[name] = "not in every input"
            continue
        if wanted is not None and not required and name not in wanted:
            continue
        specs = [d.schema[r[name]] for d, r in zip(inputs, renames, strict=True)]
        if len({s.shape for s in specs}) > 1:
            shapes = ", ".join(f"{d.survey}/{d.config}: {s.shape}"
                               for d, s in zip(inputs, specs, strict=True))
            if required:
                raise ConcatError(f"column {name!r} has different per-row shapes ({shapes}); "
                                  "resample to one shape before concatenating")
            dropped[name] = f"different per-row shapes ({shapes})"
            continue
        try:
            schema[name] = _merge_specs(specs, name)
        except ConcatError as exc:
            if required:
                raise
            dropped[name] = str(exc)
    return schema, dropped


def _merge_specs(specs: list[ColumnSpec], name: str) -> ColumnSpec:
    dtypes = [s.np_dtype for s in specs]
    kinds = {d.kind for d in dtypes}
    if kinds == {"S"}:
        return ColumnSpec(f"|S{max(d.itemsize for d in dtypes)}", specs[0].shape)
    if "S" in kinds or "U" in kinds:
        raise ConcatError(f"column {name!r} is text in some inputs and numbers in others")
    merged = dtypes[0]
    for d in dtypes[1:]:
        merged = np.promote_types(merged, d)
    return ColumnSpec(merged.newbyteorder("<").str if merged.itemsize > 1 else merged.str,
                      specs[0].shape)


def _id_spec(specs: list[ColumnSpec]) -> ColumnSpec:
    """Original ids of mixed kinds are all kept as strings."""
    kinds = {s.np_dtype.kind for s in specs}
    if len(kinds) == 1:
        return _merge_specs(specs, "source_object_id")
    width = max(s.np_dtype.itemsize if s.np_dtype.kind == "S" else 20 for s in specs)
    return ColumnSpec(f"|S{width}", ())


def _ids_disjoint(inputs: list[Dataset]) -> bool:
    """True when no object_id occurs in two inputs (sorted index ids, pairwise)."""
    ids = [np.asarray(d.index().ids) for d in inputs]
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            if ids[i].dtype.kind != ids[j].dtype.kind:
                continue
            small, big = sorted((ids[i], ids[j]), key=len)
            pos = np.clip(np.searchsorted(big, small), 0, max(len(big) - 1, 0))
            if len(big) and np.any(big[pos] == small):
                return False
    return True


def _pixel_groups(inputs: list[Dataset]) -> list[list[int]]:
    """Whole pixels in NESTED order, grouped up to about TASK_ROWS rows per task."""
    rows: dict[int, int] = {}
    for d in inputs:
        for pixel, n in zip(d.file_pixels, d.file_rows, strict=True):
            rows[pixel] = rows.get(pixel, 0) + n
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for pixel in sorted(rows):
        if current and total + rows[pixel] > TASK_ROWS:
            groups.append(current)
            current, total = [], 0
        current.append(pixel)
        total += rows[pixel]
    if current:
        groups.append(current)
    return groups


def _concat_task(
    out: str, key: str, paths: list[str], pixels: list[int], renames: list[dict[str, str]],
    schema_json: dict, sources: list[str], keep_ids: bool, attrs: dict,
) -> int:
    """Task: write the given pixels of the output from every input; returns rows written."""
    schema = {k: ColumnSpec.from_json(v) for k, v in schema_json.items()}
    inputs = [open_dataset(p) for p in paths]
    wanted = set(pixels)
    written = 0

    def batches() -> Iterator[dict[str, np.ndarray]]:
        nonlocal written
        for i, (ds, rename) in enumerate(zip(inputs, renames, strict=True)):
            offsets = np.concatenate([[0], np.cumsum(ds.file_rows)])
            stored = {name: rename[name] for name in schema if name in rename}
            row_bytes = sum(ds.schema[s].row_bytes for s in stored.values())
            step = max(1, BATCH_BYTES // max(row_bytes, 1))
            for fi in (f for f, p in enumerate(ds.file_pixels) if p in wanted):
                h = ds.open_file(fi)
                n = h["object_id"].shape[0]
                for a in range(0, n, step):
                    b = min(n, a + step)
                    batch = {name: h[s][a:b].astype(schema[name].np_dtype, copy=False)
                             for name, s in stored.items() if name != "object_id"}
                    ids = h["object_id"][a:b]
                    if keep_ids:
                        batch["object_id"] = ids.astype(schema["object_id"].np_dtype, copy=False)
                    else:
                        batch["source_object_id"] = _as_id(ids, schema["source_object_id"])
                        batch["object_id"] = (np.int64(i) << ID_SHIFT) + offsets[fi] + np.arange(a, b)
                    batch["source"] = np.full(b - a, sources[i].encode(), dtype=schema["source"].np_dtype)
                    written += b - a
                    yield batch
            ds.close()

    write_rows(Path(out), batches(), attrs, key=key)
    return written


def _as_id(ids: np.ndarray, spec: ColumnSpec) -> np.ndarray:
    if spec.np_dtype.kind == "S" and ids.dtype.kind != "S":
        return ids.astype(str).astype(spec.np_dtype)
    return ids.astype(spec.np_dtype, copy=False)
