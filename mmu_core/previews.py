"""``mmu preview``: pictures of stored rows and of datasets' sky coverage (matplotlib).

A row is drawn by its modality's ``preview`` (the ``ModalitySpec`` in ``mmu_core.schemas``):
image bands and a composite, a spectrum with its errors, an IFU map and spaxel, light curves,
segmentation masks over their image. Each side of the figure is a matplotlib subfigure, so a
matched dataset (a cross-match output) gets one band of panels per side, titled by that
side's object id. The figure's title names the object (for a match: the match id, both
sides' ids and their separation), its position, and the catalog values the survey declared
worth showing (``SurveyInfo.preview_columns``, kept in the manifest) or that carry a standard
name such as ``z``. Layouts are constrained, so titles, labels and colour bars never overlap.

Units: a modality's preview is given the units the dataset records for its columns (a
``unit`` entry of a column in the manifest) and falls back to units stored in the rows
(``image_units``, ``ifu_image_units``) and then to the modality's documented unit.

The sky map (:func:`draw_sky`, ``mmu preview --sky A B C``) shows any number of datasets: a
Mollweide view of the rows per HEALPix pixel (NSIDE 16, the files' partition) with each
dataset's pixels marked by its own colour and marker, and a zoom on the area the rows cover,
in RA/Dec, with the rows per finer HEALPix pixel and the objects themselves.

``draw_row`` and ``draw_sky`` return the matplotlib Figure; ``preview`` and ``preview_sky``
write it to a PNG file.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mmu_core.errors import MMUError  # noqa: E402
from mmu_core.schemas import MATCHED, get_modality  # noqa: E402
from mmu_core.schemas.common import decode  # noqa: E402
from mmu_core.storage.reader import Dataset, open_dataset  # noqa: E402

NCOLS = 6  # panels per row of the figure; each modality's preview lays its own out in them
PANEL_WIDTH, SIDE_HEIGHT = 3.3, 3.9  # inches: one panel, one side (one row of panels)
TITLE_STANDARD_NAMES = ("z",)  # standard catalog names shown in the title when present
DPI = 110
SKY_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
SKY_SCATTER_MAX = 3000  # objects drawn per dataset in the zoom (a random subset above that)
ZOOM_PIXELS_ACROSS = 30  # the zoom's density map has about this many HEALPix pixels across,
ZOOM_MIN_ACROSS = 6  # and no fewer than this while trying to hold
ZOOM_MIN_COUNT = 4  # this many rows per occupied pixel on average


class PreviewError(MMUError):
    """A preview cannot be drawn: names the dataset and what is wrong (a bad ``--id``...)."""


# ---- one row --------------------------------------------------------------------------------
def preview(path: Path | str | Dataset | Sequence[Path | str], out: Path | str, object_id: Any = None,
            sky: bool = False) -> Path:
    """Draw one row (``object_id``, default: the first row) or, with ``sky=True``, the sky
    map of ``path`` (one dataset or a list of them) to ``out`` (PNG); returns ``out``."""
    if sky:
        return preview_sky(path, out)
    if not isinstance(path, (str, Path, Dataset)):
        raise PreviewError("a row preview draws one dataset; several are drawn only by the "
                           "sky map (sky=True, mmu preview --sky)")
    return save_png(draw_row(path, object_id), out)


def draw_row(path: Path | str | Dataset, object_id: Any = None):
    """The figure of one row (``object_id``, default: the first row); bad ids raise
    :class:`PreviewError` naming the dataset and the id."""
    ds = path if isinstance(path, Dataset) else open_dataset(path)
    row = _read_row(ds, object_id)
    return _row_figure(ds, row)


def _read_row(ds: Dataset, object_id: Any) -> dict[str, Any]:
    what = f"{ds.path}"
    if len(ds) == 0:
        raise PreviewError(f"{what}: the dataset has no rows to draw")
    if object_id is None:
        object_id = next(ds.iter_batches(batch_size=1, columns=["object_id"]))["object_id"][0]
    else:
        object_id = _parse_id(ds, object_id)
    try:
        got = ds.get([object_id])
    except KeyError:
        hint = (" (a matched dataset's object_id is the match_id of catalog.parquet)"
                if ds.modality == MATCHED else "")
        first = next(ds.iter_batches(batch_size=3, columns=["object_id"]))["object_id"]
        examples = ", ".join(str(decode(v)) for v in first)
        raise PreviewError(f"{what}: no object_id {decode(object_id)!s}{hint}; the first ids are "
                           f"{examples}") from None
    return {k: v[0] for k, v in got.items()}


def _parse_id(ds: Dataset, object_id: Any) -> Any:
    kind = ds.schema["object_id"].np_dtype.kind
    if kind in "iu":
        try:
            return int(str(object_id).strip())
        except ValueError:
            raise PreviewError(f"{ds.path}: object_id {object_id!r} is not an integer, and this "
                               "dataset's object_ids are integers") from None
    return str(object_id)


def save_png(fig: Any, out: Path | str) -> Path:
    """Write a preview figure to ``out`` (PNG, parent folders made) and close it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=DPI)
    finally:
        plt.close(fig)
    return out


