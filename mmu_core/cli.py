"""The ``mmu`` command line: a thin layer over the modules it calls."""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from mmu_core.errors import Interrupted, MMUError
from mmu_core.models import OptionInfo, SampleRequest
from mmu_core.registry import get_registry

app = typer.Typer(
    name="mmu",
    help="Turn astronomical survey data into the Multimodal Universe: build, validate, "
    "read, cross-match and load HEALPix-sharded HDF5 datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def parse_extra_options(args: list[str], declared: list[OptionInfo], command: str) -> dict[str, Any]:
    """Turn ``--require-all-bands --release unblinded`` into ``{"require_all_bands": True, ...}``
    using the survey's declared options; an undeclared option is an error listing the known."""
    by_flag = {o.flag: o for o in declared}
    options: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        flag, _, inline = arg.partition("=")
        opt = by_flag.get(flag)
        if opt is None:
            known = ", ".join(sorted(by_flag)) or "none"
            _fail(f"{command}: unknown option {arg!r} (this survey's options: {known})", 2)
        if opt.kind == "flag":
            options[opt.name] = True
            i += 1
            continue
        if inline:
            raw = inline
            i += 1
        elif i + 1 < len(args):
            raw = args[i + 1]
            i += 2
        else:
            _fail(f"{command}: option {flag} needs a value", 2)
        caster = {"int": int, "float": float, "path": lambda s: str(Path(s)), "str": str}[opt.kind]
        try:
            options[opt.name] = caster(raw)
        except ValueError:
            _fail(f"{command}: option {flag} expects a {opt.kind}, got {raw!r}", 2)
    for opt in declared:
        options.setdefault(opt.name, opt.default)
    return options


# ---- plugins ----------------------------------------------------------------------------
@app.command("list-surveys")
def list_surveys(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the surveys the installed plugins provide, and plugins that failed to load."""
    registry = get_registry()
    rows = [
        {
            "name": e.name,
            "distribution": e.distribution,
            "version": e.version,
            "modality": e.info.modality,
            "configs": e.info.config_names(),
            "status": "ok",
            "error": None,
        }
        for e in sorted(registry.surveys.values(), key=lambda e: e.name)
    ]
    rows += [
        {
            "name": f.entry_point,
            "entry_point": f.entry_point,
            "distribution": f.distribution,
            "version": None,
            "modality": None,
            "configs": [],
            "status": "failed",
            "error": f.error,
        }
        for f in registry.failures
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="mmu surveys")
    for col in ("survey", "distribution", "modality", "configs", "status"):
        table.add_column(col, no_wrap=col != "distribution", min_width=6 if col == "status" else None)
    for r in rows:
        table.add_row(
            r["name"],
            " ".join(x for x in (r["distribution"], r["version"]) if x) or "-",
            r["modality"] or "-",
            "\n".join(r["configs"]) or "-",
            "[green]ok[/]" if r["status"] == "ok" else "[red]failed[/] (below)",
        )
    console.print(table)
    for r in rows:
        if r["status"] != "ok":  # in full, wrapped: the reason is what the user needs
            console.print(f"[red]failed[/] entry point {r['name']!r} ({r['distribution'] or '?'}):"
                          f" {r['error']}", highlight=False)
    if not rows:
        console.print("No survey plugins installed. Install one (`pip install mmu-<survey>`).")


@app.command()
def describe(
    survey: str = typer.Argument(..., help="survey name"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Describe a survey: description, configs, citation, license, options and aliases."""
    registry = get_registry()
    try:
        entry = registry.survey(survey)
        aliases = {c: registry.aliases(survey, c) for c in entry.info.config_names()}
    except MMUError as exc:
        _fail(str(exc))
    data = entry.info.model_dump(mode="json")
    data.update(distribution=entry.distribution, plugin_version=entry.version, aliases=aliases)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    info = entry.info
    console.print(f"[bold]{info.name}[/] ({info.modality}) — {entry.distribution} {entry.version or ''}")
    console.print(info.description)
    t = Table("config", "description", title="configs")
    for c in info.configs:
        t.add_row(c.name + (" (default)" if c.name == info.default_config else ""), c.description)
    console.print(t)
    for label, value in (("citation", info.citation), ("license", info.license),
                         ("homepage", info.homepage)):
        if value:
            console.print(f"[bold]{label}:[/] {value}", highlight=False)
    for kind, opts in (("build", info.build_options), ("sample", info.sample_options)):
        if opts:
            t = Table("option", "kind", "default", "help",
                      title=f"mmu {kind} {info.name} options")
            for o in opts:
                default = "-" if o.default is None or o.kind == "flag" and not o.default \
                    else str(o.default)
                t.add_row(o.flag, o.kind, default, o.help)
            console.print(t)
    if info.columns:
        t = Table("column", "description", title="native columns")
        for k, v in info.columns.items():
            t.add_row(k, v)
        console.print(t)
    for config, amap in aliases.items():
        if amap:
            t = Table("native", "standard", title=f"aliases ({config})")
            for k, v in amap.items():
                t.add_row(k, v)
            console.print(t)


@app.command(context_settings=EXTRA)
def sample(
    ctx: typer.Context,
    survey: str = typer.Argument(..., help="survey name"),
    out: Path = typer.Option(..., "--out", help="folder for the synthetic raw files"),
    n: int = typer.Option(100, "--n", help="number of objects"),
    seed: int = typer.Option(0, "--seed"),
    ra: float = typer.Option(150.0, "--ra", help="centre of the sky region, degrees"),
    dec: float = typer.Option(2.0, "--dec", help="centre of the sky region, degrees"),
    radius: str = typer.Option(
        "0.5deg", "--radius",
        help="radius of the sky region with its unit: 0.5deg, 10arcmin (a bare number is refused)"),
    like: Optional[Path] = typer.Option(
        None, "--like",
        help="a dataset or another `mmu sample` folder: half the objects are placed on its "
        "objects (and the region around them), so the two cross-match"),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="replace an earlier sample in OUT"),
) -> None:
    """Write synthetic raw files in the survey's official layout (extra options: see describe)."""
    from mmu_core.angles import to_degrees
    from mmu_core.sample_positions import RECORD_NAME, like_request, positions_of, record_sample

    registry = get_registry()
    try:
        entry = registry.survey(survey)
        options = parse_extra_options(ctx.args, entry.info.sample_options, f"mmu sample {survey}")
        request = SampleRequest(out_dir=out, n=n, seed=seed, ra=ra, dec=dec,
                                radius=to_degrees(radius, "--radius"),
                                options=options)
        if like is not None:
            request = like_request(request, positions_of(like, registry))
        if (out / RECORD_NAME).is_file():
            if not overwrite:
                _fail(f"{out} already holds a sample ({RECORD_NAME}); pass --overwrite to "
                      "replace it, or sample to another --out")
            shutil.rmtree(out)
        result = registry.sample(survey, request)
        record_sample(survey, request, result)
    except MMUError as exc:
        _fail(str(exc))
    shared = f", {len(request.positions)} on objects of {like}" if request.positions else ""
    console.print(f"wrote {len(result.files)} files, {result.n_objects} objects to {out}{shared}")
    for note in result.notes:
        console.print(f"  {note}")


def _workers_early(workers: int, scheduler: str | None) -> None:
    """A command that will run local worker processes starts their fork server first, so it
    imports the core and the plugins while this process does the same (executors)."""
    from mmu_core.executors import placement
    from mmu_core.processes import start_worker_server

    if placement(workers, scheduler) == "pool":
        start_worker_server()


@app.command(context_settings=EXTRA)
def build(
    ctx: typer.Context,
    survey: str = typer.Argument(..., help="survey name"),
    raw: Path = typer.Option(..., "--raw", help="folder of raw survey files"),
    out: Path = typer.Option(..., "--out", help="root of the stored datasets"),
    config: Optional[str] = typer.Option(None, "--config", help="survey config (default: the survey's)"),
    workers: int = typer.Option(1, "--workers", help="worker processes"),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", envvar="MMU_SCHEDULER", help="dask.distributed scheduler address"
    ),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="skip bad units of work and list them"),
    max_file_bytes: Optional[int] = typer.Option(
        None, "--max-file-bytes", help="size budget of one stored file (default about 1 GB)"
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite",
        help="rebuild a finished dataset from scratch (swapped in when complete)"),
    update: bool = typer.Option(
        False, "--update",
        help="rebuild only the units whose inputs changed and the pixels they touch"),
    compression: str = typer.Option(
        "auto", "--compression",
        help="auto (gzip where it saves >= 50%, >= 80% for rows of 16 kB+), gzip, lzf or none",
    ),
) -> None:
    """Convert raw survey files into ROOT/SURVEY/CONFIG/healpix=N/i-of-n.hdf5 (resumable)."""
    _workers_early(workers, scheduler)
    from mmu_core.build import build as run_build
    from mmu_core.progress import RichProgress

    registry = get_registry()
    try:
        entry = registry.survey(survey)
        declared = [o for o in entry.info.build_options if o.name != "skip_bad"]
        options = parse_extra_options(ctx.args, declared, f"mmu build {survey}")
        options["skip_bad"] = skip_bad
        with RichProgress(console) as progress:
            summary = run_build(
                survey, raw, out, config=config, options=options, workers=workers,
                scheduler=scheduler, max_file_bytes=max_file_bytes, compression=compression,
                registry=registry, progress=progress, overwrite=overwrite, update=update,
            )
    except MMUError as exc:
        _fail(str(exc))
    summary.print(console)


