"""The driver: :func:`cross_match` runs the plan, the match tasks, the one-to-one rule and
the writers (:mod:`mmu_core.crossmatch` describes the steps), and returns a
:class:`CrossMatchResult`."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmu_core.angles import AngleError, to_arcsec
from mmu_core.crossmatch.algorithms import MatchAlgorithm, default_algorithm
from mmu_core.crossmatch.errors import CrossMatchError
from mmu_core.crossmatch.match import match_blocks
from mmu_core.crossmatch.parts import BlockPart
from mmu_core.crossmatch.plan import DEFAULT_TASK_ROWS, plan_blocks, rows_per_pixel
from mmu_core.crossmatch.positions import open_inputs
from mmu_core.crossmatch.resolve import settle_across_blocks
from mmu_core.crossmatch.writers import (
    CATALOG_NAME,
    CatalogWriter,
    check_out,
    matched_dirname,
    write_matched_dataset,
)
from mmu_core.storage import layout
from mmu_core.storage.reader import Dataset, open_dataset

HOW = ("nearest", "all")


@dataclass
class CrossMatchResult:
    """What :func:`cross_match` returns: counts, timings, paths and the catalog."""

    how: str
    radius_arcsec: float
    out: Path | None = None
    dataset_path: Path | None = None  # the matched dataset (None without ``out``)
    pairs: int = 0
    tasks: int = 0
    left_pixels_read: list[int] = field(default_factory=list)
    right_pixels_read: list[int] = field(default_factory=list)
    candidates: int = 0  # nearest: left objects with a match before the one-to-one rule
    match_seconds: float = 0.0
    write_seconds: float = 0.0
    table: Any = field(default=None, repr=False)  # the catalog, when not written to OUT
    algorithm: str = ""  # the match algorithm, e.g. "ZonesNearest()"

    @property
    def catalog_path(self) -> Path | None:
        return None if self.out is None else self.out / CATALOG_NAME

    @property
    def catalog(self) -> Any:
        """The catalog as a ``pyarrow.Table`` (read from OUT/catalog.parquet when written)."""
        if self.table is not None:
            return self.table
        import pyarrow.parquet as pq

        return pq.read_table(self.catalog_path, memory_map=True)

    def dataset(self) -> Dataset:
        """The matched dataset, opened."""
        if self.dataset_path is None:
            raise CrossMatchError("no matched dataset was written (out=None or catalog_only)")
        return open_dataset(self.dataset_path)

    def __len__(self) -> int:
        return self.pairs

    def __repr__(self) -> str:
        return (f"<CrossMatchResult {self.pairs:,} pairs ({self.how}, {self.radius_arcsec}\"), "
                f"{self.tasks} tasks, dataset {self.dataset_path}>")


def _algorithm(how: str, radius_arcsec: float,
               algorithm: MatchAlgorithm | None) -> MatchAlgorithm:
    if algorithm is None:
        return default_algorithm(how, radius_arcsec)
    if not isinstance(algorithm, MatchAlgorithm):
        raise CrossMatchError(f"algorithm must be a MatchAlgorithm, got {algorithm!r}")
    if how == "all" and algorithm.one_per_left:
        raise CrossMatchError(f"how='all' needs every pair, but {algorithm!r} gives at most one "
                              "per left object")
    return algorithm


def cross_match(
    left: Dataset | Path | str,
    right: Dataset | Path | str,
    out: Path | str | None = None,
    radius_arcsec: float = 1.0,
    how: str = "nearest",
    workers: int = 1,
    *,
    scheduler: str | None = None,
    left_columns: Iterable[str] | None = None,
    right_columns: Iterable[str] | None = None,
    catalog_only: bool = False,
    overwrite: bool = False,
    max_task_rows: int = DEFAULT_TASK_ROWS,
    algorithm: MatchAlgorithm | None = None,
    radius: Any = None,
) -> CrossMatchResult:
    """Cross-match two stored datasets by sky position.

    ``how="all"``: every (left, right) pair closer than ``radius_arcsec`` (the pairs astropy's
    ``search_around_sky`` returns). ``how="nearest"``: one-to-one matches by this rule —

        Each left object proposes its nearest right object within the radius (the match
        astropy's ``match_to_catalog_sky`` gives, cut at the radius; on an exact distance tie,
        the smaller right object_id). When several left objects
        propose the same right object, only the closest of them keeps it (on an exact tie,
        the smallest left object_id); the others stay unmatched — they do not fall back to
        their second-nearest right object. So every left and every right object appears in
        at most one pair.

    "Within the radius" means a unit-vector chord ``<= 2 sin(radius / 2)``, in both modes.

    ``algorithm`` finds each block's pairs (a :class:`~mmu_core.crossmatch.MatchAlgorithm`);
    by default the zones matcher, or for ``nearest`` beyond ``ZONES_NEAREST_ARCSEC`` a
    KD-tree (:func:`~mmu_core.crossmatch.default_algorithm`). ``how="all"`` needs one that
    gives every pair.

    With ``out``, writes ``OUT/catalog.parquet`` (``match_id``, ``left_object_id``,
    ``right_object_id``, ``separation_arcsec``, ``ra``, ``dec`` and ``healpix`` of the left
    object, ``right_ra``, ``right_dec``) and, unless ``catalog_only``, the matched dataset
    ``OUT/<left>_x_<right>/matched`` (see :func:`write_matched_dataset`). Without ``out`` only
    the catalog is computed and returned. ``left_columns``/``right_columns`` limit the columns
    copied into the matched dataset (default: all). Blocks of pixels are matched on
    ``workers`` threads (or the dask ``scheduler``); the matched dataset is written by
    ``workers`` processes.
    """
    started = time.perf_counter()
    if how not in HOW:
        raise CrossMatchError(f"how must be one of {HOW}, got {how!r}")
    try:  # a number of arcsec, an astropy angle or a quantity string ("1arcsec")
        radius_arcsec = to_arcsec(radius_arcsec if radius is None else radius, "radius")
    except AngleError as exc:
        raise CrossMatchError(str(exc)) from None
    algorithm = _algorithm(how, radius_arcsec, algorithm)
    nearest = how == "nearest"  # the one-to-one rule, settled across blocks
    lds, rds, sidecars = open_inputs(left, right, workers)
    out = None if out is None else Path(out)
    if out is not None:
        check_out(out, out / matched_dirname(lds, rds), overwrite)

    blocks = plan_blocks(rows_per_pixel(lds), rows_per_pixel(rds), radius_arcsec,
                         max_task_rows, min_tasks=1 if workers <= 1 else 4 * workers)
    result = CrossMatchResult(
        how=how, radius_arcsec=float(radius_arcsec), out=out, tasks=len(blocks),
        left_pixels_read=sorted({p for b in blocks for p in b.left}),
        right_pixels_read=sorted({p for b in blocks for p in b.right}),
        algorithm=repr(algorithm),
    )
    # Without the rule, blocks run in healpix order and the catalog is written as they
    # finish, while later blocks are matched. With it, claims are settled across blocks
    # first, so blocks keep their pairs in part files (largest blocks first, to balance the
    # workers).
    stream = not nearest
    parts_dir = catalog_tmp = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        catalog_tmp = layout.tmp_name(out / CATALOG_NAME, str(os.getpid()))
        if not stream or not catalog_only:
            parts_dir = layout.tmp_name(out / "parts", str(os.getpid()))
            parts_dir.mkdir()
    try:
        catalog = CatalogWriter(how, result.radius_arcsec, lds, rds, catalog_tmp)
        parts: list[BlockPart | None] = [None] * len(blocks)
        written = 0
        try:
            for part in match_blocks(lds, rds, sidecars, blocks, radius_arcsec, algorithm,
                                     nearest, workers, scheduler, parts_dir,
                                     return_tables=stream or parts_dir is None,
                                     largest_first=not stream):
                parts[part.block] = part
                while stream and written < len(parts) and parts[written] is not None:
                    catalog.add(written, parts[written].take_table())
                    written += 1
            done = [p for p in parts if p is not None]
            result.candidates = sum(p.candidates for p in done)
            result.match_seconds = time.perf_counter() - started
            wrote_from = time.perf_counter()
            if not stream:
                settle_across_blocks(done, max_task_rows)
                for p in done:
                    catalog.add(p.block, p.read_table() if p.rows else None, p.drop)
        finally:
            catalog.close()
            result.pairs, result.table = catalog.n, catalog.table
        if out is not None and not catalog_only:
            result.dataset_path = write_matched_dataset(
                lds, rds, out, [(p.path, p.drop, catalog.first[p.block])
                                for p in done if p.rows],
                how=how, radius_arcsec=radius_arcsec, left_columns=left_columns,
                right_columns=right_columns, workers=workers, scheduler=scheduler,
                overwrite=overwrite,
            )
        if catalog_tmp is not None:  # last: a catalog.parquet means a finished result
            os.replace(catalog_tmp, out / CATALOG_NAME)
        result.write_seconds = time.perf_counter() - wrote_from
    finally:
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)
        if catalog_tmp is not None and catalog_tmp.exists():
            catalog_tmp.unlink()
    return result
