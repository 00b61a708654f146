"""Loading stored datasets through HuggingFace ``datasets`` (5.x), no dataset scripts.

::

    import mmu_core.hf
    ds = mmu_core.hf.load("out/hsc/pdr3_dud_22.5")              # datasets.Dataset
    ds[0]["image"][0]["array"]                                     # one band, H * W values
    it = mmu_core.hf.load("out/desi/dr1_main", streaming=True)    # datasets.IterableDataset
    xm = mmu_core.hf.load("xmatch-out")                            # a cross-match output
    xm[0]["hsc"]["image"], xm[0]["desi"]["spectrum"]["flux"]

Each row is the logical example of the dataset's modality (docs/examples.md) — what
``Dataset.row_to_example`` gives (``image`` as a list of bands with their metadata,
``spectrum`` as a dict of arrays, ``lightcurve``, IFU ``spaxels``/``images``, ``segmentation``)
with ``provenance``, ``object_id``, ``ra``, ``dec``, ``healpix`` and every catalog column under
its standard (aliased) name. One difference: an image band's planes (``array``, ``ivar``,
``mask``) are flattened row-major to H * W values, and the band carries its ``shape`` (H, W)
(``np.reshape(band["array"], band["shape"])``): datasets' numpy and torch formatters turn a 2-D
plane nested in a list of bands into one Python object per pixel row, 20-30x slower than reading
the files. The ``Features`` come from the stored schema, so a dataset is typed before its
first row is read. A matched dataset (``mmu crossmatch``) gives ``object_id`` (the match id),
``ra``/``dec``/``healpix`` of the left object, ``separation_arcsec`` and one logical example per
side under its namespace.

How: :class:`MMUBuilder` is a ``datasets.ArrowBasedBuilder`` (datasets' public base class of
its own ``parquet`` and ``hdf5`` builders) whose ``_generate_tables`` reads a block of rows of
one file at a time and builds its Arrow record batch straight from the stored column arrays
(the modality's ``example_columns`` and :func:`mmu_core.schemas.features.arrow_array`,
vectorised; no Python row dicts). Streaming is the builder's ``as_streaming_dataset``: an
``IterableDataset`` over those Arrow tables, so ``with_format("numpy"|"torch")`` formats whole
batches, and its shards are the files (``num_shards``; DataLoader workers and
``split_dataset_by_node`` split them; ``reshard()`` splits files into blocks of rows). The
prepared dataset is the builder's ``download_and_prepare`` + ``as_dataset`` over the same
tables.

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
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmu_core import schemas
from mmu_core.schemas import ALWAYS_PRESENT, MATCHED, get_modality, modality_prefixes
from mmu_core.schemas.features import arrow_array, column_feature, columns_from_rows
from mmu_core.storage.columns import ColumnSpec
from mmu_core.storage.examples import make_plan, plan_columns
from mmu_core.storage.reader import Dataset, open_dataset
from mmu_core.version import __version__

HF_LAYOUT_VERSION = "2"  # bump when the examples' structure changes (invalidates caches)
BATCH_BYTES = 64 * 1024 * 1024  # stored bytes per Arrow table (a block of rows of one file)
READ_AHEAD = True  # read the next block in a thread while the current one is used

logger = logging.getLogger(__name__)


# ---- public -----------------------------------------------------------------------------
def load(
    path: Path | str | Dataset,
    config_name: str | None = None,
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

    Without ``streaming``, this is a **copy**: every row is converted once into HF's Arrow
    files under ``cache_dir`` (about the size of the stored data; the size and place are
    logged at INFO on the ``mmu_core.hf`` logger), then memory-mapped. Later calls reuse the
    copy until the dataset changes. With ``streaming=True`` nothing is copied: the files are
    read block by block as the ``IterableDataset`` is iterated.

    Distributed training: the streamed dataset has one shard per file (``num_shards``).
    ``datasets.distributed.split_dataset_by_node(stream, rank, world_size)`` gives each node
    whole files when ``num_shards % world_size == 0``; otherwise every node reads *every*
    file and keeps one row in ``world_size`` (disjoint and balanced, but each node reads the
    whole dataset), and ``strategy="shards"`` hands out whole files unevenly (some nodes get
    one file more, so different row counts). ``mmu_core.loader.StreamDataset`` gives exact,
    disjoint shares of the rows for any world size, each node reading only its own.

    :param path: dataset folder (``ROOT/SURVEY/CONFIG``), a matched dataset, or a
        cross-match ``OUT`` folder holding exactly one dataset; with ``config_name``, a
        folder holding several (a build ``ROOT``), as ``load_dataset(data_dir, config_name)``.
    :param config_name: which dataset below ``path``: ``CONFIG`` (when one survey has it),
        ``SURVEY/CONFIG`` or ``SURVEY_CONFIG``.
    :param columns: catalog columns to keep (stored or standard names; ``"desi.z"`` for a side
        of a matched dataset) besides ``object_id``/``ra``/``dec``/``healpix`` and the modality
        fields, which are always there. ``None`` keeps every column.
    :param streaming: return a ``datasets.IterableDataset`` reading the files lazily (no
        copy, no cache) instead of a prepared ``datasets.Dataset``.
    :param cache_dir: where HF keeps the prepared Arrow files (default: HF's cache).
    :param num_proc: processes preparing the Arrow files (files are split between them).
    :param keep_in_memory: load the prepared Arrow files into memory instead of mapping them.
    :param example_options: passed to the modality's ``example_from_row`` /
        ``example_columns`` (e.g. ``{"with_spaxels": False}`` for IFU cubes).
    :param split: the split's name.
    :returns: ``datasets.Dataset`` or ``datasets.IterableDataset``.
    """
    import datasets

    if config_name is not None and not isinstance(config_name, str):  # load(path, columns)
        columns, config_name = config_name, None
    if config_name is not None and isinstance(path, str) and "://" in path:
        path = f"{path.rstrip('/')}/{config_name}"  # a published repository's config folder
    elif config_name is not None and not isinstance(path, Dataset):
        path = select_config(path, config_name)
    ds = path if isinstance(path, Dataset) else open_dataset(path)
    plan = make_plan(ds, columns, example_options)
    features = datasets.Features(plan_features(ds, plan))
    key = fingerprint(ds, plan)
    builder = _classes()["MMUBuilder"](
        cache_dir=None if cache_dir is None else str(cache_dir),
        dataset_name=_safe_name(f"mmu_{ds.survey}_{ds.config}"),
        config_id=f"mmu-{key}", features=features,
        path=getattr(ds, "url", None) or str(ds.path),  # a URL reopens as one in workers
        plan=json.dumps(plan, sort_keys=True), key=key, split=split)
    if streaming:
        return builder.as_streaming_dataset(split=split)
    builder.download_and_prepare(num_proc=num_proc)
    hfds = builder.as_dataset(split=split, in_memory=keep_in_memory)
    arrow = sorted(Path(builder.cache_dir).glob("*.arrow"))
    logger.info("%s: Arrow copy of %s rows, %.1f MB in %d file(s) under %s", ds.path,
                f"{hfds.num_rows:,}", sum(f.stat().st_size for f in arrow) / 1e6, len(arrow),
                builder.cache_dir)
    return hfds


