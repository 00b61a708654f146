"""Random access to spectra: ``get`` of 500 random ids from DESI builds of growing size.

DESI samples (``mmu sample desi``) of 1,500 to 12,000 spectra are built with ``mmu build``;
the same 500 random ids are then fetched, ``spectrum_flux`` + ``spectrum_ivar`` (31 kB a row,
31 MB in all), by:

- **mmu**: ``open_dataset(path).get(ids, columns=[...])`` — id index, memory-mapped contiguous
  columns, every block checked against its XXH3 digest;
- **floor**: a contiguous h5py fancy index of as many sorted rows of the same two columns,
  from one plain h5py file holding the dataset's rows (no index, no checks): the bytes alone;
- **Parquet**: the same rows in one Parquet file (pyarrow, fixed-size list columns, 256-row
  row groups) read with an ``object_id in ids`` filter (the HuggingFace default storage);
- **hashing**: XXH3 of the rows read (the verification's share of mmu's time).

Usage::

    python bench/bench_get_spectra.py --sizes 1500,3000,6000,12000 --data bench/data
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from report import best_time, machine, write_section  # noqa: E402

import mmu_core  # noqa: E402
from mmu_core.storage.integrity import block_rows, digests  # noqa: E402

COLUMNS = ["spectrum_flux", "spectrum_ivar"]
N_IDS = 500


def build(data: Path, n: int) -> Path:
    """The DESI dataset of ``n`` sampled spectra (made once, kept under ``data``)."""
    root = data / f"desi-{n}"
    path = root / "out" / "desi" / "dr1_main"
    if not (path / "manifest.json").exists():
        mmu = [sys.executable, "-m", "mmu_core.cli"]
        subprocess.run([*mmu, "sample", "desi", "--out", str(root / "raw"), "--n", str(n),
                        "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*mmu, "build", "desi", "--raw", str(root / "raw"), "--out",
                        str(root / "out"), "--config", "dr1_main"], check=True,
                       stdout=subprocess.DEVNULL)
    return path


def alternatives(path: Path, root: Path) -> tuple[Path, Path]:
    """One plain contiguous h5py file and one Parquet file of the dataset's rows."""
    flat, parquet = root / "flat.h5", root / "rows.parquet"
    if flat.exists() and parquet.exists():
        return flat, parquet
    ds = mmu_core.open_dataset(path)
    rows = {c: np.concatenate([b[c] for b in ds.iter_batches(4096, ["object_id", *COLUMNS])])
            for c in ["object_id", *COLUMNS]}
    with h5py.File(flat, "w") as h:
        for c, v in rows.items():
            h.create_dataset(c, data=v)
    length = rows["spectrum_flux"].shape[1]
    table = pa.table({"object_id": rows["object_id"],
                      **{c: pa.FixedSizeListArray.from_arrays(pa.array(rows[c].ravel()), length)
                         for c in COLUMNS}})
    pq.write_table(table, parquet, row_group_size=256)
    return flat, parquet


def best(fn, repeat: int = 5) -> float:
    return best_time(fn, repeat, warm=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1500,3000,6000,12000")
    ap.add_argument("--data", type=Path, default=Path("bench/data"))
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    args = ap.parse_args()
    lines = ["| spectra | mmu get | floor: contiguous h5py fancy index | Parquet `in` filter | "
             "hashing (in mmu) | mmu / floor | Parquet / mmu |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in [int(s) for s in args.sizes.split(",")]:
        path = build(args.data, n)
        flat, parquet = alternatives(path, args.data / f"desi-{n}")
        ds = mmu_core.open_dataset(path)
        ids = np.random.default_rng(7).choice(np.asarray(ds.index().ids), N_IDS, replace=False)
        got = ds.get(ids, columns=COLUMNS)
        t_mmu = best(lambda ds=ds, ids=ids: ds.get(ids, columns=COLUMNS))

        with h5py.File(flat, "r") as h:
            rows = np.sort(np.random.default_rng(7).choice(h["object_id"].shape[0], N_IDS,
                                                           replace=False))
            t_floor = best(lambda h=h, rows=rows: [h[c][rows] for c in COLUMNS])

        def parquet_get(parquet=parquet, ids=ids):
            return pq.read_table(parquet, columns=["object_id", *COLUMNS],
                                 filters=[("object_id", "in", ids.tolist())])

        t_pq = best(parquet_get, repeat=2)
        assert parquet_get().num_rows == N_IDS
        per_block = block_rows(got["spectrum_flux"][0].nbytes)
        t_hash = best(lambda got=got, pb=per_block: [digests(got[c], pb) for c in COLUMNS])
        lines.append(f"| {n:,} | {t_mmu * 1e3:.1f} ms | {t_floor * 1e3:.1f} ms | "
                     f"{t_pq * 1e3:.0f} ms | {t_hash * 1e3:.1f} ms | {t_mmu / t_floor:.2f} | "
                     f"{t_pq / t_mmu:.0f}x |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        command = f"python bench/bench_get_spectra.py --sizes {args.sizes}"
        write_section("Random access: 500 DESI spectra by id",
                      f"{machine()}\n\nCommand: `{command}`\n\n{__doc__.split('::')[0].strip()}"
                      f"\n\n{table}\n")


if __name__ == "__main__":
    main()
