"""Loading stored datasets through HuggingFace ``datasets`` (5.x), no dataset scripts.

::

    import mmu_core.hf
    ds = mmu_core.hf.load("out/hsc/pdr3_dud_22.5")              # datasets.Dataset
    ds[0]["image"][0]["array"]                                     # one band, (H, W)
    it = mmu_core.hf.load("out/desi/dr1_main", streaming=True)    # datasets.IterableDataset
    xm = mmu_core.hf.load("xmatch-out")                            # a cross-match output
    xm[0]["hsc"]["image"], xm[0]["desi"]["spectrum"]["flux"]

Each row is the logical example of the dataset's modality (docs/examples.md) — exactly what
``Dataset.row_to_example`` gives (``image`` as a list of bands with their metadata,
``spectrum`` as a dict of arrays, ``lightcurve``, IFU ``spaxels``/``images``, ``segmentation``)
with ``provenance``, ``object_id``, ``ra``, ``dec``, ``healpix`` and every catalog column under
its standard (aliased) name. The ``Features`` come from the stored schema (``Array2D``/
``Array3D`` for image planes and cubes, fixed-length lists for spectra and light curves), so a
dataset is typed before its first row is read. A matched dataset (``mmu crossmatch``) gives
``object_id`` (the match id), ``ra``/``dec``/``healpix`` of the left object,
``separation_arcsec`` and one logical example per side under its namespace.

The result is an ordinary HF dataset: ``save_to_disk``, ``with_format("numpy")``,
``with_format("torch")`` (with torch installed), ``push_to_hub("user/name")`` (uploads the
prepared Arrow data; see the HF docs on large datasets first) all work as usual. Note that
HF's numpy and torch formatters cast every float column to float32 by default, ``ra``/``dec``
included (0.08 arcsec steps at ra ~ 360); plain row access keeps them float64.

Caching: the Arrow cache (``cache_dir``, default HF's) is keyed on the manifest's fingerprint
(file checksums and build time) plus the columns and options asked for, so a rebuilt
dataset is never served from a stale cache. The stored files themselves also load with
``datasets.load_dataset("hdf5", data_files=[...])`` (flat columns, no aliases or logical
structure).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core import schemas
from mmu_core.schemas import ALWAYS_PRESENT, MATCHED, get_modality, modality_prefixes
from mmu_core.schemas.common import decode
from mmu_core.schemas.features import column_feature
from mmu_core.storage.columns import ColumnSpec
from mmu_core.storage.examples import make_plan, plan_columns, plan_example
from mmu_core.storage.reader import Dataset, open_dataset
from mmu_core.version import __version__

HF_LAYOUT_VERSION = "1"  # bump when the examples' structure changes (invalidates caches)
BATCH_BYTES = 64 * 1024 * 1024  # rows read from a file at a time


# ---- public -----------------------------------------------------------------------------
def load(
    path: Path | str | Dataset,
    columns: Iterable[str] | None = None,
    streaming: bool = False,
    *,
    cache_dir: Path | str | None = None,
    num_proc: int | None = None,
    keep_in_memory: bool = False,
    example_options: dict[str, Any] | None = None,
    split: str = "train",
) -> Any:
    """A stored dataset (or a cross-match output folder) as a HuggingFace dataset.

    :param path: dataset folder (``ROOT/SURVEY/CONFIG``), a matched dataset, or a
        cross-match ``OUT`` folder holding exactly one dataset.
    :param columns: catalog columns to keep (stored or standard names; ``"desi.z"`` for a side
        of a matched dataset) besides ``object_id``/``ra``/``dec``/``healpix`` and the modality
        fields, which are always there. ``None`` keeps every column.
    :param streaming: return a ``datasets.IterableDataset`` reading the files lazily (no
        cache) instead of a prepared ``datasets.Dataset``.
    :param cache_dir: where HF keeps the prepared Arrow files (default: HF's cache).
    :param num_proc: processes preparing the Arrow files (files are split between them).
    :param example_options: passed to the modality's ``example_from_row`` (e.g.
        ``{"with_spaxels": False}`` for IFU cubes).
    :returns: ``datasets.Dataset`` or ``datasets.IterableDataset``.
    """
    import datasets

    ds = path if isinstance(path, Dataset) else open_dataset(path)
    plan = make_plan(ds, columns, example_options)
    features = datasets.Features(plan_features(ds, plan))
    key = fingerprint(ds, plan)
    gen_kwargs = {"path": str(ds.path), "files": list(range(len(ds.files))),
                  "plan": json.dumps(plan, sort_keys=True), "fingerprint": key}
    if streaming:
        return datasets.IterableDataset.from_generator(
            generate_examples, features=features, gen_kwargs=gen_kwargs, split=split)
    return datasets.Dataset.from_generator(
        generate_examples, features=features, gen_kwargs=gen_kwargs, split=split,
        cache_dir=None if cache_dir is None else str(cache_dir), num_proc=num_proc,
        keep_in_memory=keep_in_memory, fingerprint=key)


def fingerprint(ds: Dataset, plan: dict[str, Any]) -> str:
    """Cache key: the stored content (manifest fingerprint, or file sizes and mtimes without a
    manifest), what was asked for, and the versions that shape the examples."""
    h = hashlib.sha256()
    h.update(json.dumps(plan, sort_keys=True).encode())
    h.update(f"{HF_LAYOUT_VERSION}:{__version__}:{schemas.SCHEMA_VERSION}".encode())
    if ds.manifest is not None:
        h.update(ds.manifest.fingerprint().encode())
    else:
        for f in ds.files:
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


# ---- features ---------------------------------------------------------------------------
def example_features(modality: str | None, specs: dict[str, ColumnSpec], names: dict[str, str],
                     provenance: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Features of one logical example (what :func:`mmu_core.schemas.logical_example` returns)."""
    from datasets import Value

    out: dict[str, Any] = {}
    if modality:
        out.update({k: column_feature(specs[k]) for k in ALWAYS_PRESENT if k in specs})
        out.update(get_modality(modality).features(specs, options))
    out["provenance"] = {k: Value("string") for k in provenance}
    prefixes = modality_prefixes()
    for name, spec in specs.items():
        if name.startswith(prefixes) or name in out:
            continue
        out[names.get(name, name)] = column_feature(spec)
    return out