SOURCE_MARK = "mmu dataset at "


def source_description(path: str) -> str:
    """The HF dataset's ``info.description``: names the stored dataset it reads, so that
    :func:`source_of` (and :func:`cross_match_datasets`) can find it again."""
    where = path if "://" in str(path) else Path(path).resolve()
    return f"Multimodal Universe (mmu): {SOURCE_MARK}{where}"


def source_of(hfds: Any) -> Path:
    """The stored dataset folder a ``datasets.Dataset``/``IterableDataset`` made by
    :func:`load` reads."""
    text = getattr(getattr(hfds, "info", None), "description", None) or ""
    if SOURCE_MARK not in text:
        raise ValueError(f"{type(hfds).__name__} was not made by mmu_core.hf.load: its info "
                         "does not name an mmu dataset; pass the dataset folder instead")
    where = text.split(SOURCE_MARK, 1)[1].strip()
    return where if "://" in where else Path(where)  # type: ignore[return-value]


def select_config(root: Path | str, config_name: str) -> Path:
    """The dataset folder below ``root`` that ``config_name`` names (``CONFIG``,
    ``SURVEY/CONFIG`` or ``SURVEY_CONFIG``)."""
    from mmu_core.storage.layout import find_datasets

    found = find_datasets(root)
    names = {f: (f.parent.name, f.name) for f in found}
    hits = [f for f, (survey, config) in names.items()
            if config_name in (config, f"{survey}/{config}", f"{survey}_{config}")]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(f"{s}/{c}" for s, c in names.values()) or "none"
    if not hits:
        raise FileNotFoundError(f"{root}: no dataset named {config_name!r} (found: {known})")
    raise ValueError(f"{root}: {config_name!r} names several datasets ({known}); "
                     "give SURVEY/CONFIG")


