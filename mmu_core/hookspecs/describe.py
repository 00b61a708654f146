"""The *describe* hook: which surveys a plugin provides."""

from __future__ import annotations

from mmu_core.hookspecs.markers import hookspec
from mmu_core.models import SurveyInfo


@hookspec
def mmu_describe() -> list[SurveyInfo]:
    """Describe the surveys this plugin provides.

    Called once per plugin when the registry loads it (``mmu list-surveys``, ``mmu describe``,
    and before any build). Every plugin's result is collected; none wins over another.

    :returns: a list of :class:`mmu_core.models.SurveyInfo` (or dicts of the same fields):
        name (a slug), modality, description, configs, default config, citation, license,
        homepage, version, the native columns written, and survey-specific options of
        ``mmu build`` / ``mmu sample``. A survey name claimed by two distributions is an
        error that names both; a malformed record marks the plugin as failed.
    """