@app.command()
def validate(
    path: Path = typer.Argument(
        ..., help="a dataset folder (ROOT/SURVEY/CONFIG), or a folder holding datasets "
        "(ROOT, ROOT/SURVEY, a cross-match output): each is checked"),
    strict: bool = typer.Option(False, "--strict", help="also verify checksums"),
    full: bool = typer.Option(False, "--full",
                              help="schema-check every row's example, not a sample per file"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Check stored datasets; exit 1 listing every problem if one is invalid."""
    from mmu_core.storage import layout
    from mmu_core.validate import validate as run_validate

    folders = [path] if (not path.is_dir() or layout.is_dataset_dir(path)) \
        else layout.find_datasets(path)
    if not folders:
        _fail(f"{path}: no dataset below it (no manifest.json, no healpix=N/ folders)")
    reports = []
    try:
        for folder in folders:
            reports.append(run_validate(folder, strict=strict, full=full))
    except MMUError as exc:
        _fail(str(exc))
    if as_json:
        data = [r.to_dict() for r in reports]
        typer.echo(json.dumps(data[0] if len(data) == 1 and folders == [path] else data,
                              indent=2))
    else:
        for folder, report in zip(folders, reports, strict=True):
            if len(folders) > 1:
                console.rule(str(folder))
            report.print(console)
        if len(folders) > 1:
            bad = [f for f, r in zip(folders, reports, strict=True) if not r.ok]
            console.print(f"{len(folders) - len(bad)} of {len(folders)} datasets valid"
                          + (": invalid " + ", ".join(map(str, bad)) if bad else ""),
                          highlight=False)
    raise typer.Exit(0 if all(r.ok for r in reports) else 1)


@app.command()
def info(
    path: str = typer.Argument(..., help="a dataset folder, or a dataset's URL"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Rows, pixels, files, bytes, columns, survey, config and provenance of a dataset."""
    from mmu_core.storage.reader import open_dataset

    try:
        ds = open_dataset(path)
    except MMUError as exc:
        _fail(str(exc))
    data = ds.info()
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    console.print(f"[bold]{path}[/]: {data['survey']}/{data['config']} ({data['modality']})")
    console.print(
        f"rows {data['rows']:,}  pixels {data['n_pixels']}  files {data['n_files']}  "
        f"bytes {data['bytes']:,}"
    )
    t = Table("column", "dtype", "shape (per row)", "alias")
    for name, col in data["columns"].items():
        t.add_row(name, col["dtype"], str(tuple(col["shape"])), col.get("alias") or "")
    console.print(t)
    if data.get("absent_columns"):
        console.print(f"absent {data['modality']} columns (allowed): "
                      + ", ".join(data["absent_columns"]), highlight=False)
    if data.get("provenance"):
        console.print(f"provenance: {json.dumps(data['provenance'])}", highlight=False)


@app.command()
def preview(
    paths: list[Path] = typer.Argument(..., help="a dataset folder (several with --sky)"),
    out: Path = typer.Option(..., "--out", help="PNG file to write"),
    object_id: Optional[str] = typer.Option(None, "--id", help="object_id (default: first row; "
                                            "for a cross-match output: the match_id)"),
    sky: bool = typer.Option(False, "--sky", help="draw the sky map of every dataset given"),
) -> None:
    """Draw a row (image bands, spectrum, IFU map and spaxel, light curve, masks) or, with
    --sky, the sky coverage of one or more datasets (mmu preview --sky A B C --out sky.png)."""
    from mmu_core.previews import preview as draw

    def fail(message: str) -> None:  # one line, however long (no wrapping at the terminal)
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)

    if len(paths) > 1 and not sky:
        fail(f"a row preview draws one dataset, {len(paths)} given; several are drawn only "
             "by the sky map (--sky)")
    if sky and object_id is not None:
        fail("--id draws one row; the sky map (--sky) draws whole datasets")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such dataset folder: {', '.join(missing)}")
    try:
        written = draw(paths if sky else paths[0], out, object_id=object_id, sky=sky)
    except (MMUError, KeyError, OSError) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))
    console.print(f"wrote {written}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="folder for everything"),
    workers: int = typer.Option(1, "--workers", help="worker processes for builds"),
    scale: float = typer.Option(1.0, "--scale", help="multiply the sample sizes"),
) -> None:
    """The whole story: sample every installed survey in one sky patch, build, validate,
    cross-match, load through HuggingFace datasets, draw previews, summarise."""
    _workers_early(workers, None)
    from mmu_core.demo import run_demo

    try:
        report = run_demo(out, workers=workers, console=console, scale=scale)
    except MMUError as exc:
        _fail(str(exc))
    report.print(console)