def cross_match_datasets(left: Any, right: Any, match_radius: Any = 1.0, how: str = "nearest",
                         *, out: Path | str | None = None, streaming: bool = False,
                         cache_dir: Path | str | None = None, workers: int = 1,
                         overwrite: bool = False) -> tuple[Any, Any]:
    """The design doc's one line::

        matched_catalog, matched_dset = cross_match_datasets(hsc, decals, match_radius=1.0)

    ``left``/``right``: what :func:`load` returns (the HF dataset names its source), an mmu
    :class:`~mmu_core.storage.reader.Dataset`, or a dataset folder. ``match_radius`` in arcsec
    (a number) or an astropy angle (``1 * u.arcsec``). Runs
    :func:`mmu_core.crossmatch.cross_match` (``how`` as there) and writes its output to
    ``out`` — by default a folder under the core's cache named by both inputs' fingerprints,
    the radius and ``how``, reused while they are unchanged. Returns ``(matched_catalog,
    matched_dataset)``: the pairs' catalog as a ``datasets.Dataset`` (``match_id``, both
    object ids, ``separation_arcsec``, both positions) and the matched dataset through
    :func:`load` (each row one example per side, under the surveys' names), whose
    ``save_to_disk``/``push_to_hub`` work as usual."""
    import datasets

    from mmu_core.angles import to_arcsec
    from mmu_core.crossmatch import CATALOG_NAME, cross_match

    sources = [_source_path(x) for x in (left, right)]
    radius = to_arcsec(match_radius, "match_radius")
    if out is None:
        out = _match_cache(sources, radius, how)
    out = Path(out)
    if overwrite or not (out / CATALOG_NAME).is_file():
        cross_match(sources[0], sources[1], out, radius_arcsec=radius, how=how,
                    workers=workers, overwrite=True)
    catalog = datasets.Dataset.from_parquet(str(out / CATALOG_NAME),
                                            cache_dir=None if cache_dir is None else str(cache_dir))
    return catalog, load(out, streaming=streaming, cache_dir=cache_dir)


def _source_path(value: Any) -> Path:
    if isinstance(value, Dataset):
        return Path(value.path)
    # os.PathLike, not Path: once a builder of this module streams, datasets replaces this
    # module's ``Path`` with its own subclass (its streaming patches), which a plain
    # pathlib.Path is not an instance of
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    return source_of(value)


def _match_cache(sources: list[Path], radius: float, how: str) -> Path:
    from mmu_core.storage.manifest import load_manifest
    from mmu_core.storage.positions_cache import cache_root

    h = hashlib.sha256()
    for src in sources:
        manifest = load_manifest(src)
        h.update(str(src.resolve()).encode())
        h.update((manifest.fingerprint() if manifest is not None else "").encode())
    h.update(f"{radius!r}/{how}".encode())
    return cache_root() / "matches" / h.hexdigest()[:24]


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


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).lower()


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


