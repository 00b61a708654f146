"""The *discover* hook: raw files -> units of work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmu_core.hookspecs.markers import hookspec
from mmu_core.models import WorkUnit


@hookspec(firstresult=True)
def mmu_discover(
    survey: str, config: str, raw_dir: Path, options: dict[str, Any]
) -> list[WorkUnit] | None:
    """Find the units of work for one survey/config in a raw-data folder.

    Called by ``mmu build`` before any conversion, only on the plugin that provides
    ``survey`` and only for its own surveys.

    :param survey: survey name as declared by ``mmu_describe``.
    :param config: one of the survey's config names.
    :param raw_dir: the folder given as ``--raw``.
    :param options: survey-specific build options (see ``SurveyInfo.build_options``).
    :returns: the list of :class:`mmu_core.models.WorkUnit`, each with a stable unique
        ``key``. An object's rows must never be split between two units. Raise
        :class:`mmu_core.errors.InputError` when the folder cannot hold this survey's data.
    """
