"""Imported once by the fork server that starts mmu's local worker processes (executors):
the core's task modules and the plugins, with the registry loaded, so a worker forked from it
starts ready (a spawned worker spent 1.5-2 s importing them before its first task)."""

from __future__ import annotations

try:
    import mmu_core.build  # noqa: F401  (the task modules; their imports are the cost)
    import mmu_core.crossmatch  # noqa: F401
    from mmu_core.registry import get_registry

    get_registry()
except Exception:  # noqa: BLE001 - never fatal here: a worker loads (and reports) it itself
    pass
