"""IFU cubes, stored as flat per-galaxy columns padded to a fixed spaxel grid.

Stored columns (S = padded grid size, 96 for MaNGA; L = wavelengths; K = image channels):

- ``ifu_flux``, ``ifu_ivar``, ``ifu_lsf_sigma`` (N,S,S,L) float32, spaxel-major (y, x, λ)
  so one spaxel's spectrum is contiguous; ``ifu_mask`` (N,S,S,L) int32 native quality bits,
  padding carries the survey's DONOTUSE bit;
- ``ifu_lambda`` (N,L) float32; ``ifu_spaxel_size`` (N,) float32 arcsec;
- ``ifu_offset`` (N,2) int32 and ``ifu_size`` (N,2) int32: the (y, x) corner and (ny, nx)
  size of the original cube inside the padded grid;
- ``ifu_image_data``, ``ifu_image_ivar`` (N,K,S,S) float32, ``ifu_image_mask`` (N,K,S,S)
  int32 native bits (padding = DONOTUSE), ``ifu_image_label``, ``ifu_image_filter``,
  ``ifu_image_units`` (N,K) strings: reconstructed broadband images, PSFs and analysis maps.

The logical example (docs/examples.md) has ``spaxels`` — one record per spaxel of the
original cube with ``flux``, ``ivar``, ``lsf_sigma``, ``lambda``, ``mask`` and its ``x``, ``y``
in the original cube — and ``images``, one record per channel with ``label``, ``filter``,
``units``, ``data``, ``ivar``, ``mask`` cropped to the original size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mmu_core.schemas.common import Array, CommonFields, decode
from mmu_core.schemas.plotting import (
    SkyAxes,
    label_with_unit,
    pixel_scale,
    sigma_from_ivar,
    unit_of,
)
from mmu_core.schemas.spec import ModalitySpec
from mmu_core.schemas.spectrum import Spectrum

PREFIX = "ifu_"
REQUIRED = ("flux", "ivar", "mask", "lambda", "spaxel_size", "offset", "size")
CUBES = ("flux", "ivar", "lsf_sigma", "mask")
# the flux unit of cubes unless a dataset records another (MaNGA LOGCUBEs' BUNIT)
FLUX_UNIT = "10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹ spaxel⁻¹"
NO_DATA_COLOR = "0.75"  # map pixels without information


class Spaxel(Spectrum):
    """One spaxel's spectrum (the spectrum checks apply) and its place in the original cube."""

    x: int
    y: int


