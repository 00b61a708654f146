"""The ``mmu`` command line: a thin layer over the modules it calls."""

from __future__ import annotations

import json
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
            "name": None,
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
    for col in ("survey", "distribution", "version", "modality", "configs", "status"):
        table.add_column(col)
    for r in rows:
        status = "[green]ok[/]" if r["status"] == "ok" else f"[red]failed[/]: {r['error']}"
        table.add_row(
            r["name"] or f"({r['entry_point']})",
            r["distribution"] or "-",
            r["version"] or "-",
            r["modality"] or "-",
            ", ".join(r["configs"]),
            status,
        )
    console.print(table)
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
            t = Table("option", "kind", "help", title=f"mmu {kind} {info.name} options")
            for o in opts:
                t.add_row(o.flag, o.kind, o.help)
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
    radius: float = typer.Option(0.5, "--radius", help="radius of the sky region, degrees"),
) -> None:
    """Write synthetic raw files in the survey's official layout (extra options: see describe)."""
    registry = get_registry()
    try:
        entry = registry.survey(survey)
        options = parse_extra_options(ctx.args, entry.info.sample_options, f"mmu sample {survey}")
        result = registry.sample(
            survey,
            SampleRequest(out_dir=out, n=n, seed=seed, ra=ra, dec=dec, radius=radius,
                          options=options),
        )
    except MMUError as exc:
        _fail(str(exc))
    console.print(f"wrote {len(result.files)} files, {result.n_objects} objects to {out}")
    for note in result.notes:
        console.print(f"  {note}")


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
    path: Path = typer.Argument(..., help="a dataset folder (ROOT/SURVEY/CONFIG)"),
    strict: bool = typer.Option(False, "--strict", help="also verify checksums"),
    full: bool = typer.Option(False, "--full",
                              help="schema-check every row's example, not a sample per file"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Check a stored dataset; exit 1 listing every problem if it is invalid."""
    from mmu_core.validate import validate as run_validate

    try:
        report = run_validate(path, strict=strict, full=full)
    except MMUError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        report.print(console)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def info(
    path: Path = typer.Argument(..., help="a dataset folder"),
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
    path: Path = typer.Argument(..., help="a dataset folder"),
    out: Path = typer.Option(..., "--out", help="PNG file to write"),
    object_id: Optional[str] = typer.Option(None, "--id", help="object_id (default: first row)"),
    sky: bool = typer.Option(False, "--sky", help="draw the sky map of the dataset's pixels"),
) -> None:
    """Draw a row (image bands, spectrum, IFU map and spaxel, light curve, masks) or the sky map."""
    from mmu_core.previews import preview as draw

    try:
        written = draw(path, out, object_id=object_id, sky=sky)
    except (MMUError, KeyError) as exc:
        _fail(str(exc))
    console.print(f"wrote {written}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="folder for everything"),
    workers: int = typer.Option(1, "--workers", help="worker processes for builds"),
    scale: float = typer.Option(1.0, "--scale", help="multiply the sample sizes"),
) -> None:
    """The whole story: sample every installed survey in one sky patch, build, validate,
    cross-match, load through HuggingFace datasets, draw previews, summarise."""
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
    radius: float = typer.Option(1.0, "--radius", help="match radius, arcsec"),
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
    from mmu_core.crossmatch import cross_match

    try:
        result = cross_match(left, right, out, radius_arcsec=radius, how=how, workers=workers,
                             scheduler=scheduler, catalog_only=catalog_only, overwrite=overwrite)
    except (MMUError, KeyError) as exc:
        _fail(str(exc))
    extra = (f" ({result.candidates:,} candidates before the one-to-one rule)"
             if how == "nearest" else "")
    console.print(f"{len(result):,} pairs within {radius}\" ({how}){extra}; "
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


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def main() -> None:
    # SIGINT and SIGTERM become Interrupted (not KeyboardInterrupt, which click turns into
    # "Aborted!"): tasks stop, worker processes are terminated, one line is printed.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except MMUError as exc:  # last resort: never a traceback for a problem we named
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except Interrupted:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt this
        err.print("interrupted; rerun the same command to resume", highlight=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
