"""Cross-match benchmark: mmu's stored cross-match against astropy ``search_around_sky``.

For each size N, two stored datasets of N objects each (object_id, ra, dec, mag) are written
once under ``bench/data/xmatch-N/`` (reused by later runs): the left catalog uniform on the
sky; the right one half counterparts of left objects (Rayleigh offsets, sigma 0.3 arcsec) and
half uniform. They are generated 10^7 objects at a time, staged and merged per pixel as the
sharder does, so 10^8 fits in memory too. Then, each in its own subprocess so its peak memory
is its own:

- **mmu**: ``cross_match(left, right, OUT, radius_arcsec=R, how="all", workers=W,
  catalog_only=True)`` — reads object_id/ra/dec from the datasets' positions sidecar and
  writes ``catalog.parquet``;
- **astropy**: reads ra/dec of every stored file of both datasets with h5py, builds
  ``SkyCoord``s and calls ``search_around_sky(left, right, R)`` (time includes the read, which
  is reported separately too).

Peak memory is the largest summed RSS of the subprocess and its children (polled every
20 ms with psutil). Both runs see a warm page cache: the files each reads are read once
before timing (at 10^8 the inputs, 16 GB, do not all stay cached on a 23 GB machine).
astropy is not run above ``--astropy-up-to`` (default 10^7): it holds everything in one
process (~3.5 GB at 10^7). Results go to BENCHMARKS.md under "## Cross-match"
(only that section is replaced, through bench/report.py).

    .venv/bin/python bench/bench_crossmatch.py --sizes 1000000 10000000 100000000 --workers 1 2 \
        --how all nearest

``--v1``: the same catalogs as two MMU v1 folders instead (``bench/data/xmatch-v1-N/``: plain
h5py files ``healpix=N/i-of-n.hdf5`` holding ``object_id``, ``ra``, ``dec``, ``healpix``, rows
in no id order, no manifest, no ``_index/``), timed three ways: mmu's first cross-match
(``MMU_CACHE`` a new empty folder: the positions sidecars are made, the files read on worker
processes), mmu's second one (the sidecars read from that cache), and astropy on the
coordinates read from the same files. Its section is "## Cross-match of MMU v1 folders".

    .venv/bin/python bench/bench_crossmatch.py --v1 --sizes 10000000 --workers 2 --how all
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

HERE = Path(__file__).resolve().parent
SECTION = "Cross-match"
V1_SECTION = "Cross-match of MMU v1 folders"


# ---- data -------------------------------------------------------------------------------
def _uniform_sky(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return ra, dec


def _offset(ra: np.ndarray, dec: np.ndarray, sep_deg: np.ndarray, pa_deg: np.ndarray):
    """Move (ra, dec) by ``sep_deg`` towards position angle ``pa_deg`` (spherical trig)."""
    d, s, p = np.radians(dec), np.radians(sep_deg), np.radians(pa_deg)
    dec2 = np.arcsin(np.clip(np.sin(d) * np.cos(s) + np.cos(d) * np.sin(s) * np.cos(p), -1, 1))
    dra = np.arctan2(np.sin(p) * np.sin(s) * np.cos(d), np.cos(s) - np.sin(d) * np.sin(dec2))
    ra2 = np.mod(ra + np.degrees(dra), 360.0)
    return np.where(ra2 >= 360.0, 0.0, ra2), np.degrees(dec2)


GENERATOR = 2  # bumped when the generated data change: older data are rewritten
CHUNK = 10_000_000  # objects generated, staged and held in memory at a time


def make_chunk(n: int, c: int, seed: int = 0) -> tuple[dict, dict]:
    """Chunk ``c`` (of ``ceil(n / CHUNK)``) of both catalogs: ids unique over all chunks."""
    rng = np.random.default_rng([seed, c])
    start = c * CHUNK
    m = min(CHUNK, n - start)
    lra, ldec = _uniform_sky(rng, m)
    left = {"object_id": rng.permutation(m).astype(np.int64) + 1_000_000_000_000 + start,
            "ra": lra, "dec": ldec, "mag": rng.normal(21, 1, m).astype(np.float32)}
    k = m // 2
    src = rng.choice(m, k, replace=False)
    sep = rng.rayleigh(0.3, k) / 3600.0
    cra, cdec = _offset(lra[src], ldec[src], sep, rng.uniform(0, 360, k))
    rra, rdec = _uniform_sky(rng, m - k)
    right = {"object_id": rng.permutation(m).astype(np.int64) + 5_000_000_000_000 + start,
             "ra": np.concatenate([cra, rra]), "dec": np.concatenate([cdec, rdec]),
             "mag": rng.normal(21, 1, m).astype(np.float32)}
    return left, right


def _stage(dataset_dir: str, key: str, cols: dict) -> tuple[str, str, list[int]]:
    from mmu_core.storage import layout
    from mmu_core.storage.writer import UnitResult, UnitStager

    stager = UnitStager(Path(dataset_dir) / layout.STAGING_DIR, key)
    stager.add(cols, 0)
    return dataset_dir, key, sorted(stager.finish(UnitResult(key=key)).pixels)


def _merge(dataset_dir: str, pixels: list[int], keys: dict[int, list[str]], schema: dict) -> int:
    from mmu_core.storage import layout
    from mmu_core.storage.writer import merge_pixel

    staging = Path(dataset_dir) / layout.STAGING_DIR
    attrs = {"survey": Path(dataset_dir).parent.name, "config": "bench"}
    for pixel in pixels:
        merge_pixel(Path(dataset_dir), pixel,
                    [(k, staging / k / f"pix-{pixel}.hdf5") for k in keys[pixel]], schema, attrs)
    return len(pixels)


def write_datasets(paths: tuple[Path, Path], n: int, workers: int) -> None:
    """Both stored datasets (HEALPix layout, index, positions sidecar, manifest), CHUNK
    objects at a time: each chunk is staged per base pixel, then every pixel is merged from
    its fragments, as the sharder does; memory stays bounded by a chunk."""
    from mmu_core.concat import finalize_dataset
    from mmu_core.executors import run_tasks
    from mmu_core.storage import layout
    from mmu_core.storage.columns import schema_of

    for p in paths:
        if p.exists():
            shutil.rmtree(p)
        p.mkdir(parents=True)
    keys: list[dict[int, list[str]]] = [{}, {}]
    schema = None
    for c in range(-(-n // CHUNK)):
        chunk = make_chunk(n, c)
        schema = schema_of(chunk[0])
        args = []
        for path, cols in zip(paths, chunk, strict=True):
            pix = layout.healpix_of(cols["ra"], cols["dec"])
            order = np.argsort(pix, kind="stable")
            bounds = np.searchsorted(pix[order], np.arange(0, layout.NPIX + 1, 256))
            for g, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
                if b > a:
                    sel = order[a:b]
                    args.append((str(path), f"c{c:03d}g{g:02d}",
                                 {k: v[sel] for k, v in cols.items()}))
        for path, key, pixels in run_tasks(_stage, args, workers=workers):
            side = [str(p) for p in paths].index(path)
            for pixel in pixels:
                keys[side].setdefault(pixel, []).append(key)
        print(f"    staged chunk {c + 1} of {-(-n // CHUNK)}", flush=True)
    for side, path in enumerate(paths):
        pixels = sorted(keys[side])
        groups = [pixels[i::4 * workers] for i in range(4 * workers)]
        for _ in run_tasks(_merge, [(str(path), g, keys[side], schema) for g in groups if g],
                           workers=workers):
            pass
        finalize_dataset(path, survey=path.parent.name, config="bench", modality=None,
                         columns=schema, extra={"bench_rows": n, "bench_generator": GENERATOR})


def ensure_data(data: Path, n: int, workers: int) -> tuple[Path, Path]:
    root = data / f"xmatch-{n}"
    paths = (root / "left" / "bench", root / "right" / "bench")

    def current(p: Path) -> bool:
        if not (p / "manifest.json").is_file():
            return False
        m = json.loads((p / "manifest.json").read_text())
        return m["rows"] == n and m.get("extra", {}).get("bench_generator") == GENERATOR

    if not all(current(p) for p in paths):
        t = time.perf_counter()
        write_datasets(paths, n, workers)
        print(f"  wrote 2 x {n:,} stored objects in {time.perf_counter() - t:.0f} s", flush=True)
    return paths


def write_v1_folders(paths: tuple[Path, Path], n: int) -> None:
    """Both catalogs as MMU v1 folders, written with plain h5py: per chunk of CHUNK objects,
    one file per pixel (``healpix=N/c-of-k.hdf5``, k the number of chunks), rows in the
    generator's order (not sorted by id)."""
    import h5py

    from mmu_core.storage import layout

    for p in paths:
        if p.exists():
            shutil.rmtree(p)
    chunks = -(-n // CHUNK)
    for c in range(chunks):
        for path, cols in zip(paths, make_chunk(n, c), strict=True):
            pix = layout.healpix_of(cols["ra"], cols["dec"])
            order = np.argsort(pix, kind="stable")
            bounds = np.searchsorted(pix[order], np.arange(layout.NPIX + 1))
            for pixel in np.flatnonzero(np.diff(bounds)).tolist():
                rows = order[bounds[pixel]:bounds[pixel + 1]]
                folder = path / layout.pixel_dirname(pixel)
                folder.mkdir(parents=True, exist_ok=True)
                with h5py.File(folder / layout.file_name(c + 1, chunks), "w") as h:
                    for name in ("object_id", "ra", "dec"):
                        h.create_dataset(name, data=cols[name][rows])
                    h.create_dataset("healpix", data=pix[rows])
        print(f"    wrote chunk {c + 1} of {chunks}", flush=True)


def ensure_v1_data(data: Path, n: int) -> tuple[Path, Path]:
    root = data / f"xmatch-v1-{n}"
    paths = (root / "left" / "v1", root / "right" / "v1")
    marker = root / "bench.json"  # beside the folders: a v1 folder holds its pixel files only
    want = {"rows": n, "bench_generator": GENERATOR}
    if not marker.is_file() or json.loads(marker.read_text()) != want:
        t = time.perf_counter()
        marker.unlink(missing_ok=True)
        write_v1_folders(paths, n)
        marker.write_text(json.dumps(want))
        print(f"  wrote 2 x {n:,} objects as v1 folders in {time.perf_counter() - t:.0f} s",
              flush=True)
    return paths


def warm(paths: tuple[Path, ...], hdf5: bool = True) -> None:
    """Read the files once: the pixel files (what astropy reads) only when astropy runs,
    the index and positions sidecar (what mmu reads) last, so they are the freshest."""
    files = [f for p in paths for f in sorted(p.glob("healpix=*/*.hdf5"))] if hdf5 else []
    files += [f for p in paths for f in sorted(p.glob("_index/*.npy"))]
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 22):
                pass


