"""Reading over the network against downloading: a remote ``get`` of 100 random ids over
loopback HTTP, against fetching the whole dataset with ``mmu download``; bytes moved and
seconds, one run.

The dataset is served from this machine by the tests' range server (``tests/range_server.py``:
Python threads, byte ranges, a count of the body bytes it sends), so the seconds are the
client's and this server's work, not a network's: over a real link, add the round trips
(the requests column; row ranges and chunks go up to 16 at a time, HDF5 metadata one block
at a time) and divide the bytes by the bandwidth. Lines:

- **open**: ``open_dataset(url)`` with an empty cache: the manifest and ``_index/`` fetched;
- **get of 100 ids**: every column of 100 random rows (the files opened on the way: HDF5
  metadata in 16 kB blocks, rows as exact byte ranges), checked equal to the local read;
- **download**: ``download(url, out)``, every file in 8 MiB ranges, each checked against the
  manifest's sha256, then ``_index/`` and the manifest written.

Usage::

    python bench/bench_remote.py bench/data/desi-3000/out/desi/dr1_main
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from range_server import RangeServer  # noqa: E402
from report import machine, write_section  # noqa: E402

import mmu_core  # noqa: E402
from mmu_core.download import download  # noqa: E402


def bench(path: Path, n: int, seed: int) -> tuple[list[tuple[str, int, int, float]], int]:
    local = mmu_core.open_dataset(path)
    total = sum(f.bytes for f in local.manifest.files)
    ids = np.random.default_rng(seed).choice(np.asarray(local.index().ids), n, replace=False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_remote_") as tmp, \
            RangeServer(path.parent.parent) as server:
        os.environ["MMU_CACHE"] = str(Path(tmp) / "cache")
        url = f"{server.url}/{path.parent.name}/{path.name}"
        t0 = time.perf_counter()
        ds = mmu_core.open_dataset(url)
        rows.append(("open (manifest + `_index/`)", server.bytes_sent, len(server.requests),
                     time.perf_counter() - t0))

        server.reset_counts()
        t0 = time.perf_counter()
        got = ds.get(ids)
        rows.append((f"`get` of {n} random ids, every column", server.bytes_sent,
                     len(server.requests), time.perf_counter() - t0))
        want = local.get(ids)
        assert all(got[k].tobytes() == want[k].tobytes() for k in want), "remote != local"
        ds.close()

        server.reset_counts()
        t0 = time.perf_counter()
        download(url, Path(tmp) / "copy")
        rows.append(("whole-dataset download (`mmu download`)", server.bytes_sent,
                     len(server.requests), time.perf_counter() - t0))
    return rows, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    args = ap.parse_args()
    load = os.getloadavg()
    rows, total = bench(args.dataset, args.n, args.seed)
    local = mmu_core.open_dataset(args.dataset)
    name = (f"{local.survey}/{local.config}: {len(local):,} rows, {len(local.relpaths)} files, "
            f"{total / 1e6:,.0f} MB")
    get_bytes, get_s = rows[1][1], rows[1][3]
    dl_bytes, dl_s = rows[2][1], rows[2][3]
    lines = [f"Dataset: {name}.", "",
             "| what | bytes moved | MB | requests | seconds |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {label} | {b:,} | {b / 1e6:,.1f} | {r:,} | {s:.2f} |"
              for label, b, r, s in rows]
    lines += ["", f"The `get` moved {get_bytes / total:.1%} of the dataset's bytes "
              f"({dl_bytes / max(get_bytes, 1):,.0f}x fewer than the download) in "
              f"{get_s / dl_s:.1%} of its time ({dl_s / get_s:,.1f}x faster); "
              f"{get_bytes / args.n / 1e3:,.0f} kB a row asked, for rows of "
              f"{sum(s.row_bytes for s in local.schema.values()) / 1e3:,.0f} kB."]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        command = "python bench/bench_remote.py " + shlex.quote(str(args.dataset))
        write_section("Remote reading and downloading",
                      f"{machine()}; load average before the run {load[0]:.1f}\n\n"
                      f"Command: `{command}`\n\n{__doc__.split('Usage::')[0].strip()}\n\n"
                      f"{table}\n")


if __name__ == "__main__":
    main()
