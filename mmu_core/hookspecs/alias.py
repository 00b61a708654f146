"""The *alias* hook: native column names -> standard names."""

from __future__ import annotations

from mmu_core.hookspecs.markers import hookspec


@hookspec(firstresult=True)
def mmu_aliases(survey: str, config: str) -> dict[str, str] | None:
    """Map native column names to standard names for one survey/config.

    Called by ``mmu build`` (the result is stored in the manifest, so reading never needs the
    plugin installed) and by ``mmu describe``, only on the plugin that provides ``survey``
    and only for its own surveys. Optional: without it a survey has no aliases.

    :returns: ``{native_name: standard_name}``, e.g. ``{"Z": "z", "ZERR": "z_err"}``. Every
        native name must be a column the converter writes.
    """
