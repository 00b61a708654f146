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