# ---- the two measured runs (each in its own subprocess) ---------------------------------
def run_mmu(left: str, right: str, out: str, radius: float, workers: int, how: str) -> dict:
    import pyarrow as pa
    import pyarrow.parquet  # noqa: F401

    import mmu_core

    pa.array([0])  # pyarrow imports pandas on first use: libraries load before the timer,
    t = time.perf_counter()  # as astropy's do in run_astropy
    result = mmu_core.cross_match(left, right, out, radius_arcsec=radius, how=how,
                                  workers=workers, catalog_only=True, overwrite=True)
    return {"seconds": time.perf_counter() - t, "pairs": len(result), "tasks": result.tasks,
            "candidates": result.candidates,
            "match_seconds": result.match_seconds, "write_seconds": result.write_seconds,
            "catalog_mb": result.catalog_path.stat().st_size / 2**20}


def _columns(path: str, names: tuple[str, ...]) -> list[np.ndarray]:
    """These columns of every file of a dataset folder, concatenated in path order."""
    import h5py

    parts: list[list[np.ndarray]] = [[] for _ in names]
    for f in sorted(Path(path).glob("healpix=*/*.hdf5")):
        with h5py.File(f, "r") as h:
            for part, name in zip(parts, names, strict=True):
                part.append(h[name][...])
    return [np.concatenate(p) for p in parts]