@app.command("new-plugin")
def new_plugin(
    name: str = typer.Argument(..., help="survey name (a slug), e.g. 'sdss'"),
    modality: str = typer.Option(..., "--modality",
                                 help="image, spectrum, ifu, timeseries or segmentation"),
    dest: Path = typer.Option(Path("."), "--dest", help="folder to create mmu-NAME/ in"),
) -> None:
    """Scaffold a survey plugin package that installs and passes its own tests at once."""
    from mmu_core.scaffold import scaffold

    try:
        root = scaffold(name, modality, dest)
    except (ValueError, FileExistsError) as exc:
        _fail(str(exc))
    console.print(f"created {root}\nnext: pip install -e {root} && mmu list-surveys && "
                  f"pytest {root / 'tests'}", highlight=False)


@app.command("crossmatch")
def crossmatch(
    left: Path = typer.Argument(..., help="left dataset folder (ROOT/SURVEY/CONFIG)"),
    right: Path = typer.Argument(..., help="right dataset folder"),
    radius: str = typer.Option(
        "1arcsec", "--radius",
        help="match radius with its unit: 1arcsec, 1.5\", 0.1arcmin (a bare number is refused)"),
    how: str = typer.Option("nearest", "--how", help="nearest (one-to-one) or all (every pair)"),
    out: Path = typer.Option(..., "--out", help="output folder: catalog.parquet + matched dataset"),
    workers: int = typer.Option(1, "--workers", help="parallel workers (threads to match, "
                                "processes to write the matched dataset)"),
    catalog_only: bool = typer.Option(False, "--catalog-only",
                                      help="write catalog.parquet only, no matched dataset"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an earlier result in OUT"),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", envvar="MMU_SCHEDULER", help="dask.distributed scheduler address"
    ),
) -> None:
    """Cross-match two datasets by sky position: OUT/catalog.parquet and a matched dataset
    holding both sides' columns (namespaced by survey) in the same HEALPix layout."""
    _workers_early(workers, scheduler)
    from mmu_core.angles import to_arcsec
    from mmu_core.crossmatch import cross_match

    try:
        arcsec = to_arcsec(radius, "--radius")
        result = cross_match(left, right, out, radius_arcsec=arcsec, how=how, workers=workers,
                             scheduler=scheduler, catalog_only=catalog_only, overwrite=overwrite)
    except (MMUError, KeyError) as exc:
        _fail(str(exc))
    extra = (f" ({result.candidates:,} candidates before the one-to-one rule)"
             if how == "nearest" else "")
    console.print(f"{len(result):,} pairs within {arcsec:g}\" ({how}){extra}; "
                  f"{result.tasks} tasks, {len(result.left_pixels_read)} left and "
                  f"{len(result.right_pixels_read)} right pixels read; "
                  f"match {result.match_seconds:.1f} s, write {result.write_seconds:.1f} s",
                  highlight=False)
    console.print(f"catalog: {result.catalog_path}", highlight=False)
    if result.dataset_path is not None:
        console.print(f"matched dataset: {result.dataset_path}", highlight=False)


