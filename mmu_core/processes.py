"""How mmu starts local worker processes (for the build's pools, ``mmu_core.executors``, and
the positions-cache pool of ``mmu_core.storage.positions_cache``)."""

from __future__ import annotations

import multiprocessing
import os
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
    unsafe once it runs threads (progress displays, readers). A forked worker would keep the
    server's environment (from when it started), so pools pass their creator's current one
    (:func:`pool_options`); the plugins installed are those of the moment the server started
    (the first pool of the process, or :func:`start_worker_server`)."""
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


def pool_options() -> dict:
    """Keywords for a ``ProcessPoolExecutor`` of mmu's workers: how they start
    (:func:`process_context`) and an initializer giving each the environment of this process
    now (``MMU_CACHE``, the plugin switches, ...) and leaving Ctrl-C to this process."""
    return {"mp_context": process_context(), "initializer": worker_init,
            "initargs": (dict(os.environ),)}


def worker_init(environ: dict[str, str]) -> None:
    """Pool initializer (:func:`pool_options`): the pool creator's environment, and Ctrl-C left
    to the driver, which stops the workers (one message, no traceback from each)."""
    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
