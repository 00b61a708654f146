"""Where units of work run: inline, a local process or thread pool, or a dask.distributed cluster.

Every task is a top-level function with picklable arguments that writes its own output files
under their final names atomically and returns a small summary; the driver only gathers
summaries. So the same plan runs anywhere and gives the same files.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any

from mmu_core.processes import pool_options


def placement(workers: int, scheduler: str | None) -> str:
    """Where :func:`run_tasks` runs a job's tasks: ``"cluster"`` (a dask scheduler given, or
    ``MMU_SCHEDULER``), ``"pool"`` (``workers`` > 1: local processes) or ``"inline"``."""
    if scheduler or os.environ.get("MMU_SCHEDULER"):
        return "cluster"
    return "pool" if workers > 1 else "inline"


class ProcessPool:
    """A local process pool kept across several :func:`run_tasks` calls of one job, so each
    worker process starts once per job, not once per phase (with spawned workers, two phases on
    two fresh pools cost a 1,000-stamp HSC build about 4 s of its 12 s). ``with
    ProcessPool(workers) as pool: run_tasks(..., pool=pool)``; with ``workers <= 1`` it holds
    nothing and tasks run inline. Workers start as ``mmu_core.processes`` says."""

    def __init__(self, workers: int):
        self.workers = workers
        self.executor: ProcessPoolExecutor | None = None

    def get(self) -> ProcessPoolExecutor:
        if self.executor is None:
            self.executor = ProcessPoolExecutor(max_workers=self.workers, **pool_options())
        return self.executor

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, kind: Any, *rest: Any) -> None:
        if self.executor is not None:
            if kind is not None:  # failing: do not wait for running tasks (see _run_processes)
                _terminate(self.executor)
            self.executor.shutdown(wait=kind is None)
            self.executor = None


def run_tasks(
    fn: Callable[..., Any],
    args_list: Sequence[tuple],
    workers: int = 1,
    scheduler: str | None = None,
    retries: int = 2,
    threads: bool = False,
    pool: ProcessPool | None = None,
) -> Iterator[Any]:
    """Run ``fn(*args)`` for each args tuple; yield results as they complete.

    ``scheduler`` (or ``MMU_SCHEDULER``) is a dask.distributed address such as
    ``tcp://127.0.0.1:8786``; then the cluster runs the tasks, and Dask retries a task whose
    worker died up to ``retries`` times. Otherwise ``workers`` > 1 uses a local process pool
    (``mmu_core.processes``; workers load plugins from their entry points) and 1 runs inline
    (:func:`placement` tells which).
    ``threads=True`` makes the local pool a thread pool: for tasks that spend their time in
    numpy calls that release the GIL (sorting, searching, arithmetic on big arrays), it saves
    starting processes and shares memory-mapped inputs; a cluster ignores it. ``pool`` (a
    :class:`ProcessPool`) reuses one job's worker processes across calls.
    """
    if not args_list:
        return
    where = placement(workers, scheduler)
    if where == "cluster":
        yield from _run_dask(fn, args_list, scheduler or os.environ["MMU_SCHEDULER"], retries)
    elif where == "inline" or len(args_list) == 1:
        for args in args_list:
            yield fn(*args)
    elif threads:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(fn, *args) for args in args_list]
            try:
                for fut in as_completed(futures):
                    yield fut.result()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    else:
        yield from _run_processes(fn, args_list, workers, pool)


def _run_processes(fn: Callable[..., Any], args_list: Sequence[tuple], workers: int,
                   shared: ProcessPool | None = None):
    pool = shared.get() if shared is not None else ProcessPoolExecutor(max_workers=workers,
                                                                        **pool_options())
    futures = [pool.submit(fn, *args) for args in args_list]
    try:
        for fut in as_completed(futures):
            yield fut.result()
    except BaseException:
        # Stop at once (an interrupt, a failed task): waiting for the running tasks could
        # take as long as a unit. Their temporary files are cleaned up by the rerun.
        _terminate(pool)
        pool.shutdown(wait=False)
        if shared is not None:
            shared.executor = None
        raise
    if shared is None:
        pool.shutdown(wait=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor has no public way to stop running workers before Python 3.14
    # (terminate_workers); its _processes map is the documented-by-use alternative. The
    # futures are not cancelled first: the pool then marks them broken itself (cancelling
    # them makes its manager thread fail on each, with a traceback).
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.terminate()


def _run_dask(fn: Callable[..., Any], args_list: Sequence[tuple], address: str, retries: int):
    from distributed import Client
    from distributed import as_completed as dask_completed

    run = uuid.uuid4().hex[:8]
    with Client(address, timeout=60) as client:
        futures = [
            client.submit(fn, *args, pure=False, retries=retries, key=f"mmu-{fn.__name__}-{run}-{i}")
            for i, args in enumerate(args_list)
        ]
        try:
            for fut in dask_completed(futures):
                yield fut.result()
        finally:
            client.cancel(futures)