@app.command("concat")
def concat(
    datasets: list[Path] = typer.Argument(..., help="dataset folders of one modality"),
    out: Path = typer.Option(..., "--out", help="output dataset folder"),
    column: Optional[list[str]] = typer.Option(
        None, "--column", help="catalog column to keep (repeat; default: every shared one)"),
    workers: int = typer.Option(1, "--workers", help="worker processes"),
    new_ids: bool = typer.Option(False, "--new-ids", help="always assign new object_ids"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing OUT"),
) -> None:
    """Concatenate datasets of one modality (several surveys or configs) through their
    standard (aliased) column names into one dataset folder."""
    _workers_early(workers, None)
    from mmu_core.concat import concatenate

    try:
        ds = concatenate(datasets, out, columns=column or None, workers=workers,
                         new_ids=True if new_ids else None, overwrite=overwrite)
    except (MMUError, KeyError) as exc:
        _fail(str(exc))
    dropped = ds.manifest.extra.get("dropped_columns", {}) if ds.manifest else {}
    console.print(f"{len(ds):,} rows, {len(ds.pixels)} pixels, {len(ds.columns)} columns "
                  f"-> {ds.path}" + (f" (dropped: {', '.join(dropped)})" if dropped else ""),
                  highlight=False)


@app.command("export-hats")
def export_hats_command(
    dataset: Path = typer.Argument(..., help="a dataset folder (ROOT/SURVEY/CONFIG)"),
    out: Path = typer.Argument(..., help="output folder: a HATS collection LSDB opens"),
    columns: Optional[list[str]] = typer.Option(
        None, "--columns", help="catalog columns to write (repeat or comma-separate; default: "
        "every catalog column; object_id, ra, dec, healpix always)"),
    margin_arcsec: float = typer.Option(10.0, "--margin-arcsec",
                                        help="width of the margin catalog (0: none)"),
    arrays: bool = typer.Option(False, "--arrays",
                                help="also write the modality arrays (fixed-size lists)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing OUT"),
) -> None:
    """Export a dataset as a HATS catalog (HEALPix-partitioned Parquet with a margin) that
    lsdb.open_catalog opens."""
    from mmu_core.hats import export_hats

    try:
        result = export_hats(dataset, out, columns=columns or None, margin_arcsec=margin_arcsec,
                             arrays=arrays, overwrite=overwrite)
    except (MMUError, KeyError) as exc:
        _fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    margin = (f", margin {result.margin_rows:,} rows ({margin_arcsec:g}\")"
              if result.margin_path else "")
    console.print(f"{result.rows:,} rows in {len(result.partitions)} partitions (orders "
                  f"{', '.join(map(str, result.orders))}), {len(result.columns)} columns"
                  f"{margin} -> {result.path}", highlight=False)


@app.command("import-hats")
def import_hats_command(
    hats_dir: Path = typer.Argument(..., help="a HATS catalog or collection folder"),
    out: Path = typer.Option(..., "--out", help="root of the stored datasets"),
    survey: str = typer.Option(..., "--survey", help="survey name of the new dataset"),
    config: str = typer.Option(..., "--config", help="config name of the new dataset"),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="replace a dataset already there (swapped in when "
                                   "complete)"),
) -> None:
    """Import a HATS catalog into ROOT/SURVEY/CONFIG in the HDF5 layout (random access by id;
    resumable)."""
    from mmu_core.hats import import_hats
    from mmu_core.progress import RichProgress

    try:
        with RichProgress(console) as progress:
            result = import_hats(hats_dir, out, survey, config, overwrite=overwrite,
                                 progress=progress)
    except (MMUError, KeyError) as exc:
        _fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    if result.noop:
        console.print(f"[green]already imported[/]: {result.path} (nothing to do)")
    console.print(f"{result.rows:,} rows, {result.pixels} pixels, {result.files} files "
                  f"({result.units_converted}/{result.units} parts converted, modality "
                  f"{result.modality or 'none'}) -> {result.path}", highlight=False)


