"""What checking every stored byte costs: the checksums' share of writing and reading.

Two data shapes users have: 5x160x160 float32 stamps (512 kB a row) and DESI-like spectra
(flux + ivar, 2 x 7,781 float32, 62 kB a row), about 0.5 GB each, and the compressed kind:
a bool mask column (5x160x160, gzip + shuffle in one-row chunks). For each:

- **write**: the column written contiguous with h5py, against the XXH3 block digests mmu adds
  (computed from the same arrays in memory); gzip chunks with and without HDF5's Fletcher32;
- **read**: 1,000 random rows (500 for spectra) through the memory map, against the same read
  plus the digest check (what ``Dataset.get`` does); gzip chunks read with and without
  Fletcher32 (HDF5 checks it on read).

Usage::

    python bench/bench_integrity.py --data bench/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from report import best_time, machine, write_section  # noqa: E402

from mmu_core.storage.integrity import block_rows, digests, verify_rows  # noqa: E402


def best(fn, repeat: int = 3) -> float:
    return best_time(fn, repeat, warm=False)


def contiguous(path: Path, data: np.ndarray, picks: np.ndarray) -> list[str]:
    per_block = block_rows(data[0].nbytes)

    def write():
        with h5py.File(path, "w") as h:
            h.create_dataset("x", data=data)

    t_write = best(write)
    t_sums = best(lambda: digests(data, per_block))
    sums = digests(data, per_block)
    with h5py.File(path, "r") as h:
        offset = h["x"].id.get_offset()
    mm = np.memmap(path, dtype=data.dtype, mode="r", offset=offset, shape=data.shape)
    mm = mm.view(np.ndarray)
    mm[picks]  # warm the page cache
    t_read = best(lambda: mm[picks])
    rows = np.sort(picks)

    def checked():
        out = mm[rows]
        assert verify_rows(out, rows // per_block, sums) is None or per_block > 1

    t_checked = best(checked)
    mb = data.nbytes / 1e6
    return [f"| write {mb:,.0f} MB contiguous | {t_write:.2f} s | + digests {t_sums:.2f} s | "
            f"{t_sums / t_write:.0%} |",
            f"| read {len(picks):,} random rows | {t_read * 1e3:.1f} ms | checked "
            f"{t_checked * 1e3:.1f} ms | {t_checked / t_read - 1:+.0%} |"]


def chunked(path: Path, data: np.ndarray, picks: np.ndarray) -> list[str]:
    out = []
    times = {}
    for fletcher in (False, True):
        def write(fletcher=fletcher):
            with h5py.File(path, "w") as h:
                h.create_dataset("x", data=data, chunks=(1, *data.shape[1:]), compression="gzip",
                                 compression_opts=1, shuffle=True, fletcher32=fletcher)

        times[("write", fletcher)] = best(write)
        with h5py.File(path, "r") as h:
            d = h["x"]
            rows = np.sort(picks)
            times[("read", fletcher)] = best(lambda d=d, rows=rows: [d[int(r)] for r in rows])
    mb = data.nbytes / 1e6
    out.append(f"| write {mb:,.0f} MB gzip chunks | {times[('write', False)]:.2f} s | with "
               f"Fletcher32 {times[('write', True)]:.2f} s | "
               f"{times[('write', True)] / times[('write', False)] - 1:+.0%} |")
    out.append(f"| read {len(picks):,} random rows (gzip) | {times[('read', False)] * 1e3:.0f} ms"
               f" | with Fletcher32 {times[('read', True)] * 1e3:.0f} ms | "
               f"{times[('read', True)] / times[('read', False)] - 1:+.0%} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("bench/data"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = ["| data | without checks | with checks | cost |", "|---|---:|---:|---:|"]
    stamps = rng.normal(0, 1, (1000, 5, 160, 160)).astype(np.float32)
    lines += [f"| **stamps** {r[2:]}" for r in
              contiguous(args.data / "int_stamps.h5", stamps, rng.choice(1000, 1000))]
    del stamps
    spectra = rng.normal(0, 1, (4000, 2, 7781)).astype(np.float32)
    lines += [f"| **spectra** {r[2:]}" for r in
              contiguous(args.data / "int_spectra.h5", spectra, rng.choice(4000, 500))]
    del spectra
    mask = rng.random((1000, 5, 160, 160)) > 0.999
    lines += [f"| **mask** {r[2:]}" for r in
              chunked(args.data / "int_mask.h5", mask, rng.choice(1000, 300))]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        write_section("Integrity: the cost of checksums",
                      f"{machine()}\n\nCommand: `python bench/bench_integrity.py`\n\n"
                      f"{__doc__.split('Usage::')[0].strip()}\n\n{table}\n")


if __name__ == "__main__":
    main()