def plan_features(ds: Dataset, plan: dict[str, Any]) -> dict[str, Any]:
    specs = ds.schema
    if plan["modality"] != MATCHED:
        return example_features(plan["modality"], {c: specs[c] for c in plan["columns"]},
                                plan["names"], plan["provenance"], plan["options"])
    from datasets import Value

    out = {c: column_feature(specs[c]) for c in plan["columns"]}
    out["provenance"] = {k: Value("string") for k in plan["provenance"]}
    for side in plan["sides"]:
        prefix = side["namespace"] + "."
        side_specs = {c[len(prefix):]: specs[c] for c in side["columns"]}
        out[side["namespace"]] = example_features(side["modality"], side_specs, side["names"],
                                                  side["provenance"], plan["options"])
    return out


# ---- examples ---------------------------------------------------------------------------
def to_hf(value: Any) -> Any:
    """Plain values HF encodes: text decoded, numpy scalars unwrapped, numbers kept as arrays."""
    if isinstance(value, dict):
        return {k: to_hf(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_hf(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            return np.char.decode(value, "utf-8", "replace").tolist()
        if value.dtype.kind == "U":
            return value.tolist()
        return value
    if isinstance(value, (bytes, np.bytes_)):
        return decode(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


_OPEN: dict[tuple[str, str], Dataset] = {}


def _dataset(path: str, key: str) -> Dataset:
    # One reader per process, path and content: HF calls the generator once per file, and a
    # rebuilt dataset (new fingerprint) must not be read through the old reader's handles.
    ds = _OPEN.get((path, key))
    if ds is None:
        for old in [k for k in _OPEN if k[0] == path]:
            _OPEN.pop(old).close()
        ds = _OPEN[(path, key)] = open_dataset(path)
    return ds


def generate_examples(path: str, files: list[int], plan: str,
                      fingerprint: str = "") -> Iterator[dict[str, Any]]:
    """The generator HF runs: examples of the given files, file by file (contiguous reads)."""
    ds = _dataset(path, fingerprint)
    spec = json.loads(plan)
    columns = plan_columns(spec)
    row_bytes = sum(ds.schema[c].row_bytes for c in columns)
    step = max(1, BATCH_BYTES // max(row_bytes, 1))
    for fi in files:
        h = ds.open_file(int(fi))
        n = h["object_id"].shape[0]
        for a in range(0, n, step):
            block = {c: h[c][a : a + step] for c in columns}
            for i in range(len(block["object_id"])):
                yield to_hf(plan_example({c: v[i] for c, v in block.items()}, spec))
