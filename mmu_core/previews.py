"""``mmu preview``: pictures of stored rows and of a dataset's sky coverage (matplotlib).

A row is drawn by its modality's ``preview`` (the ``ModalitySpec`` in ``mmu_core.schemas``):
image bands and a composite, a spectrum with its errors, an IFU map and spaxel, light curves,
segmentation masks over their image. A matched dataset gets one row of panels per side. The
title shows the object id, its position and the catalog values the survey declared worth
showing (``SurveyInfo.preview_columns``, kept in the manifest) or that carry a standard name
such as ``z``. ``sky=True`` draws a HEALPix Mollweide map of the rows per pixel, and a zoom.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mmu_core.schemas import MATCHED, get_modality  # noqa: E402
from mmu_core.schemas.common import decode  # noqa: E402
from mmu_core.storage.reader import Dataset, open_dataset  # noqa: E402

NCOLS = 6  # panels per row of the figure; each modality's preview lays its own out in them
TITLE_STANDARD_NAMES = ("z",)  # standard catalog names shown in the title when present


def preview(path: Path | str, out: Path | str, object_id: Any = None, sky: bool = False) -> Path:
    """Draw one row (``object_id``, default: the first row) or the sky map to ``out`` (PNG)."""
    ds = open_dataset(path)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if sky:
        fig = _sky(ds)
    else:
        if object_id is None:
            object_id = next(ds.iter_batches(batch_size=1, columns=["object_id"]))["object_id"][0]
        elif ds.schema["object_id"].np_dtype.kind in "iu":
            object_id = int(object_id)
        row = {k: v[0] for k, v in ds.get([object_id]).items()}
        fig = _row_figure(ds, row)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def _sides(ds: Dataset, row: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """[(title, modality, row with un-namespaced columns)]."""
    if ds.modality != MATCHED:
        return [(f"{ds.survey}/{ds.config}" + _labels(ds, row), ds.modality or "", row)]
    sides = []
    for name, info in ds.sides().items():
        sub = {k[len(name) + 1 :]: v for k, v in row.items() if k.startswith(name + ".")}
        sides.append((name, info.get("modality") or "", sub))
    return sides


def _labels(ds: Dataset, row: dict[str, Any]) -> str:
    """The catalog values a title shows: the survey's declared preview columns (manifest),
    then standard names such as ``z``, each once."""
    names = ds.standard_names()
    shown: dict[str, Any] = {}
    for column in (ds.manifest.preview_columns if ds.manifest else []):
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
    return ("  " + ", ".join(parts)) if parts else ""


def _row_figure(ds: Dataset, row: dict[str, Any]):
    sides = _sides(ds, row)
    fig = plt.figure(figsize=(3.2 * NCOLS, 3.4 * len(sides)))
    oid = decode(row["object_id"])
    fig.suptitle(f"{ds.survey}/{ds.config} — object {oid}  (ra {row['ra']:.5f}, dec {row['dec']:.5f})")
    for i, (title, modality, sub) in enumerate(sides):
        if not modality:
            continue
        get_modality(modality).preview(fig, i, len(sides), NCOLS, sub, title)
    return fig


def _sky(ds: Dataset):
    import healpy

    from mmu_core.storage import layout

    counts = np.zeros(layout.NPIX)
    if ds.manifest is not None:
        for f in ds.manifest.files:
            counts[f.pixel] += f.rows
    else:
        for batch in ds.iter_batches(batch_size=1 << 16, columns=["healpix"]):
            np.add.at(counts, batch["healpix"], 1)
    shown = np.where(counts > 0, counts, healpy.UNSEEN)
    fig = plt.figure(figsize=(13, 4.5))
    healpy.mollview(shown, nest=True, fig=fig.number, sub=(1, 2, 1), unit="rows per pixel",
                    title=f"{ds.survey}/{ds.config}: {len(ds):,} rows in {len(ds.pixels)} pixels")
    healpy.graticule(dpar=30, dmer=60, alpha=0.3)
    lon, lat = healpy.pix2ang(layout.NSIDE, np.flatnonzero(counts), nest=True, lonlat=True)
    centre = (float(np.degrees(np.angle(np.exp(1j * np.radians(lon)).mean()))) % 360,
              float(np.mean(lat)))
    healpy.gnomview(shown, nest=True, rot=centre, fig=fig.number, sub=(1, 2, 2), reso=6,
                    xsize=300, title="zoom on the occupied pixels", unit="rows per pixel")
    return fig
