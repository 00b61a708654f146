"""Helpers shared by the mmu-gz3d tests, imported by this unique name (a module named
conftest would clash with other packages' under --import-mode=importlib)."""

from __future__ import annotations

import numpy as np

from mmu_core.models import ConvertContext


def convert_all(registry, raw, **options):
    """All rows of a raw folder through the core's dispatch, and the contexts used."""
    units = registry.discover("gz3d", "dr17", raw, options)
    batches, contexts = [], []
    for unit in units:
        context = ConvertContext(raw_dir=raw, options=options)
        batches += list(registry.convert(unit, context))
        contexts.append(context)
    rows = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    return rows, contexts


def by_id(rows, mangaid):
    """The row index of ``mangaid``."""
    (i,) = np.flatnonzero(rows["object_id"] == mangaid)
    return i