class IFUImage(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    label: str
    filter: str | None = None
    units: str | None = None
    data: Array
    ivar: Array | None = None
    mask: Array | None = None


class IFUExample(CommonFields):
    spaxel_size: float
    spaxels: list[Spaxel]
    images: list[IFUImage] = Field(default_factory=list)


def example_from_row(
    row: dict[str, Any], prefix: str = PREFIX, with_spaxels: bool = True
) -> dict[str, Any]:
    y0, x0 = (int(v) for v in row[prefix + "offset"])
    ny, nx = (int(v) for v in row[prefix + "size"])
    out: dict[str, Any] = {"spaxel_size": float(row[prefix + "spaxel_size"])}
    if with_spaxels:
        lam = row[prefix + "lambda"]
        spaxels = []
        for y in range(ny):
            for x in range(nx):
                sp = {k: row[prefix + k][y0 + y, x0 + x] for k in CUBES if prefix + k in row}
                sp.update({"lambda": lam, "x": x, "y": y})
                spaxels.append(sp)
        out["spaxels"] = spaxels
    images = []
    if prefix + "image_data" in row:
        for k in range(row[prefix + "image_data"].shape[0]):
            img = {
                "label": decode(row[prefix + "image_label"][k]),
                "filter": decode(row[prefix + "image_filter"][k]) if prefix + "image_filter" in row else None,
                "units": decode(row[prefix + "image_units"][k]) if prefix + "image_units" in row else None,
            }
            for key in ("data", "ivar", "mask"):
                if prefix + "image_" + key in row:
                    img[key] = row[prefix + "image_" + key][k, y0 : y0 + ny, x0 : x0 + nx]
            images.append(img)
    out["images"] = images
    return out


def example_columns(block: dict[str, Any], prefix: str = PREFIX,
                    with_spaxels: bool = True) -> dict[str, Any]:
    """:func:`example_from_row` for a block of rows at once: the spaxels of every original
    cube gathered by fancy indexing, the images cropped row by row (one slice per row)."""
    from mmu_core.schemas.features import Ragged

    off = np.asarray(block[prefix + "offset"], np.int64)
    size = np.asarray(block[prefix + "size"], np.int64)
    n = len(off)
    out: dict[str, Any] = {"spaxel_size": block[prefix + "spaxel_size"]}
    if with_spaxels:
        counts = size[:, 0] * size[:, 1]
        rows = np.repeat(np.arange(n), counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        local = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
        nx = np.repeat(size[:, 1], counts)
        y, x = local // nx, local % nx  # y outer, x inner, as example_from_row
        gy, gx = y + np.repeat(off[:, 0], counts), x + np.repeat(off[:, 1], counts)
        spaxel = {k: block[prefix + k][rows, gy, gx] for k in CUBES if prefix + k in block}
        spaxel.update({"lambda": block[prefix + "lambda"][rows], "x": x, "y": y})
        out["spaxels"] = Ragged.from_lengths(counts, spaxel)
    if prefix + "image_data" not in block:
        out["images"] = Ragged.from_lengths(np.zeros(n, np.int64),
                                            {"label": np.empty(0, "S1"), "filter": None,
                                             "units": None})
        return out
    k = block[prefix + "image_data"].shape[1]
    image: dict[str, Any] = {}
    for key in ("label", "filter", "units"):
        name = prefix + "image_" + key
        image[key] = None if name not in block else np.asarray(block[name]).reshape(n * k)
    ny, nx = np.repeat(size[:, 0], k), np.repeat(size[:, 1], k)  # per image
    for key in ("data", "ivar", "mask"):
        name = prefix + "image_" + key
        if name not in block:
            continue
        flat = np.concatenate([
            block[name][i, :, y0 : y0 + h, x0 : x0 + w].reshape(-1)
            for i, ((y0, x0), (h, w)) in enumerate(zip(off.tolist(), size.tolist(), strict=True))])
        lines = Ragged.from_lengths(np.repeat(nx, ny), flat)  # each image's ny lines of nx
        image[key] = Ragged.from_lengths(ny, lines)
    out["images"] = Ragged.from_lengths(np.full(n, k, np.int64), image)
    return out


def check_columns(shapes: dict[str, tuple], prefix: str = PREFIX) -> list[str]:
    problems = [f"missing column {prefix}{c}" for c in REQUIRED if prefix + c not in shapes]
    cubes = {prefix + k: shapes[prefix + k] for k in CUBES if prefix + k in shapes}
    if len(set(cubes.values())) > 1:
        problems.append(f"IFU cube columns must all be (S, S, L) per row, got {cubes}")
    flux = shapes.get(prefix + "flux")
    lam = shapes.get(prefix + "lambda")
    if flux is not None and lam is not None and (len(flux) != 3 or flux[-1:] != lam):
        problems.append(f"{prefix}flux rows {flux} must be (S, S, L) with L = len(lambda) {lam}")
    return problems


def check_row(row: dict[str, Any], prefix: str = PREFIX) -> list[str]:
    """Per-row checks cheaper than building the full logical example."""
    y0, x0 = (int(v) for v in row[prefix + "offset"])
    ny, nx = (int(v) for v in row[prefix + "size"])
    s = row[prefix + "mask"].shape[0] if prefix + "mask" in row else None
    if s is not None and (y0 < 0 or x0 < 0 or y0 + ny > s or x0 + nx > s):
        return [f"original cube {ny}x{nx} at ({y0},{x0}) does not fit the {s}x{s} grid"]
    lam = np.asarray(row[prefix + "lambda"], dtype=float) if prefix + "lambda" in row else None
    if lam is not None and lam.size > 1 and not np.all(np.diff(lam) > 0):
        return ["ifu lambda must increase"]
    return []


def features(specs: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """HuggingFace features of :func:`example_from_row`'s output for these columns."""
    from datasets import List, Value

    from mmu_core.schemas.features import list_feature

    out: dict[str, Any] = {"spaxel_size": Value("float64")}
    if options.get("with_spaxels", True):
        length = specs[PREFIX + "lambda"].shape[-1]
        spaxel = {k: list_feature(specs[PREFIX + k], length) for k in CUBES if PREFIX + k in specs}
        spaxel.update({"lambda": list_feature(specs[PREFIX + "lambda"], length),
                       "x": Value("int64"), "y": Value("int64")})
        out["spaxels"] = List(spaxel)
    image: dict[str, Any] = {"label": Value("string"), "filter": Value("string"),
                             "units": Value("string")}
    for key in ("data", "ivar", "mask"):
        if PREFIX + "image_" + key in specs:
            image[key] = List(list_feature(specs[PREFIX + "image_" + key]))
    out["images"] = List(image)
    return out


def preview(fig: Any, i: int, nrows: int, ncols: int, row: dict[str, Any], title: str,
            units: dict[str, str] | None = None) -> None:
    """A map (an H-alpha flux map if there is one, else an r image) on the sky, in arcsec
    offsets from the cube's centre, with a colour bar in the channel's unit, beside the
    spectrum of its brightest spaxel (flux in the dataset's recorded unit, else
    :data:`FLUX_UNIT`)."""
    import matplotlib.pyplot as plt

    y0, x0 = (int(v) for v in row[PREFIX + "offset"])
    ny, nx = (int(v) for v in row[PREFIX + "size"])
    size = pixel_scale(row, PREFIX + "spaxel_size")
    labels = [decode(v) for v in row.get(PREFIX + "image_label", [])]
    pick = next((k for k, lab in enumerate(labels) if "ha" in lab.lower() and "flux" in lab.lower()),
                next((k for k, lab in enumerate(labels) if lab.lower().startswith("r")), 0))
    flux = row[PREFIX + "flux"][y0 : y0 + ny, x0 : x0 + nx]
    total = np.nansum(flux, axis=-1)
    yy, xx = np.unravel_index(np.nanargmax(total), total.shape)
    sky = SkyAxes(fig, (nrows, 3, i * 3 + 1), (ny, nx), size)
    if labels:
        img = np.asarray(row[PREFIX + "image_data"][pick, y0 : y0 + ny, x0 : x0 + nx], float)
        stored = row.get(PREFIX + "image_units")
        unit = unit_of(PREFIX + "image_data", units,
                       stored[pick] if stored is not None else None)
        name = labels[pick]
    else:  # no maps: the cube summed over wavelength
        img = total.astype(float)
        unit = unit_of(PREFIX + "flux", units, default=FLUX_UNIT) + " summed over λ"
        name = "flux summed over wavelength"
    no_data = _no_data(row, pick, (y0, x0, ny, nx)) if labels else np.zeros(img.shape, bool)
    img = np.where(no_data | ~np.isfinite(img), np.nan, img)
    lo, hi = np.nanpercentile(img, [1, 99.5]) if np.isfinite(img).any() else (0.0, 1.0)
    cmap = plt.get_cmap("magma").with_extremes(bad=NO_DATA_COLOR)
    im = sky.show(img, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1)
    fig.colorbar(im, ax=sky.ax, label=label_with_unit(name, unit), shrink=0.9)
    sky.ax.set_title(f"{name}\n{ny}×{nx} spaxels" + (f" of {size:.3g}″" if size else ""))
    px, py = sky.to_axes(xx, yy)
    handles = [sky.ax.plot([px], [py], "+", color="cyan", ms=14, mew=2,
                           label="spaxel of the spectrum")[0]]
    if no_data.any():
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor=NO_DATA_COLOR, label="no data (ivar 0)"))
    sky.ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.8)

    ax = fig.add_subplot(nrows, 3, (i * 3 + 2, i * 3 + 3))
    lam = row[PREFIX + "lambda"]
    spec = row[PREFIX + "flux"][y0 + yy, x0 + xx]
    sigma = sigma_from_ivar(row[PREFIX + "ivar"][y0 + yy, x0 + xx])
    ax.plot(lam, spec, lw=0.6, color="k", label="flux")
    ax.fill_between(lam, spec - sigma, spec + sigma, color="tab:blue", alpha=0.3,
                    label="±1σ (from ivar)")
    where = (f"Δx = {(xx - nx // 2) * size:+.1f}″, Δy = {(yy - ny // 2) * size:+.1f}″"
             if size else f"x = {xx}, y = {yy}")
    ax.set_title(f"spectrum of the brightest spaxel ({where}; spaxel x = {xx}, y = {yy})")
    ax.set_xlim(float(lam[0]), float(lam[-1]))
    ax.set_xlabel("wavelength [Å]")
    ax.set_ylabel(label_with_unit("flux", unit_of(PREFIX + "flux", units, default=FLUX_UNIT)))
    ax.legend(loc="upper right", fontsize=9)


def _no_data(row: dict[str, Any], k: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Map pixels without information: ivar 0 where the channel has an ivar at all."""
    y0, x0, ny, nx = box
    if PREFIX + "image_ivar" not in row:
        return np.zeros((ny, nx), bool)
    ivar = np.asarray(row[PREFIX + "image_ivar"][k, y0 : y0 + ny, x0 : x0 + nx])
    return ivar <= 0 if (ivar > 0).any() else np.zeros((ny, nx), bool)


SPEC = ModalitySpec(
    name="ifu", prefix=PREFIX, description="IFU cubes on a padded spaxel grid, with maps",
    example_model=IFUExample, check_columns=check_columns, example_from_row=example_from_row,
    features=features, preview=preview, check_row=check_row, priority=30,
    example_columns=example_columns,
    known_columns=("flux", "ivar", "lsf_sigma", "mask", "lambda", "spaxel_size", "offset", "size", "image_data", "image_ivar", "image_mask", "image_label", "image_filter", "image_units"),
)
