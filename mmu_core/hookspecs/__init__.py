"""Hook specifications: the whole contract between the core and a survey plugin.

A plugin is a module (or object) whose functions are decorated with
:data:`mmu_core.hookimpl` and named after the specs below. It is found through the
``mmu`` entry-point group::

    [project.entry-points.mmu]
    desi = "mmu_desi.hooks"

Implementations may accept fewer arguments than a spec names (pluggy passes only the ones
they ask for), so specs can grow without breaking plugins.

Dispatch hooks (``firstresult``: discover, convert, aliases, sample) are called only on the
plugin that declared the survey in ``mmu_describe``, and only for its own surveys: an
implementation never needs to check the survey name it is given. ``mmu_aliases`` and
``mmu_sample`` are optional: a plugin without ``mmu_sample`` builds its surveys but cannot
write sample data (``Registry.can_sample`` says which surveys can).
"""

from __future__ import annotations

from mmu_core.hookspecs import alias, convert, describe, discover, sample
from mmu_core.hookspecs.markers import PROJECT, hookimpl, hookspec

SPEC_MODULES = (describe, discover, convert, alias, sample)
SPEC_NAMES = frozenset(
    name for module in SPEC_MODULES for name in vars(module) if name.startswith("mmu_")
)

__all__ = ["PROJECT", "SPEC_MODULES", "SPEC_NAMES", "hookimpl", "hookspec"]