class _Side:
    """One side of a row figure: its label, modality, row (un-namespaced), recorded units."""

    def __init__(self, name: str, modality: str, row: dict[str, Any], units: dict[str, str],
                 title: str):
        self.name, self.modality, self.row, self.units, self.title = (
            name, modality, row, units, title)


def _sides(ds: Dataset, row: dict[str, Any]) -> list[_Side]:
    names = ds.standard_names()
    if ds.modality != MATCHED:
        labels = _labels(row, ds.manifest.preview_columns if ds.manifest else [], names)
        return [_Side(f"{ds.survey}/{ds.config}", ds.modality or "", row, _recorded_units(ds),
                      f"{ds.survey}/{ds.config} object {decode(row['object_id'])} at "
                      f"{_position(row)}{labels}")]
    sides = []
    units = _recorded_units(ds)
    for ns, info in ds.sides().items():
        cut = len(ns) + 1
        sub = {k[cut:]: v for k, v in row.items() if k.startswith(ns + ".")}
        side_names = {k[cut:]: v[cut:] for k, v in names.items() if k.startswith(ns + ".")}
        side_units = {k[cut:]: v for k, v in units.items() if k.startswith(ns + ".")}
        survey = f"{info.get('survey', ns)}/{info.get('config', '?')}"
        labels = _labels(sub, _source_preview_columns(info), side_names)
        oid = decode(sub["object_id"]) if "object_id" in sub else "?"
        where = f" at {_position(sub)}" if "ra" in sub and "dec" in sub else ""
        sides.append(_Side(ns, info.get("modality") or "", sub, side_units,
                           f"{ns}: {survey} object {oid}{where}{labels}"))
    return sides


def _recorded_units(ds: Dataset) -> dict[str, str]:
    """column -> unit the dataset records in its manifest's column entries (``unit``)."""
    if ds.manifest is None:
        return {}
    out = {}
    for name, meta in ds.manifest.columns.items():
        unit = meta.get("unit") or meta.get("units") if isinstance(meta, dict) else None
        if isinstance(unit, str) and unit.strip():
            out[name] = unit.strip()
    return out


def _source_preview_columns(info: dict[str, Any]) -> list[str]:
    """The preview columns a matched side's source dataset declared (its manifest, when the
    source is still where the cross-match found it)."""
    from mmu_core.storage.manifest import manifest_path

    try:
        return list(json.loads(manifest_path(Path(info["path"])).read_text())
                    .get("preview_columns", []))
    except (KeyError, OSError, ValueError, TypeError):
        return []


def _labels(row: dict[str, Any], preview_columns: list[str], names: dict[str, str]) -> str:
    """The catalog values a title shows: the survey's declared preview columns (manifest),
    then standard names such as ``z``, each once."""
    shown: dict[str, Any] = {}
    for column in preview_columns:
        if column in row:
            shown[names.get(column, column)] = row[column]
    for column, value in row.items():
        standard = names.get(column, column)
        if standard in TITLE_STANDARD_NAMES and standard not in shown:
            shown[standard] = value
    parts = []
    for label, value in shown.items():
        value = decode(value)
        if isinstance(value, (float, np.floating)):
            value = f"{float(value):.4f}"
        if value not in ("", None):
            parts.append(f"{label} = {value}")
    return ("  (" + ", ".join(parts) + ")") if parts else ""


