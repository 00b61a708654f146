"""``mmu demo``: the main job, end to end, on synthetic data from every installed survey.

0. clear what an earlier run of the demo wrote under OUT (its own folders only);
1. sample each installed survey in one patch of sky — each survey after the first places part
   of its objects exactly on objects of the survey before it (``SampleRequest.positions``), so
   cross-matches find real pairs;
2. build and validate each;
3. the design doc's own workflow first, when two image surveys are installed (HSC and the
   Legacy Survey with the standard plugins)::

       hsc = hf.load(ROOT, "pdr3_dud_22.5"); decals = hf.load(ROOT, "dr10_south_21")
       matched_catalog, matched_dset = cross_match_datasets(hsc, decals, match_radius=1.0)
       matched_dset.save_to_disk(OUT / "hf" / ...)

   then cross-match the other neighbours of the chain (image x spectrum, spectrum x IFU, IFU x
   segmentation: Legacy Survey x DESI, DESI x MaNGA, MaNGA x GZ3D);
4. load a matched set through HuggingFace ``datasets`` (the first pair's, above);
5. draw previews of every dataset and matched set, and the sky map;
6. print a summary table and where everything is.

The core names no survey: the chain is ordered by modality.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from mmu_core.build import build
from mmu_core.models import SampleRequest
from mmu_core.registry import Registry, get_registry
from mmu_core.storage.reader import open_dataset
from mmu_core.validate import validate

CHAIN_ORDER = ("image", "spectrum", "ifu", "segmentation", "lightcurve")  # others come last
# objects per modality: enough to show the machinery, small enough for a few minutes
SAMPLE_SIZE = {"image": 400, "spectrum": 600, "ifu": 6, "segmentation": 6, "lightcurve": 300}
DEFAULT_SAMPLE_SIZE = 100
SHARED_FRACTION = 0.5  # share of a survey's objects placed on the previous survey's objects
CROSS_MATCH_MODALITIES = ("image", "spectrum", "ifu", "segmentation")
PATCH = {"ra": 150.1, "dec": 2.2, "radius": 0.05}  # 3 arcmin in COSMOS: few HSC patches
OWN_FOLDERS = ("raw", "data", "matches", "previews", "hf", "hf_cache")  # cleared at the start


@dataclass
class DemoReport:
    out: Path
    datasets: list[dict[str, Any]] = field(default_factory=list)
    matches: list[dict[str, Any]] = field(default_factory=list)
    hf: dict[str, Any] = field(default_factory=dict)
    previews: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # surveys without a sampler
    story: dict[str, Any] = field(default_factory=dict)  # the design doc's workflow
    seconds: float = 0.0

    def _short(self, path: Any) -> str:
        """A path relative to the demo's folder (what fits a table at 80 columns)."""
        try:
            return str(Path(path).relative_to(self.out))
        except (TypeError, ValueError):
            return str(path)

    def print(self, console: Console) -> None:
        t = Table(title=f"mmu demo: datasets, in {self.out / 'data'}/SURVEY/CONFIG")
        for col in ("survey", "config", "modality", "rows", "MB", "valid", "s"):
            t.add_column(col, justify="right" if col in ("rows", "MB", "s") else "left",
                         no_wrap=True)
        for d in self.datasets:
            t.add_row(d["survey"], Path(d["path"]).name, d["modality"], f"{d['rows']:,}",
                      f"{d['bytes'] / 1e6:.0f}",
                      "[green]yes[/]" if d["valid"] else "[red]NO[/]", f"{d['seconds']:.0f}")
        console.print(t)
        if self.matches:
            t = Table(title="mmu demo: cross-matches (1\", nearest, one-to-one)",
                      caption=f"in {self.out / 'matches'}/LEFT_x_RIGHT/")
            for col in ("left", "right", "matches", "files", "s"):
                t.add_column(col, justify="right" if col in ("matches", "files", "s") else "left")
            for m in self.matches:
                t.add_row(m["left"], m["right"], f"{m['matches']:,}", str(m["files"]),
                          f"{m['seconds']:.0f}")
            console.print(t)
        if self.story:
            console.print(f"design doc workflow: cross_match_datasets({self.story['left']}, "
                          f"{self.story['right']}, match_radius=1.0) -> "
                          f"{self.story['pairs']:,} pairs; matched_dset.save_to_disk -> "
                          f"{self.story['saved']}", highlight=False)
        if self.hf:
            console.print(f"HuggingFace datasets: {self.hf['path']} -> {self.hf['repr']}",
                          highlight=False)
            console.print(f"  example keys: {self.hf['keys']}", highlight=False)
        console.print(f"previews ({len(self.previews)}): {self.out / 'previews'}")
        if self.skipped:
            console.print(f"skipped (no sample data): {', '.join(self.skipped)}")
        console.print(f"[bold]done in {self.seconds:.0f} s[/]; everything is under {self.out}")


