"""Peak memory and time of `mmu build plasticc` on a ~2 GB light-curve CSV (run by hand).

    python plugins/mmu-plasticc/bench/peak_memory.py --dir /tmp/plasticc-bench --gb 2

Writes a Kaggle-layout raw folder (training_set.csv of about --gb gigabytes, plus its
metadata) with the plugin's own simulator, unless it is already there; then runs
``mmu build plasticc`` in a subprocess, sampling its resident memory (VmRSS, children
included) every 0.2 s, and prints time, peak RSS and the RSS profile. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from mmu_core.models import SampleRequest
from mmu_plasticc.datamodel import KAGGLE
from mmu_plasticc.samples import draw_ids, metadata_line, simulate

CHUNK_OBJECTS = 2000


def make_raw(raw: Path, gigabytes: float, seed: int = 0) -> None:
    """Simulate objects in chunks and append them until the light-curve file is big enough."""
    raw.mkdir(parents=True, exist_ok=True)
    lc_path, meta_path = raw / "training_set.csv", raw / "training_set_metadata.csv"
    rng = np.random.default_rng(seed)
    cone = SampleRequest(out_dir=raw, ra=60.0, dec=-30.0, radius=10.0)
    target = gigabytes * 1e9
    # ids ascending through the file, as in the real files: deep-field objects (~55 points
    # per band) first, about 250 MB of them, then wide-field ones
    pool = np.sort(draw_ids(rng, 3_000_000, n_ddf=20_000))
    options = pacsv.WriteOptions(include_header=False)
    with open(lc_path, "wb") as lc, open(meta_path, "w") as meta:
        lc.write((",".join(KAGGLE.lc_columns()) + "\n").encode())
        meta.write(",".join(KAGGLE.meta_columns) + "\n")
        start = 0
        while lc.tell() < target:
            ids = pool[start : start + CHUNK_OBJECTS]
            start += CHUNK_OBJECTS
            objects = simulate(rng, ids, "train", KAGGLE, cone)
            table = pa.table(
                {
                    "object_id": np.concatenate(
                        [np.full(len(o.mjd), o.object_id) for o in objects]
                    ),
                    "mjd": np.concatenate([o.mjd for o in objects]),
                    "passband": np.concatenate([o.passband for o in objects]),
                    "flux": np.concatenate([o.flux for o in objects]),
                    "flux_err": np.concatenate([o.flux_err for o in objects]),
                    "detected": np.concatenate([o.detected for o in objects]),
                }
            )
            pacsv.write_csv(table, lc, write_options=options)
            meta.writelines(metadata_line(o, KAGGLE, "train") for o in objects)
            print(f"\r{lc.tell() / 1e9:.2f} GB, {start} objects", end="", flush=True)
    print()


def rss_of_tree(pid: int) -> int:
    """Resident bytes of a process and its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += (
                int(
                    next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[
                        1
                    ]
                )
                * 1024
            )
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            todo += [int(c) for c in children]
        except (OSError, StopIteration):
            continue
    return total


def measure(raw: Path, out: Path, workers: int, unit_mb: float) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    mmu = str(Path(sys.executable).with_name("mmu"))
    cmd = [
        mmu,
        "build",
        "plasticc",
        "--raw",
        str(raw),
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--unit-mb",
        str(unit_mb),
    ]
    env = {**os.environ, "MMU_LOAD_PLUGINS": "plasticc"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    samples = []
    while proc.poll() is None:
        samples.append((time.perf_counter() - started, rss_of_tree(proc.pid)))
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    output = proc.stdout.read()
    if proc.returncode:
        raise SystemExit(f"build failed:\n{output}")
    rss = np.array([s[1] for s in samples]) / 2**20
    at = np.array([s[0] for s in samples])
    deciles = np.percentile(rss, [10, 50, 90, 100]).round(0).tolist()
    return {
        "command": " ".join(cmd),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(float(rss.max()), 1),
        "rss_mb_p10_p50_p90_max": deciles,
        "peak_at_seconds": round(float(at[np.argmax(rss)]), 1),
        "profile_mb_every_10pct": [round(float(r)) for r in rss[:: max(1, len(rss) // 10)]],
        "csv_bytes": (raw / "training_set.csv").stat().st_size,
        "output": output[-1500:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path("/tmp/plasticc-bench"))
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--unit-mb", type=float, default=256.0)
    args = parser.parse_args()
    raw = args.dir / "raw"
    if not (raw / "training_set.csv").is_file():
        make_raw(raw, args.gb)
    result = measure(raw, args.dir / "out", args.workers, args.unit_mb)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
