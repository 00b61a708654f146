"""The pluggy markers of the ``mmu`` project: ``hookspec`` for the specs here, ``hookimpl``
for plugins (re-exported as ``mmu_core.hookimpl``)."""

from __future__ import annotations

import pluggy

PROJECT = "mmu"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
