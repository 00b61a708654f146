"""How mmu starts local worker processes (for the build's pools, ``mmu_core.executors``, and
the positions-cache pool of ``mmu_core.storage.positions_cache``)."""

from __future__ import annotations

import multiprocessing
import signal
from multiprocessing import get_context
from multiprocessing.context import BaseContext

# What the fork server imports before it forks any worker (see process_context).
PRELOAD = ["mmu_core.worker_preload"]


def process_context() -> BaseContext:
    """How local worker processes start: forked from a *fork server* where the platform has one
    (Linux, macOS), else spawned. The fork server is one fresh, single-threaded process that
    imports the core's task modules and the plugins and loads the registry once
    (``mmu_core.worker_preload``); each worker is then a fork of it, ready at once. Spawned
    workers each spent 1.5-2 s importing numpy, h5py, astropy and the plugins before their
    first task (on 3-6 s sample builds, more than the work), and forking the driver itself is
    unsafe once it runs threads (progress displays, readers). Workers see the environment and
    installed plugins of the moment the server started (the first pool of the process, or
    :func:`start_worker_server`)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return get_context("spawn")


def start_worker_server() -> None:
    """Start the fork server now, in the background (it imports while the caller goes on), so
    the workers of a pool made later start at once. The CLI calls it first thing for a command
    run with ``--workers`` > 1. Does nothing where workers are spawned."""
    ctx = process_context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def ignore_interrupts() -> None:
    """Pool initializer: workers leave Ctrl-C to the driver, which stops them (one message,
    no traceback from each worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