def _position(row: dict[str, Any]) -> str:
    return f"RA {float(row['ra']):.5f}°, Dec {float(row['dec']):+.5f}°"


def _figure_title(ds: Dataset, row: dict[str, Any], sides: list[_Side]) -> str:
    oid = decode(row["object_id"])
    if ds.modality != MATCHED:
        return sides[0].title
    ids = " × ".join(f"{s.name} {decode(s.row['object_id'])}" for s in sides
                     if "object_id" in s.row)
    sep = row.get("separation_arcsec")
    sep_text = f", separation {float(sep):.3f}″" if sep is not None else ""
    return f"{ds.survey}/{ds.config} match {oid}: {ids}{sep_text}"


def _row_figure(ds: Dataset, row: dict[str, Any]):
    sides = _sides(ds, row)
    fig = plt.figure(figsize=(PANEL_WIDTH * NCOLS, SIDE_HEIGHT * len(sides) + 0.4),
                     layout="constrained")
    fig.suptitle(_figure_title(ds, row, sides), fontsize=13)
    subfigs = fig.subfigures(len(sides), 1, squeeze=False)[:, 0]
    for sub, side in zip(subfigs, sides, strict=True):
        if len(sides) > 1:
            sub.suptitle(side.title, fontsize=11, x=0.01, ha="left")
        if not side.modality:
            continue
        _call_preview(get_modality(side.modality).preview, sub, side)
    return fig


def _call_preview(draw: Any, fig: Any, side: _Side) -> None:
    """A modality's ``preview(fig, i, nrows, ncols, row, title)``, given ``units=`` when it
    takes them."""
    params = inspect.signature(draw).parameters
    takes_units = "units" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {"units": side.units} if takes_units else {}
    draw(fig, 0, 1, NCOLS, side.row, side.title, **kwargs)


# ---- the sky map ----------------------------------------------------------------------------
def preview_sky(paths: Sequence[Path | str] | Path | str, out: Path | str) -> Path:
    """Draw the sky map of every dataset in ``paths`` (:func:`draw_sky`) to ``out`` (PNG)."""
    return save_png(draw_sky(paths), out)


def draw_sky(paths: Sequence[Path | str | Dataset] | Path | str):
    """Sky coverage of one or more datasets: a Mollweide map of the rows per NSIDE-16 HEALPix
    pixel (all datasets together; each dataset's pixels marked in its colour and marker, named
    in the legend) beside a zoom on the covered area with RA/Dec axes, the rows per finer
    HEALPix pixel and the objects of each dataset."""
    from mmu_core.storage import layout

    items = [paths] if isinstance(paths, (str, Path, Dataset)) else list(paths)
    if not items:
        raise PreviewError("the sky map needs at least one dataset")
    datasets = [p if isinstance(p, Dataset) else open_dataset(p) for p in items]
    names = _dataset_names(datasets)
    counts = [_pixel_counts(ds) for ds in datasets]
    positions = [_positions(ds) for ds in datasets]
    total = np.sum(counts, axis=0)
    if not total.any():
        raise PreviewError(f"{', '.join(str(d.path) for d in datasets)}: no rows to map")
    colors = [f"C{k % 10}" for k in range(len(datasets))]
    markers = [SKY_MARKERS[k % len(SKY_MARKERS)] for k in range(len(datasets))]

    fig = plt.figure(figsize=(16, 6.2), layout="constrained")
    rows, pixels = int(total.sum()), int(np.count_nonzero(total))
    fig.suptitle(f"sky coverage of {_plural(len(datasets), 'dataset')}: "
                 f"{rows:,} rows in {_plural(pixels, 'HEALPix pixel')} "
                 f"(NSIDE {layout.NSIDE}, NESTED)", fontsize=13)
    grid = fig.add_gridspec(1, 2, width_ratios=[1.55, 1])
    ax = fig.add_subplot(grid[0], projection="mollweide")
    _mollweide(fig, ax, total, counts, colors, markers)
    zoom = fig.add_subplot(grid[1])
    _zoom(fig, zoom, positions, counts, colors, markers)
    handles = [plt.Line2D([], [], ls="", marker=m, mfc="none", mec=c, mew=1.5, ms=8,
                          label=f"{name}: {len(ds):,} rows, "
                                f"{_plural(int(np.count_nonzero(n)), 'pixel')}")
               for ds, name, n, c, m in zip(datasets, names, counts, colors, markers, strict=True)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3),
               fontsize=10, title="datasets")
    return fig


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _dataset_names(datasets: list[Dataset]) -> list[str]:
    names = [f"{ds.survey}/{ds.config}" for ds in datasets]
    return [n if names.count(n) == 1 else f"{n} ({ds.path})" for n, ds in zip(names, datasets,
                                                                             strict=True)]