def run_astropy(left: str, right: str, radius: float, how: str,
                pairs_out: str | None = None) -> dict:
    """astropy's time; with ``pairs_out`` (``how="all"``) its pairs' object_ids are saved
    there afterwards (sorted, outside the timer)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, match_coordinates_sky, search_around_sky

    t = time.perf_counter()
    coords = [SkyCoord(*(c * u.deg for c in _columns(path, ("ra", "dec"))))
              for path in (left, right)]
    read = time.perf_counter() - t
    if how == "all":
        li, ri = search_around_sky(coords[0], coords[1], radius * u.arcsec)[:2]
        pairs = len(li)
    else:  # each left object's nearest right one, cut at the radius (no one-to-one rule)
        _, sep, _ = match_coordinates_sky(coords[0], coords[1])
        pairs = int((sep <= radius * u.arcsec).sum())
    seconds = time.perf_counter() - t
    if pairs_out and how == "all":
        (lid,), (rid,) = _columns(left, ("object_id",)), _columns(right, ("object_id",))
        np.save(pairs_out, sorted_pairs(lid[li], rid[ri]))
    return {"seconds": seconds, "read_seconds": read, "pairs": int(pairs)}


def sorted_pairs(left_ids: np.ndarray, right_ids: np.ndarray) -> np.ndarray:
    """(2, n) object_id pairs in (left, right) order."""
    order = np.lexsort((right_ids, left_ids))
    return np.stack([left_ids[order], right_ids[order]])


def catalog_pairs(catalog: Path) -> np.ndarray:
    import pyarrow.parquet as pq

    t = pq.read_table(catalog, columns=["left_object_id", "right_object_id"])
    return sorted_pairs(t["left_object_id"].to_numpy(), t["right_object_id"].to_numpy())


def measure(argv: list[str], env: dict[str, str] | None = None) -> dict:
    """Run this script's ``_run`` mode in a subprocess (with ``env`` added to its
    environment); wall time, peak summed RSS and the 1-minute load average before it."""
    import psutil

    load = os.getloadavg()[0]
    proc = subprocess.Popen([sys.executable, __file__, "_run", *argv], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [ps, *ps.children(recursive=True)]
            rss = 0
            for p in tree:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"benchmark run {argv} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = peak / 2**20
    result["load"] = load
    return result


# ---- report -----------------------------------------------------------------------------
def table(rows: list[dict], load: bool = False) -> list[str]:
    """The results table (with each run's load average before it when ``load``)."""
    lines = [
        "| objects (each side) | how | tool | seconds | rows/s | pairs | peak memory (MB) "
        + ("| load |" if load else "|") + " notes |",
        "|---:|---|---|---:|---:|---:|---:|" + ("---:|" if load else "") + "---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['how']} | {r['tool']} | {r['seconds']:.1f} "
            f"| {2 * r['n'] / r['seconds']:,.0f} | {r['pairs']:,} | {r['peak_rss_mb']:,.0f} "
            + (f"| {r['load']:.1f} " if load else "") + f"| {r.get('notes', '')} |")
    return lines


def by_size_and_how(rows: list[dict]) -> dict[tuple[int, str], dict]:
    """(n, how) -> tool -> its row."""
    out: dict[tuple[int, str], dict] = {}
    for r in rows:
        out.setdefault((r["n"], r["how"]), {})[r["tool"]] = r
    return out


def section_text(rows: list[dict], command: str, radius: float, load: float) -> str:
    from report import machine

    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}, 1-minute "
        f"load average {load:.1f} before the runs; warm page cache; one run each. "
        f"Radius {radius}\"; mmu `catalog_only=True` (writes catalog.parquet), workers are "
        "threads (the zones matcher is numpy sorting and searching, outside the GIL). "
        "`how=\"all\"` is compared with astropy's `search_around_sky`; `how=\"nearest\"` with "
        "`match_coordinates_sky` (= `match_to_catalog_sky`) cut at the radius, whose count "
        "is mmu's before its one-to-one rule (the `pairs` column shows mmu's after it). astropy "
        "runs in one process, its time including reading ra/dec from the same stored files "
        "(mmu reads them from the positions sidecar the build writes). Both timers start after the libraries are imported. Rows/s = (left + right "
        "rows) / seconds. Peak memory = largest summed RSS of the process and its children.",
        "",
        *table(rows),
    ]
    speed = by_size_and_how(rows)
    lines.append("")
    for (n, how), tools in speed.items():
        a = tools.get("astropy")
        for tool, m in tools.items():
            if a is None or not tool.startswith("mmu"):
                continue
            found = m["pairs"] if how == "all" else m["candidates"]
            same = "same pair count" if found == a["pairs"] else "PAIR COUNTS DIFFER"
            lines.append(f"- {n:,} x {n:,}, {how}, {tool}: astropy time / mmu time = "
                         f"{a['seconds'] / m['seconds']:.1f} (astropy's search alone, without "
                         f"its read: {(a['seconds'] - a['read_seconds']) / m['seconds']:.1f}); "
                         f"mmu peak memory = {m['peak_rss_mb'] / a['peak_rss_mb']:.0%} of "
                         f"astropy's ({same}).")
    lines.append("- Run to run, times on this 2-core VM vary by up to ~30%, most at 10^8, whose "
                 "16 GB of inputs do not all stay in the page cache next to the catalogs written.")
    for (n, how), tools in speed.items():
        if "astropy" not in tools:
            lines.append(f"- {n:,} x {n:,}, {how}: no astropy run (it holds every coordinate and its "
                         "trees in one process; see its peak at the sizes above).")
    return "\n".join(lines) + "\n"


