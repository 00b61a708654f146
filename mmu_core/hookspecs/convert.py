"""The *convert* hook: one unit of work -> batches of rows."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mmu_core.hookspecs.markers import hookspec
from mmu_core.models import ConvertContext, WorkUnit


@hookspec(firstresult=True)
def mmu_convert(unit: WorkUnit, context: ConvertContext) -> Iterable[dict[str, np.ndarray]] | None:
    """Convert one unit of work into batches of rows.

    Called once per unit of work, in a worker process (or on a Dask worker), by the sharder,
    only on the plugin that provides ``unit.survey`` and only for units of its own surveys.

    :param unit: a unit returned by ``mmu_discover`` (carries ``survey`` and ``config``).
    :param context: raw folder, build options, and ``warn``/``skip`` to report trouble.
    :returns: an iterable (a generator is best: memory stays bounded by one batch) of dicts
        mapping column name -> numpy array, all with the same first dimension. Every batch
        carries ``object_id`` (int64 or bytes), ``ra`` and ``dec`` (float64 degrees), the
        modality columns with the standard prefixes (``image_``, ``spectrum_``, ``ifu_``,
        ``lightcurve_``, ``segmentation_``; see :mod:`mmu_core.schemas`) and the native
        catalog columns under their native names. The core computes ``healpix``; plugins
        never do. Array shapes and column sets must not change between batches of one build.
        Raise :class:`mmu_core.errors.InputError` for bad input (naming file and object).
    """