# ---- Arrow tables -----------------------------------------------------------------------
def _side_columns(modality: str | None, block: dict[str, np.ndarray], names: dict[str, str],
                  provenance: dict[str, Any], options: dict[str, Any], features: Any,
                  n: int) -> dict[str, Any]:
    """The columns of one side's examples for a block: vectorised through the modality's
    ``example_columns``, else (a modality without it) built row by row."""
    cols = schemas.example_columns(modality, block, names, provenance, **options)
    if cols is None:
        rows = [schemas.logical_example(modality, {k: v[i] for k, v in block.items()}, names,
                                        provenance, **options) for i in range(n)]
        cols = columns_from_rows(features, rows)
    return cols


def block_table(block: dict[str, np.ndarray], plan: dict[str, Any], features: Any) -> Any:
    """The Arrow table (of exactly ``features``' schema) of the examples of a block of stored
    rows (stored column -> array, rows first, every column of ``plan_columns(plan)``)."""
    import pyarrow as pa

    n = len(block["object_id"] if "object_id" in block else next(iter(block.values())))
    options = plan["options"]
    if plan["modality"] != MATCHED:
        cols = _side_columns(plan["modality"], block, plan["names"], plan["provenance"],
                             options, features, n)
    else:
        cols = {c: block[c] for c in plan["columns"]}
        cols["provenance"] = dict(plan["provenance"])
        for side in plan["sides"]:
            ns = side["namespace"]
            sub = {c[len(ns) + 1:]: block[c] for c in side["columns"]}
            cols[ns] = _side_columns(side["modality"], sub, side["names"], side["provenance"],
                                     options, features[ns], n)
    missing = [k for k in features if k not in cols]
    if missing:
        raise KeyError(f"example fields {missing} declared by the features were not built")
    arrays = [arrow_array(f, cols[k], n) for k, f in features.items()]
    return pa.Table.from_arrays(arrays, schema=features.arrow_schema)


_OPEN: dict[tuple[str, str], Dataset] = {}


def _dataset(path: str, key: str) -> Dataset:
    # One reader per process, path and content: the generator runs once per shard, and a
    # rebuilt dataset (new fingerprint) must not be read through the old reader's handles.
    ds = _OPEN.get((path, key))
    if ds is None:
        for old in [k for k in _OPEN if k[0] == path]:
            _OPEN.pop(old).close()
        ds = _OPEN[(path, key)] = open_dataset(path)
    return ds


def block_rows(ds: Dataset, columns: list[str]) -> int:
    """Rows per Arrow table: about BATCH_BYTES of stored data."""
    row_bytes = sum(ds.schema[c].row_bytes for c in columns)
    return max(1, BATCH_BYTES // max(row_bytes, 1))


def generate_tables(path: str, key: str, plan: dict[str, Any], features: Any,
                    files: list[int], rows: list[Any]) -> Iterator[tuple[int, int, Any]]:
    """``(shard, block, table)`` for each block of rows of the given files (row ranges
    ``rows[i]`` = ``(a, b)``, or ``None`` for the whole file), contiguous reads file by file;
    every read is checked against the stored checksums. The next block is read (and its table
    built) in a thread while the caller uses the current one, so reading the files overlaps
    formatting them (streaming) or writing the Arrow copy (preparing)."""
    ds = _dataset(path, key)
    columns = plan_columns(plan)
    step = block_rows(ds, columns)
    counts = ds.file_rows
    work = []
    for shard, (fi, span) in enumerate(zip(files, rows, strict=True)):
        a, b = (0, counts[int(fi)]) if span is None else (int(span[0]), int(span[1]))
        work += [(shard, k, int(fi), s, min(b, s + step)) for k, s in enumerate(range(a, b, step))]

    def table(item: tuple[int, int, int, int, int]) -> tuple[int, int, Any]:
        shard, k, fi, s, e = item
        block = {c: reader.column(fi, c).slice(s, e) for c in columns}
        return shard, k, block_table(block, plan, features)

    # its own reader: the thread is the only one touching its open files
    with open_dataset(path) as reader:
        yield from _read_ahead(table, work)


def _read_ahead(fn: Any, items: list[Any]) -> Iterator[Any]:
    """``fn(item)`` for each item in order, the next computed in a thread meanwhile."""
    if not READ_AHEAD:
        yield from map(fn, items)
        return
    if not items:
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="mmu-hf-read") as pool:
        pending = pool.submit(fn, items[0])
        for item in items[1:]:
            done = pending.result()
            pending = pool.submit(fn, item)
            yield done
        yield pending.result()