def run_astropy_row(rows: list[dict], n: int, how: str, paths: tuple[Path, Path],
                    radius: float, pairs_out: Path | None = None) -> None:
    """Measure astropy on the two folders and add its row."""
    a = measure(["astropy", str(paths[0]), str(paths[1]), str(radius), how,
                 *([str(pairs_out)] if pairs_out else [])])
    rows.append({"n": n, "how": how, "tool": "astropy", **a,
                 "notes": f"of which reading {a['read_seconds']:.1f} s"})
    print(f"  {how}, astropy: {a}", flush=True)


def publish(title: str, text: str) -> None:
    """Replace the section ``title`` of BENCHMARKS.md with ``text`` (and print it)."""
    from report import write_section

    write_section(title, text)
    print(text)


def run_v1(args: argparse.Namespace, command: str) -> None:
    """The ``--v1`` runs: per size and how, mmu's first and cached cross-matches of two v1
    folders (an empty ``MMU_CACHE`` of its own first), then astropy; their pairs compared."""
    import tempfile

    rows = []
    load = os.getloadavg()[0]
    workers = max(args.workers)
    for n in args.sizes:
        print(f"N = {n:,} (v1 folders)", flush=True)
        left, right = ensure_v1_data(args.data, n)
        warm((left, right))
        out = args.data / f"xmatch-v1-{n}" / "out"
        for how in args.how:
            cache = tempfile.mkdtemp(prefix="mmu-bench-cache-")
            pairs: dict[str, np.ndarray] = {}
            try:
                for tool in ("mmu, first run (empty cache)", "mmu, cached"):
                    m = measure(["mmu", str(left), str(right), str(out), str(args.radius),
                                 str(workers), how], env={"MMU_CACHE": cache})
                    pairs[tool] = catalog_pairs(out / "catalog.parquet")
                    entries = sorted(Path(cache).glob("positions/*/*/entry.json"))
                    mb = sum(f.stat().st_size for e in entries for f in e.parent.iterdir()) / 2**20
                    rows.append({"n": n, "how": how, "tool": tool, **m, "notes": (
                        f"{workers} workers; {m['tasks']} tasks; cache: {len(entries)} "
                        f"sidecars, {mb:,.0f} MB"
                        + (f"; {m['candidates']:,} before the one-to-one rule"
                           if how == "nearest" else ""))})
                    print(f"  {how}, {tool}: {m}", flush=True)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            if not args.no_astropy and n <= args.astropy_up_to:
                pairs_out = Path(tempfile.mkdtemp(prefix="mmu-bench-pairs-")) / "astropy.npy"
                run_astropy_row(rows, n, how, (left, right), args.radius, pairs_out)
                if pairs_out.is_file():
                    astropy_pairs = np.load(pairs_out)
                    for r in rows[-3:-1]:
                        r["same_pairs"] = np.array_equal(pairs[r["tool"]], astropy_pairs)
                shutil.rmtree(pairs_out.parent)
    publish(V1_SECTION, v1_section_text(rows, command, args.radius, load))