def _pixel_counts(ds: Dataset) -> np.ndarray:
    from mmu_core.storage import layout

    counts = np.zeros(layout.NPIX, np.int64)
    if ds.manifest is not None:
        for f in ds.manifest.files:
            counts[f.pixel] += f.rows
    else:
        for batch in ds.iter_batches(batch_size=1 << 16, columns=["healpix"]):
            np.add.at(counts, batch["healpix"], 1)
    return counts


def _positions(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Every row's (ra, dec): the positions sidecar when the dataset has one."""
    from mmu_core.storage.index import load_positions

    pos = load_positions(ds.path)
    if pos is not None:
        return np.asarray(pos[1], float), np.asarray(pos[2], float)
    ra, dec = [], []
    for batch in ds.iter_batches(batch_size=1 << 16, columns=["ra", "dec"]):
        ra.append(batch["ra"])
        dec.append(batch["dec"])
    return (np.concatenate(ra).astype(float), np.concatenate(dec).astype(float)) if ra else (
        np.zeros(0), np.zeros(0))


def _count_norm(values: np.ndarray):
    """Linear from 0 for counts of similar size (one pixel: 0 to its count), logarithmic when
    they span more than two decades."""
    from matplotlib.colors import LogNorm, Normalize

    positive = values[values > 0]
    lo, hi = float(positive.min()), float(positive.max())
    if hi / lo > 100:
        return LogNorm(vmin=lo, vmax=hi)
    return Normalize(vmin=0, vmax=hi)


def _mollweide(fig: Any, ax: Any, total: np.ndarray, counts: list[np.ndarray],
               colors: list[str], markers: list[str]) -> None:
    """Rows per NSIDE-16 pixel on a Mollweide axes, RA increasing to the left (RA 0 in the
    middle), each dataset's pixels marked at their centres."""
    import healpy
    from matplotlib.ticker import FuncFormatter

    from mmu_core.storage import layout

    lon = np.linspace(-np.pi, np.pi, 721)
    lat = np.linspace(-np.pi / 2, np.pi / 2, 361)
    clon, clat = np.meshgrid((lon[:-1] + lon[1:]) / 2, (lat[:-1] + lat[1:]) / 2)
    ra = np.degrees(-clon) % 360
    pix = healpy.ang2pix(layout.NSIDE, ra, np.degrees(clat), nest=True, lonlat=True)
    values = np.ma.masked_equal(total[pix].astype(float), 0)
    mesh = ax.pcolormesh(lon, lat, values, cmap="viridis", norm=_count_norm(total),
                         shading="flat", rasterized=True)
    ax.set_facecolor("0.93")
    ax.grid(True, color="0.6", lw=0.5, alpha=0.7)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{np.degrees(-x) % 360:.0f}°"))
    ax.tick_params(axis="x", labelsize=8, colors="0.3")
    ax.set_xlabel("RA")
    ax.set_ylabel("Dec")
    ax.set_yticks(np.radians([-60, -30, 0, 30, 60]))
    ax.set_title("all sky (equatorial, Mollweide; RA increases to the left)", fontsize=11,
                 pad=12)
    for n, c, m in zip(counts, colors, markers, strict=True):
        occupied = np.flatnonzero(n)
        pra, pdec = healpy.pix2ang(layout.NSIDE, occupied, nest=True, lonlat=True)
        x = -np.radians((pra + 180) % 360 - 180)
        ax.plot(x, np.radians(pdec), ls="", marker=m, mfc="none", mec=c, mew=1.2,
                ms=9 if len(occupied) <= 3 else 5)
    area = healpy.nside2pixarea(layout.NSIDE, degrees=True)
    fig.colorbar(mesh, ax=ax, orientation="horizontal", shrink=0.6, pad=0.02,
                 label=f"rows per HEALPix pixel (NSIDE {layout.NSIDE}, {area:.1f} deg²)"
                       + (", all datasets" if len(counts) > 1 else ""))


def _zoom(fig: Any, ax: Any, positions: list[tuple[np.ndarray, np.ndarray]],
          counts: list[np.ndarray], colors: list[str], markers: list[str]) -> None:
    """The covered area in RA/Dec (true angles: the RA axis scaled by cos Dec): rows per
    HEALPix pixel at an NSIDE giving about :data:`ZOOM_PIXELS_ACROSS` pixels across, the
    NSIDE-16 partition pixels outlined, each dataset's objects in its colour and marker."""
    import healpy
    from matplotlib.ticker import FuncFormatter

    from mmu_core.storage import layout

    total = np.sum(counts, axis=0)
    areas = _connected_areas(np.flatnonzero(total))
    fullest = max(areas, key=lambda a: int(total[a].sum()))
    chosen = np.zeros(layout.NPIX, bool)
    chosen[fullest] = True
    positions = [(r[k], d[k]) for r, d in positions
                 for k in [chosen[healpy.ang2pix(layout.NSIDE, r, d, nest=True, lonlat=True)]]]
    ra = np.concatenate([p[0] for p in positions])
    dec = np.concatenate([p[1] for p in positions])
    ra_c = float(np.degrees(np.angle(np.exp(1j * np.radians(ra)).mean()))) % 360
    rel = (ra - ra_c + 180) % 360 - 180  # RA relative to the centre, no wrap inside the zoom
    cosd = max(np.cos(np.radians(np.clip(np.median(dec), -89.0, 89.0))), 0.05)
    x0, x1 = float(rel.min()), float(rel.max())
    y0, y1 = float(dec.min()), float(dec.max())
    half = max((x1 - x0) * cosd, y1 - y0, 1 / 60) / 2 * 1.12  # degrees on the sky, >= 1'
    xc, yc = (x0 + x1) / 2, (y0 + y1) / 2
    xlim, ylim = (xc - half / cosd, xc + half / cosd), (max(yc - half, -90), min(yc + half, 90))

    # rows per finer HEALPix pixel, rendered on a raster of the zoom: about
    # ZOOM_PIXELS_ACROSS pixels across, fewer (down to ZOOM_MIN_ACROSS) while the occupied
    # pixels hold fewer than ZOOM_MIN_COUNT rows on average, so the colours show a density
    nside = _zoom_nside(ra, dec, 2 * half)
    fine = healpy.ang2pix(nside, ra, dec, nest=True, lonlat=True)
    uniq, n_per = np.unique(fine, return_counts=True)
    gx = np.linspace(*xlim, 301)
    gy = np.linspace(*ylim, 301)
    cx, cy = np.meshgrid((gx[:-1] + gx[1:]) / 2, (gy[:-1] + gy[1:]) / 2)
    gpix = healpy.ang2pix(nside, (cx + ra_c) % 360, cy, nest=True, lonlat=True)
    at = np.clip(np.searchsorted(uniq, gpix), 0, len(uniq) - 1)
    grid = np.where(uniq[at] == gpix, n_per[at], 0).astype(float)
    mesh = ax.pcolormesh(gx, gy, np.ma.masked_equal(grid, 0), cmap="Greys",
                         norm=_count_norm(n_per.astype(float)), shading="flat", alpha=0.7,
                         rasterized=True)
    res = healpy.nside2resol(nside, arcmin=True)
    fig.colorbar(mesh, ax=ax, orientation="horizontal", shrink=0.85, pad=0.02,
                 label=f"rows per HEALPix pixel (NSIDE {nside:,}, {res:.2g}′ across)"
                       + (", all datasets" if len(positions) > 1 else ""))

    # the partition pixels of the files, outlined where they cross the zoom
    occupied = np.flatnonzero(np.sum(counts, axis=0))
    outlined = False
    for p in occupied[:500]:
        bra, bdec = healpy.vec2ang(healpy.boundaries(layout.NSIDE, int(p), step=16,
                                                     nest=True).T, lonlat=True)
        brel = (bra - ra_c + 180) % 360 - 180
        inside = ((brel > xlim[0]) & (brel < xlim[1]) & (bdec > ylim[0]) & (bdec < ylim[1]))
        if not inside.any():
            continue
        ax.plot(np.r_[brel, brel[:1]], np.r_[bdec, bdec[:1]], color="0.4", lw=0.8, ls="--",
                label=None if outlined else f"NSIDE-{layout.NSIDE} pixel (file partition)")
        outlined = True

    rng = np.random.default_rng(0)
    shown = sum(min(len(p[0]), SKY_SCATTER_MAX) for p in positions)
    size = float(np.clip(3000 / max(shown, 1), 2, 14))  # smaller markers for crowded zooms
    for (pra, pdec), c, m in zip(positions, colors, markers, strict=True):
        keep = (rng.choice(len(pra), SKY_SCATTER_MAX, replace=False) if len(pra) > SKY_SCATTER_MAX
                else slice(None))
        ax.scatter(((pra - ra_c + 180) % 360 - 180)[keep], pdec[keep], s=size, marker=m,
                   facecolors="none", edgecolors=c, linewidths=0.8 if size > 5 else 0.5)
    ax.set_xlim(xlim[1], xlim[0])  # RA increases to the left
    ax.set_ylim(*ylim)
    ax.set_aspect(1 / cosd)
    decimals = max(0, int(np.ceil(-np.log10(2 * half / cosd / 6))))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{(x + ra_c) % 360:.{decimals}f}"))
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_xlabel("RA [deg]")
    ax.set_ylabel("Dec [deg]")
    across = _angle(2 * half)
    if len(areas) == 1:
        ax.set_title(f"zoom on the covered area ({across} across)", fontsize=11)
    else:
        ax.set_title(f"zoom on the fullest of {len(areas)} separate areas\n{len(ra):,} of "
                     f"{int(total.sum()):,} rows, {across} across", fontsize=11)
    if outlined:
        ax.legend(loc="upper right", fontsize=8)


def _angle(deg: float) -> str:
    if deg >= 1:
        return f"{deg:.3g}°"
    return f"{deg * 60:.3g}′" if deg * 60 >= 1 else f"{deg * 3600:.3g}″"


def _connected_areas(pixels: np.ndarray) -> list[np.ndarray]:
    """The occupied NSIDE-16 pixels grouped into areas of pixels touching each other (sides
    or corners)."""
    import healpy

    from mmu_core.storage import layout

    left = set(int(p) for p in pixels)
    areas = []
    while left:
        todo = [left.pop()]
        area = list(todo)
        while todo:
            near = healpy.get_all_neighbours(layout.NSIDE, np.array(todo), nest=True).ravel()
            todo = [int(p) for p in near if int(p) in left]
            left.difference_update(todo)
            area += todo
        areas.append(np.array(sorted(area)))
    return areas


def _zoom_nside(ra: np.ndarray, dec: np.ndarray, width_deg: float) -> int:
    """The NSIDE of the zoom's density map (see :func:`_zoom`)."""
    import healpy

    from mmu_core.storage import layout

    nside = layout.NSIDE
    while nside < 2**20 and (healpy.nside2resol(nside, arcmin=True) / 60
                             > width_deg / ZOOM_PIXELS_ACROSS):
        nside *= 2
    while nside > layout.NSIDE:
        across = width_deg * 60 / healpy.nside2resol(nside, arcmin=True)
        occupied = len(np.unique(healpy.ang2pix(nside, ra, dec, nest=True, lonlat=True)))
        if len(ra) / occupied >= ZOOM_MIN_COUNT or across / 2 < ZOOM_MIN_ACROSS:
            break
        nside //= 2
    return nside