@app.command()
def publish(
    root: Path = typer.Argument(..., help="a folder of built datasets (ROOT/SURVEY/CONFIG), or "
                                "one dataset folder"),
    out: Path = typer.Argument(..., help="the dataset repository folder to write"),
    repo_id: Optional[str] = typer.Option(None, "--repo-id",
                                          help="Hub name (user/name) used in the card's examples"),
    title: Optional[str] = typer.Option(None, "--title", help="the card's title"),
    copy: bool = typer.Option(False, "--copy", help="copy the files (default: hard links where "
                              "the file system allows)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing OUT"),
    max_file_bytes: int = typer.Option(
        200 * 10**9, "--max-file-bytes", help="largest file allowed (Hub: under 200 GB)"),
    max_files_per_folder: int = typer.Option(
        10_000, "--max-files-per-folder", help="most entries per folder (Hub: 10,000)"),
    max_files_per_repo: int = typer.Option(
        100_000, "--max-files-per-repo", help="most files in OUT (Hub: under 100,000)"),
    max_repo_bytes: Optional[int] = typer.Option(
        None, "--max-repo-bytes", help="most bytes in OUT (default: no limit)"),
) -> None:
    """Write OUT: a HuggingFace dataset repository folder (data files, manifests, a dataset
    card declaring one config per dataset) that datasets.load_dataset reads without a script
    and mmu opens; then upload it with `hf upload USER/NAME OUT --repo-type dataset`."""
    from mmu_core.publish import publish as publish_folder

    try:
        result = publish_folder(root, out, repo_id=repo_id, title=title, overwrite=overwrite,
                                link=not copy, max_file_bytes=max_file_bytes,
                                max_files_per_folder=max_files_per_folder,
                                max_files_per_repo=max_files_per_repo,
                                max_repo_bytes=max_repo_bytes)
    except MMUError as exc:
        _fail(str(exc))
    for c in result.configs:
        skipped = f" (not loadable by datasets: {', '.join(c.unreadable)})" if c.unreadable else ""
        console.print(f"{c.name}: {c.rows:,} rows, {c.files:,} files from {c.source}{skipped}",
                      highlight=False)
    console.print(f"{len(result.configs)} configs, {result.files:,} files, "
                  f"{result.bytes / 1e9:,.2f} GB ({result.linked:,} hard-linked, "
                  f"{result.copied:,} copied) -> {result.path}", highlight=False)
    console.print(f"upload: hf upload {repo_id or 'USER/NAME'} {result.path} --repo-type dataset",
                  highlight=False)


