"""Write one benchmark's section into BENCHMARKS.md, replacing that section if present."""

from __future__ import annotations

import platform
import re
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nRun on demand (`make bench` or the command in each section); never part of `make test`.\n"


def best_time(fn, repeat: int = 3, warm: bool = True) -> float:
    """The shortest of ``repeat`` timed calls of ``fn`` (after one untimed call when ``warm``):
    the run least disturbed by other work on a shared machine."""
    import time

    if warm:
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


PREFAULT_BYTES = 4 * 1024**3


def settle() -> None:
    """Start a timed run as every other: no dirty pages (sync), and free memory the hypervisor
    has already backed. On this kind of machine (a Firecracker VM, guest memory backed lazily
    by the host), the first touch of a page costs ~2 s per GB: writing 1.15 GB into the page
    cache ran at 0.27 GB/s on never-touched pages and at 2.3-4.4 GB/s on pages touched before,
    and every reader allocates its batches, so runs of the same line differed by up to 2x.
    Touching PREFAULT_BYTES and freeing them leaves backed pages for the next run. In a
    process of its own: a peak in this one would show in its children's ``ru_maxrss`` (Linux
    carries a parent's peak RSS into a child across fork and exec)."""
    import os
    import subprocess
    import sys

    os.sync()
    subprocess.run([sys.executable, "-c", f"import numpy; numpy.ones({PREFAULT_BYTES}, 'u1')"],
                   check=True)


def machine() -> str:
    import os

    return (f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}")


def write_section(title: str, body: str) -> None:
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    BENCHMARKS.write_text(text)