def _classes() -> dict[str, type]:
    """:class:`MMUConfig` and :class:`MMUBuilder`, defined on first use so that importing this
    module does not import ``datasets``; they are attributes of this module (pickled by
    reference into DataLoader workers and ``num_proc`` processes)."""
    if _CLASSES:
        return _CLASSES
    import datasets
    from datasets.builder import Key

    @dataclass
    class MMUConfig(datasets.BuilderConfig):
        """What :class:`MMUBuilder` reads: the dataset folder, the JSON plan, its cache key."""

        path: str = ""
        plan: str = "{}"
        key: str = ""
        split: str = "train"
        features: Any = None

    class MMUBuilder(datasets.ArrowBasedBuilder):
        """A stored dataset as a ``datasets`` builder of Arrow tables: one shard per file, one
        table per block of rows. Made by :func:`load`; datasets' own builder machinery
        prepares (``download_and_prepare``, ``as_dataset``) or streams
        (``as_streaming_dataset``) it.

        What it relies on in ``datasets`` (5.x), pinned by tests/test_hf.py: the public
        ``ArrowBasedBuilder``, ``BuilderConfig``, ``DatasetInfo``, ``SplitGenerator`` and the
        builder's documented override points ``_info``, ``_split_generators`` and
        ``_generate_tables`` (yielding ``datasets.builder.Key``, table), the way datasets' own
        ``parquet`` and ``hdf5`` builders are written; the list-valued gen_kwargs (``files``,
        ``rows``) are the shards. Semi-private: ``_generate_more_gen_kwargs``, which
        ``IterableDataset.reshard()`` looks up by name (as the parquet builder's).
        """

        BUILDER_CONFIG_CLASS = MMUConfig

        def _info(self) -> Any:
            return datasets.DatasetInfo(features=self.config.features,
                                        description=source_description(self.config.path))

        def _split_generators(self, dl_manager: Any) -> list[Any]:
            n_files = len(_dataset(self.config.path, self.config.key).files)
            return [datasets.SplitGenerator(name=self.config.split, gen_kwargs={
                "files": list(range(n_files)), "rows": [None] * n_files})]

        def _generate_tables(self, files: list[int], rows: list[Any]) -> Iterator[Any]:
            plan = json.loads(self.config.plan)
            for shard, k, table in generate_tables(self.config.path, self.config.key, plan,
                                                   self.info.features, files, rows):
                yield Key(shard, k), table

        def _generate_more_gen_kwargs(self, files: list[int], rows: list[Any]) -> Iterator[dict]:
            # semi-private hook (looked up by name by ArrowBasedBuilder for
            # IterableDataset.reshard()): one shard per block of rows instead of per file
            ds = _dataset(self.config.path, self.config.key)
            step = block_rows(ds, plan_columns(json.loads(self.config.plan)))
            counts = ds.file_rows
            for fi, span in zip(files, rows, strict=True):
                a, b = (0, counts[int(fi)]) if span is None else (int(span[0]), int(span[1]))
                spans = [[s, min(b, s + step)] for s in range(a, b, step)]
                yield {"files": [fi] * len(spans), "rows": spans}

    for cls in (MMUConfig, MMUBuilder):
        cls.__qualname__ = cls.__name__
        _CLASSES[cls.__name__] = cls
    return _CLASSES


_CLASSES: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    if name in ("MMUBuilder", "MMUConfig"):
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