def v1_section_text(rows: list[dict], command: str, radius: float, load: float) -> str:
    from report import machine

    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}, 1-minute load average {load:.1f} before the runs (each run's "
        "own in the `load` column; the machine is shared, so a load near 2 means the runs got "
        "about half of its 2 cores); warm page cache; one run each. Two MMU v1 folders "
        "(`healpix=N/001-of-001.hdf5` written with plain h5py: `object_id`, `ra`, `dec`, "
        "`healpix`, rows not sorted by id; no manifest, no `_index/`) holding the catalogs of "
        f"\"Cross-match\" above (same generator). Radius {radius}\"; mmu `cross_match(left_path, right_path, "
        "OUT, catalog_only=True)` in a fresh process: the **first run** has `MMU_CACHE` set to "
        "a new empty folder, so it opens both folders (two processes at once), reads "
        "`object_id`/`ra`/`dec` of every file on worker processes into a positions sidecar "
        "per folder in the cache, and matches from those; the **cached** run (same "
        "`MMU_CACHE`) finds the sidecars whole and reads no pixel file for the positions "
        "(opening a v1 folder still reads each file's column list). astropy reads ra/dec of "
        "the same files with h5py, then `search_around_sky`; timers start after the "
        "libraries are imported. Rows/s = (left + right rows) / seconds.",
        "",
        *table(rows, load=True),
        "",
    ]
    for (n, how), tools in by_size_and_how(rows).items():
        a = tools.get("astropy")
        for tool, m in tools.items():
            if a is None or not tool.startswith("mmu"):
                continue
            found = m["pairs"] if how == "all" else m["candidates"]
            same = ("the same pairs (object_id pairs compared)" if m.get("same_pairs")
                    else "PAIRS DIFFER" if "same_pairs" in m
                    else "same pair count" if found == a["pairs"] else "PAIR COUNTS DIFFER")
            lines.append(f"- {n:,} x {n:,}, {how}, {tool}: astropy time / mmu time = "
                         f"{a['seconds'] / m['seconds']:.1f}; {same}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        tool, *rest = sys.argv[2:]
        if tool == "mmu":
            left, right, out, radius, workers, how = rest
            print(json.dumps(run_mmu(left, right, out, float(radius), int(workers), how)))
        else:
            left, right, radius, how, *pairs_out = rest
            print(json.dumps(run_astropy(left, right, float(radius), how, *pairs_out)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--radius", type=float, default=1.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="one mmu run per worker count")
    parser.add_argument("--how", nargs="+", default=["all", "nearest"], choices=["all", "nearest"])
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--no-astropy", action="store_true", help="skip the astropy runs")
    parser.add_argument("--v1", action="store_true",
                        help="cross-match MMU v1 folders (no manifest, no sidecar): first run, "
                             "cached run, astropy")
    parser.add_argument("--astropy-up-to", type=int, default=10_000_000,
                        help="no astropy run above this size (it holds every coordinate and "
                             "tree in one process: ~3.5 GB at 10^7, so ~35 GB at 10^8)")
    args = parser.parse_args()
    command = "python bench/bench_crossmatch.py " + " ".join(sys.argv[1:])
    if args.v1:
        return run_v1(args, command)
    rows = []
    load = os.getloadavg()[0]
    for n in args.sizes:
        print(f"N = {n:,}", flush=True)
        left, right = ensure_data(args.data, n, max(args.workers))
        warm((left, right), hdf5=not args.no_astropy and n <= args.astropy_up_to)
        out = args.data / f"xmatch-{n}" / "out"
        for how in args.how:
            for w in args.workers:
                m = measure(["mmu", str(left), str(right), str(out), str(args.radius), str(w),
                             how])
                tool = f"mmu, {w} worker{'s' if w > 1 else ''}"
                rows.append({"n": n, "how": how, "tool": tool, **m,
                             "notes": f"{m['tasks']} tasks (blocks of pixels); catalog "
                                      f"{m['catalog_mb']:,.0f} MB"
                                      + ("" if how == "nearest" else
                                         ", written while later blocks were matched")
                                      + (f"; {m['candidates']:,} before the one-to-one rule"
                                         if how == "nearest" else "")})
                print(f"  {how}, {tool}: {m}", flush=True)
            if not args.no_astropy and n <= args.astropy_up_to:
                run_astropy_row(rows, n, how, (left, right), args.radius)
    publish(SECTION, section_text(rows, command, args.radius, load))


if __name__ == "__main__":
    main()
