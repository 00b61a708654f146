"""Peak memory of ``mmu build manga`` vs the number of galaxies (run by hand; slow, big).

    /work/main/.venv/bin/python plugins/mmu-manga/bench/rss_build.py --n 5 50 --workdir /tmp/manga-rss

Writes one sample of max(N) realistic galaxies (full 4,563-wavelength LOGCUBEs, the bundle
mix of real plates: 32x32 to 74x74 spaxels), then for each N builds the first N galaxies (a
folder of symlinks) in a fresh ``mmu build`` process, sampling the RSS of that process and
its children every 0.2 s. It also runs the plugin's converter alone over the N galaxies.
Peak RSS should stay flat in N: one galaxy is converted at a time (the padded 96x96 row is
~673 MB), never the whole sample.

Disk: the sample is ~60 MB per galaxy; the core stages each galaxy until the merge (gzip where
it pays, so mostly the real spaxels, not the padding). Outputs are deleted after each N unless
--keep. Measured (full 4,563 wavelengths): peak build RSS 1,070 MB for 5 galaxies and 1,065 MB
for 20 (was 1,410 / 1,413 MB for 5 / 50 before the stager stopped copying one-pixel batches);
1,111 MB for 5 74x74 galaxies once the 196 DR17 image channels are stored (was 30).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

PY = sys.executable
MMU = [PY, "-c", "from mmu_core.cli import app; app()"]

CONVERT_ONLY = r"""
import resource, sys, time
from pathlib import Path
from mmu_core.models import ConvertContext
from mmu_manga import convert, discover
raw = Path(sys.argv[1])
units = discover.discover_units("dr17", raw, {})
t = time.perf_counter()
rows = 0
for u in units:
    for batch in convert.convert_unit(u, ConvertContext(raw_dir=raw)):
        rows += len(batch["object_id"])
        del batch  # as the core does: nothing of a unit is kept once it is staged
print(rows, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_sampled(cmd: list[str], env: dict | None = None) -> dict:
    """Run cmd; return wall time, peak tree RSS (sampled), the RSS timeline and the output."""
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env)
    proc = psutil.Process(popen.pid)
    samples: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(popen.stdout.read()))
    reader.start()
    while popen.poll() is None:
        samples.append((time.perf_counter() - t0, tree_rss(proc)))
        time.sleep(0.2)
    reader.join()
    return {
        "seconds": time.perf_counter() - t0,
        "returncode": popen.returncode,
        "peak_rss_sampled": max((r for _, r in samples), default=0),
        "timeline": samples,
        "output": "".join(out),
    }


def subset(raw: Path, dst: Path, n: int) -> int:
    """A raw folder with the first n cubes (and their MAPS) plus the catalogs, as symlinks."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    cubes = sorted(raw.rglob("manga-*-LOGCUBE.fits.gz"))[:n]
    spaxels = 0
    from astropy.io import fits

    for cube in cubes:
        (dst / cube.name).symlink_to(cube)
        maps = next(raw.rglob(cube.name.replace("LOGCUBE", "MAPS-HYB10-MILESHC-MASTARSSP")))
        (dst / maps.name).symlink_to(maps)
        h = fits.getheader(cube, "FLUX")
        spaxels += h["NAXIS1"] * h["NAXIS2"]
    for cat in (*raw.rglob("drpall-*.fits"), *raw.rglob("dapall-*.fits")):
        (dst / cat.name).symlink_to(cat)
    return spaxels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[5, 50])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/manga-rss"))
    ap.add_argument("--bundles", default="19,37,61,91,127")
    ap.add_argument("--nwave", type=int, default=4563)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = args.workdir
    raw = work / "raw"
    nmax = max(args.n)
    if not raw.exists() or len(list(raw.rglob("*LOGCUBE.fits.gz"))) < nmax:
        shutil.rmtree(raw, ignore_errors=True)
        t = time.perf_counter()
        subprocess.run([*MMU, "sample", "manga", "--out", str(raw), "--n", str(nmax),
                        "--seed", str(args.seed), "--bundles", args.bundles,
                        "--nwave", str(args.nwave)], check=True)
        print(f"sample of {nmax}: {time.perf_counter() - t:.0f} s, "
              f"{sum(f.stat().st_size for f in raw.rglob('*') if f.is_file()) / 1e9:.2f} GB",
              flush=True)
    results = []
    for n in sorted(args.n):
        sub = work / f"raw-{n}"
        spaxels = subset(raw, sub, n)
        conv = run_sampled([PY, "-c", CONVERT_ONLY, str(sub)])
        rows, conv_s, conv_maxrss = conv["output"].split()[-3:]
        out = work / f"out-{n}"
        shutil.rmtree(out, ignore_errors=True)
        env = {**os.environ, "COLUMNS": "200"}
        res = run_sampled([*MMU, "build", "manga", "--raw", str(sub), "--out", str(out),
                           "--workers", str(args.workers)], env=env)
        if res["returncode"]:
            print(res["output"])
            raise SystemExit(f"build of {n} failed")
        timeline = res["timeline"]
        span = res["seconds"] / 4  # the peak within each quarter of the build's duration
        quart = [max((r for t, r in timeline if q * span <= t < (q + 1) * span), default=0) / 1e6
                 for q in range(4)]
        size = sum(f.stat().st_size for f in out.rglob("*.hdf5"))
        row = {
            "galaxies": n, "spaxels": spaxels, "build_s": round(res["seconds"], 1),
            "build_peak_rss_MB": round(res["peak_rss_sampled"] / 1e6),
            "build_peak_rss_MB_each_quarter_of_time": [round(q) for q in quart],
            "convert_only_rows": int(rows), "convert_only_s": round(float(conv_s), 1),
            "convert_only_ru_maxrss_MB": round(int(conv_maxrss) / 1e3),
            "dataset_GB": round(size / 1e9, 2),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