def run_demo(out: Path | str, registry: Registry | None = None, workers: int = 1,
             console: Console | None = None, scale: float = 1.0) -> DemoReport:
    """Run the demo into ``out``; returns the report (also printed when ``console`` is given)."""
    started = time.perf_counter()
    out = Path(out)
    registry = registry or get_registry()
    console = console or Console(quiet=True)
    for name in OWN_FOLDERS:  # a rerun must not show the previous run's matches and pictures
        shutil.rmtree(out / name, ignore_errors=True)
    report = DemoReport(out=out)
    entries = sorted(
        registry.surveys.values(),
        key=lambda e: (CHAIN_ORDER.index(e.info.modality) if e.info.modality in CHAIN_ORDER
                       else len(CHAIN_ORDER), e.name),
    )
    if not entries:
        raise RuntimeError("no survey plugins are installed: nothing to demonstrate")
    for entry in [e for e in entries if not registry.can_sample(e.name)]:
        console.print(f"[yellow]skipping {entry.name}[/]: its plugin writes no sample data "
                      "(no mmu_sample hook)")
        report.skipped.append(entry.name)
    entries = [e for e in entries if registry.can_sample(e.name)]
    previous_positions: np.ndarray | None = None
    built: dict[str, Any] = {}
    for entry in entries:
        survey, modality = entry.name, entry.info.modality
        n = max(2, int(SAMPLE_SIZE.get(modality, DEFAULT_SAMPLE_SIZE) * scale))
        positions = None
        if previous_positions is not None and modality in CROSS_MATCH_MODALITIES:
            k = min(len(previous_positions), max(1, int(n * SHARED_FRACTION)))
            positions = [tuple(map(float, p)) for p in previous_positions[:k]]
        console.rule(f"[bold]{survey}[/] ({modality})")
        t0 = time.perf_counter()
        raw = out / "raw" / survey
        result = registry.sample(survey, SampleRequest(out_dir=raw, n=n, seed=1,
                                                       positions=positions, **PATCH))
        console.print(f"sampled {result.n_objects} objects in {len(result.files)} files "
                      f"({'sharing ' + str(len(positions)) + ' positions' if positions else 'new positions'})")
        summary = build(survey, raw, out / "data", registry=registry, workers=workers)
        check = validate(summary.path, strict=True)
        console.print(f"built {summary.rows:,} rows in {summary.files} files; "
                      f"validate: {'valid' if check.ok else 'INVALID'}")
        if not check.ok:
            console.print(check.text(), highlight=False)
        report.datasets.append({
            "survey": survey, "modality": modality, "rows": summary.rows,
            "pixels": summary.pixels, "files": summary.files, "bytes": summary.bytes,
            "valid": check.ok, "seconds": time.perf_counter() - t0, "path": summary.path,
        })
        built[survey] = (modality, summary.path)
        if modality in CROSS_MATCH_MODALITIES:
            ds = open_dataset(summary.path)
            pos = np.concatenate([np.stack([b["ra"], b["dec"]], axis=1)
                                  for b in ds.iter_batches(columns=["ra", "dec"])])
            previous_positions = pos[np.random.default_rng(0).permutation(len(pos))]
            ds.close()

    from mmu_core import hf
    from mmu_core.crossmatch import cross_match

    chain = [(s, p) for s, (m, p) in built.items() if m in CROSS_MATCH_MODALITIES]
    matched_paths = []
    for k, ((ls, lp), (rs, rp)) in enumerate(zip(chain, chain[1:], strict=False)):
        t0 = time.perf_counter()
        if k == 0 and built[ls][0] == built[rs][0] == "image":
            console.rule(f"[bold]the design doc's workflow: {ls} x {rs}[/]")
            left = hf.load(out / "data", f"{ls}/{lp.name}", cache_dir=out / "hf_cache")
            right = hf.load(out / "data", f"{rs}/{rp.name}", cache_dir=out / "hf_cache")
            catalog, matched = hf.cross_match_datasets(
                left, right, match_radius=1.0, out=out / "matches" / f"{ls}_x_{rs}",
                cache_dir=out / "hf_cache", workers=workers, overwrite=True)
            saved = out / "hf" / f"{ls}_x_{rs}"
            matched.save_to_disk(str(saved))
            path = hf.source_of(matched)
            report.story = {"left": f"{ls}/{lp.name}", "right": f"{rs}/{rp.name}",
                            "pairs": catalog.num_rows, "saved": saved}
            report.hf = {"path": path, "repr": f"datasets.Dataset({matched.num_rows} rows, "
                         f"{len(matched.features)} features)", "keys": sorted(matched[0])}
            console.print(matched)
            n_pairs = catalog.num_rows
        else:
            console.rule(f"[bold]cross-match {ls} x {rs}[/]")
            res = cross_match(lp, rp, out / "matches" / f"{ls}_x_{rs}", radius_arcsec=1.0,
                              how="nearest", workers=workers, overwrite=True)
            path, n_pairs = res.dataset_path, len(res)
        files = len(open_dataset(path).files) if path else 0
        report.matches.append({"left": ls, "right": rs, "matches": n_pairs, "files": files,
                               "seconds": time.perf_counter() - t0, "path": path})
        console.print(f"{n_pairs:,} matches -> {path}")
        if path is not None and n_pairs:
            matched_paths.append(path)

    if matched_paths and not report.hf:
        console.rule("[bold]HuggingFace datasets[/]")
        path = matched_paths[0]
        hfds = hf.load(path, cache_dir=str(out / "hf_cache"))
        first = hfds[0]
        report.hf = {"path": path, "repr": f"datasets.Dataset({hfds.num_rows} rows, "
                     f"{len(hfds.features)} features)", "keys": sorted(first)}
        console.print(hfds)

    from mmu_core.previews import preview, preview_sky

    console.rule("[bold]previews[/]")
    pdir = out / "previews"
    for d in report.datasets:
        report.previews.append(preview(d["path"], pdir / f"{d['survey']}.png"))
    if report.datasets:
        report.previews.append(preview_sky([d["path"] for d in report.datasets],
                                           pdir / "sky.png"))
    for path in matched_paths:
        name = path.parent.name if path.name == "matched" else path.name
        report.previews.append(preview(path, pdir / f"match-{name}.png"))
    report.seconds = time.perf_counter() - started
    return report