@app.command("download")
def download_command(
    url: str = typer.Argument(..., help="a dataset folder at a URL (https://, http://, hf://, "
                              "s3://): ROOT/SURVEY/CONFIG as served"),
    out: Path = typer.Option(..., "--out", help="local root: the copy goes to OUT/SURVEY/CONFIG"),
    cone: Optional[tuple[float, float, str]] = typer.Option(
        None, "--cone", help="RA DEC RADIUS (degrees, degrees, an angle with its unit: 0.5deg, "
        "30arcmin): only the pixels this cone touches"),
    pixels: Optional[list[str]] = typer.Option(
        None, "--pixels", help="NSIDE-16 NESTED pixels to fetch (repeat or comma-separate)"),
    columns: Optional[list[str]] = typer.Option(
        None, "--columns", help="columns to keep (repeat or comma-separate; object_id, ra, dec, "
        "healpix always): files are rewritten locally from verified reads"),
    retries: Optional[int] = typer.Option(None, "--retries",
                                          help="retries of a failed request (default 4)"),
    timeout: Optional[float] = typer.Option(None, "--timeout",
                                            help="seconds without an answer (default 60)"),
) -> None:
    """Download a dataset (or the pixels a cone or a pixel list touches) file by file: resumed
    after an interruption, each file checked against the manifest's sha256, the manifest
    written last, so the copy opens and validates like a built dataset."""
    from mmu_core.angles import to_degrees
    from mmu_core.download import download
    from mmu_core.progress import RichProgress
    from mmu_core.storage.remote import RemoteOptions

    try:
        wanted = None if not pixels else [int(p) for v in pixels for p in v.split(",") if p]
    except ValueError:
        _fail(f"--pixels expects pixel numbers, got {' '.join(pixels)!r}", 2)
    try:
        if cone is not None:
            cone = (cone[0], cone[1], to_degrees(cone[2], "--cone radius"))
        with RichProgress(console) as progress:
            result = download(url, out, cone=cone, pixels=wanted, columns=columns or None,
                              options=RemoteOptions.from_env(retries=retries, timeout=timeout),
                              progress=progress)
    except MMUError as exc:
        _fail(str(exc))
    if result.noop:
        console.print(f"[green]already downloaded[/]: {result.path} (nothing to do)")
    console.print(f"{result.files:,} files, {result.rows:,} rows, {len(result.pixels)} pixels "
                  f"({result.downloaded} fetched, {result.present} already there, "
                  f"{result.resumed} resumed; {result.bytes_fetched / 1e6:,.1f} MB) "
                  f"-> {result.path}", highlight=False)


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def main() -> None:
    # SIGINT and SIGTERM become Interrupted (not KeyboardInterrupt, which click turns into
    # "Aborted!"): tasks stop, worker processes are terminated, one line is printed.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    debug = "--debug" in sys.argv[1:]
    if debug:
        sys.argv.remove("--debug")
    try:
        app()
    except MMUError as exc:  # last resort: never a traceback for a problem we named
        if debug:
            raise
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except Interrupted:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt this
        err.print("interrupted; rerun the same command to resume", highlight=False)
        sys.exit(130)
    except Exception as exc:  # a bug or a plugin's failure: one line; --debug shows where
        if debug:
            raise
        err.print(f"[bold red]error:[/] {type(exc).__name__}: {exc} (rerun with --debug for "
                  "the traceback)", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
