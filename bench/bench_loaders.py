"""The ways into a model, against the files they read: rows/s and MB/s, one run.

For each dataset given (built by ``mmu build``), the columns a model trains on (every
modality column, ``object_id``, ``ra``, ``dec``) are read, after one warm-up pass so that every
line reads from the page cache:

- **h5py loop**: 64-row slices of those columns, file by file (the floor for any Python reader);
- **iter_batches**: ``Dataset.iter_batches(64)``;
- **StreamDataset, 1 process**: ``StreamDataset(path, batch_size=64, shuffle=True)``;
- **StreamDataset, 2 processes**: two processes, one share each (``world_size=2``), together;
- **MapDataset, random**: ``MapDataset.get_batch`` over a random permutation of all rows, 64 at
  a time (what a ``DataLoader`` with ``shuffle=True`` asks of ``__getitems__``);
- the HuggingFace lines of ``bench/bench_hf.py`` (``hf.load`` streamed and prepared,
  datasets' numpy formatter alone over the same Arrow tables held in memory, and ``datasets``'
  own hdf5 builder), measured the same way; their ratios are to bench_hf's own h5py loop, which
  reads every column the HF rows hold (the catalog columns too).

The five loader lines run in rounds (each line once per round, best of the rounds), and before
each round 4 GiB of memory is touched and freed in another process (``settle``): on this VM
(Firecracker) a page never touched before costs ~2 s/GB and every reader allocates its
batches, so the same line run back to back varied by up to 2x between runs.

Usage::

    mmu sample desi --out /tmp/lb/raw/desi --n 2000 && mmu build desi --raw /tmp/lb/raw/desi --out /tmp/lb/data
    mmu sample hsc --out /tmp/lb/raw/hsc --n 1000 && mmu build hsc --raw /tmp/lb/raw/hsc --out /tmp/lb/data
    python bench/bench_loaders.py /tmp/lb/data/desi/dr1_main /tmp/lb/data/hsc/pdr3_dud_22.5
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, settle, write_section  # noqa: E402

import mmu_core  # noqa: E402
from mmu_core.loader import MapDataset, StreamDataset  # noqa: E402
from mmu_core.schemas import modality_prefixes  # noqa: E402

BATCH = 64


def training_columns(ds) -> list[str]:
    return [c for c in ds.columns
            if c in ("object_id", "ra", "dec") or c.startswith(modality_prefixes())]


def h5py_loop(path: Path, columns: list[str]) -> int:
    ds = mmu_core.open_dataset(path)
    n = 0
    for f in ds.files:
        with h5py.File(f, "r") as h:
            rows = h["object_id"].shape[0]
            for a in range(0, rows, BATCH):
                block = [h[c][a:a + BATCH] for c in columns]
                n += len(block[0])
    return n


def iter_batches(path: Path, columns: list[str]) -> int:
    return sum(len(b["object_id"]) for b in
               mmu_core.open_dataset(path).iter_batches(BATCH, columns=columns))


def stream(path: Path, columns: list[str], rank: int = 0, world_size: int = 1) -> int:
    s = StreamDataset(path, columns=columns, batch_size=BATCH, shuffle=True, seed=1, rank=rank,
                      world_size=world_size)
    return sum(len(b["object_id"]) for b in s)


def _stream_share(args: tuple) -> int:
    return stream(*args)


def stream_two_processes(path: Path, columns: list[str]) -> int:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_stream_share, [(path, columns, r, 2) for r in range(2)])  # start-up, warm
        t0 = time.perf_counter()
        n = sum(pool.map(_stream_share, [(path, columns, r, 2) for r in range(2)]))
        stream_two_processes.seconds = time.perf_counter() - t0
    return n


def map_random(path: Path, columns: list[str]) -> int:
    ds = MapDataset(path, columns=columns)
    order = np.random.default_rng(1).permutation(len(ds))
    return sum(len(ds.get_batch(order[a:a + BATCH])["object_id"])
               for a in range(0, len(order), BATCH))


def measure_rounds(fns: list, path: Path, columns: list[str],
                   repeat: int) -> list[tuple[int, float]]:
    """Rows and best seconds of each line, run in rounds (every line once a round, memory
    settled before each round) so that all lines see the machine in the same states."""
    for fn in fns:
        fn(path, columns)  # warm: page cache, imports, lazily built indices
    best: list[tuple[int, float] | None] = [None] * len(fns)
    for _ in range(repeat):
        settle()
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            n = fn(path, columns)
            dt = getattr(fn, "seconds", None) or (time.perf_counter() - t0)
            if best[i] is None or dt < best[i][1]:
                best[i] = (n, dt)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-hf", action="store_true", help="skip the HuggingFace lines")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds at most per HF line")
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    args = ap.parse_args()
    lines = ["| dataset | path | rows/s | MB/s | x h5py loop |", "|---|---|---:|---:|---:|"]
    for path in args.datasets:
        ds = mmu_core.open_dataset(path)
        columns = training_columns(ds)
        row_mb = sum(ds.schema[c].row_bytes for c in columns) / 1e6
        name = f"{ds.survey} ({len(ds):,} rows, {row_mb * 1e3:.0f} kB a row)"
        lines_fns = [("h5py loop, 64-row slices", h5py_loop),
                     ("`Dataset.iter_batches(64)`", iter_batches),
                     ("`StreamDataset(batch_size=64)`, 1 process", stream),
                     ("`StreamDataset`, 2 processes (one share each)", stream_two_processes),
                     ("`MapDataset.get_batch`, random permutation, 64 rows", map_random)]
        results = [(label, n / dt) for label, (n, dt) in
                   zip([lab for lab, _ in lines_fns],
                       measure_rounds([fn for _, fn in lines_fns], path, columns, args.repeat),
                       strict=True)]
        if not args.no_hf:
            import bench_hf

            with tempfile.TemporaryDirectory(prefix="bench_loaders_") as cache:
                hf_results = [(f"{label} (bench_hf)", n / dt) for label, n, dt, _ in
                              bench_hf.bench(path, args.budget, args.repeat, Path(cache))]
        floor = results[0][1]
        for label, rate in results:
            lines.append(f"| {name} | {label} | {rate:,.0f} | {rate * row_mb:,.0f} | "
                         f"{rate / floor:.2f} |")
            print(lines[-1], flush=True)
        if not args.no_hf:  # against bench_hf's own h5py loop: every column the HF rows use
            hf_floor = hf_results[0][1]
            for label, rate in hf_results:
                if label == "h5py loop (bench_hf)":
                    label = "h5py loop, 64-row slices of every column the HF rows use (bench_hf)"
                lines.append(f"| {name} | {label} | {rate:,.0f} | {rate * row_mb:,.0f} | "
                             f"{rate / hf_floor:.2f} |")
                print(lines[-1], flush=True)
    load = os.getloadavg()
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        command = "python bench/bench_loaders.py " + " ".join(shlex.quote(str(p))
                                                               for p in args.datasets)
        write_section("Loaders", f"{machine()}; load average before the run "
                      f"{load[0]:.1f}\n\nCommand: `{command}`\n\n"
                      f"{__doc__.split('Usage::')[0].strip()}\n\n{table}\n")


if __name__ == "__main__":
    main()
