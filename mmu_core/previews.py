"""``mmu preview``: pictures of stored rows and of a dataset's sky coverage (matplotlib).

- image: a colour composite (asinh stretch) beside one panel per band;
- spectrum: flux with its 1-sigma band from ivar, masked pixels shaded;
- IFU: a map (the first analysis map, else a reconstructed image) beside one spaxel's spectrum;
- time series: flux with errors per band (padding left out);
- segmentation: the source image with each class's mask as contours;
- ``sky=True``: a HEALPix Mollweide map of the dataset's rows per pixel, and a zoom on them.
A matched dataset gets one row of panels per side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mmu_core.schemas.common import decode  # noqa: E402
from mmu_core.storage.reader import Dataset, open_dataset  # noqa: E402


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
    if ds.modality != "matched":
        return [(f"{ds.survey}/{ds.config}", ds.modality or "", row)]
    import json

    with __import__("h5py").File(ds.files[0]) as h:
        namespaces = json.loads(h.attrs.get("namespaces", "{}"))
    sides = []
    for name, modality in namespaces.items():
        sub = {k[len(name) + 1 :]: v for k, v in row.items() if k.startswith(name + ".")}
        sides.append((name, modality, sub))
    return sides


def _row_figure(ds: Dataset, row: dict[str, Any]):
    sides = _sides(ds, row)
    ncols = 6
    fig = plt.figure(figsize=(3.2 * ncols, 3.4 * len(sides)))
    oid = decode(row["object_id"])
    fig.suptitle(f"{ds.survey}/{ds.config} — object {oid}  (ra {row['ra']:.5f}, dec {row['dec']:.5f})")
    for i, (title, modality, sub) in enumerate(sides):
        draw = {"image": _image, "spectrum": _spectrum, "ifu": _ifu, "timeseries": _lightcurve,
                "segmentation": _segmentation}.get(modality)
        if draw is None:
            continue
        draw(fig, i, len(sides), ncols, sub, title)
    return fig


def _asinh(x: np.ndarray, scale: float) -> np.ndarray:
    return np.arcsinh(x / scale) / np.arcsinh(1 / scale)


def _composite(bands: np.ndarray) -> np.ndarray:
    """(B, H, W) -> (H, W, 3) in [0, 1]; reddest band in red."""
    if bands.dtype == np.uint8:
        return np.moveaxis(bands[:3], 0, -1)
    pick = [min(3, len(bands) - 1), min(2, len(bands) - 1) if len(bands) > 2 else 0, 0]
    if len(bands) >= 4:
        pick = [3, 2, 1]  # i, r, g for g r i z y
    rgb = np.stack([bands[j] for j in pick], axis=-1).astype(float)
    rgb = np.nan_to_num(rgb)
    hi = np.percentile(rgb, 99.5) or 1.0
    return np.clip(_asinh(np.clip(rgb, 0, None) / hi, 0.1), 0, 1)


def _image(fig, i, nrows, ncols, row, title):
    arr = row["image_array"]
    names = [decode(b) for b in row.get("image_band", [str(k) for k in range(len(arr))])]
    ax = fig.add_subplot(nrows, ncols, i * ncols + 1)
    ax.imshow(_composite(arr), origin="lower")
    ax.set_title(f"{title}: composite")
    ax.axis("off")
    for k in range(min(len(arr), ncols - 1)):
        ax = fig.add_subplot(nrows, ncols, i * ncols + 2 + k)
        band = np.where(row["image_mask"][k], arr[k], np.nan) if "image_mask" in row else arr[k]
        lo, hi = np.nanpercentile(band, [1, 99.5]) if np.isfinite(band).any() else (0, 1)
        cmap = plt.get_cmap("gray").with_extremes(bad="tab:blue")  # masked pixels in blue
        ax.imshow(band, origin="lower", cmap=cmap, vmin=lo, vmax=hi)
        fwhm = row.get("image_psf_fwhm")
        ax.set_title(f"{names[k]}" + (f"  PSF {fwhm[k]:.2f}\"" if fwhm is not None else ""))
        ax.axis("off")


def _spectrum(fig, i, nrows, ncols, row, title):
    ax = fig.add_subplot(nrows, 1, i + 1)
    lam, flux = row["spectrum_lambda"], row["spectrum_flux"]
    ivar = row.get("spectrum_ivar")
    mask = row.get("spectrum_mask", np.zeros(len(lam), bool)).astype(bool)
    good = ~mask
    ax.plot(lam, np.where(good, flux, np.nan), lw=0.6, color="k", label="flux")
    if ivar is not None:
        sigma = np.where(ivar > 0, 1 / np.sqrt(np.where(ivar > 0, ivar, 1)), np.nan)
        ax.fill_between(lam, flux - sigma, flux + sigma, where=good, color="tab:blue", alpha=0.3,
                        label="1σ from ivar", step="mid")
    smooth = _smoothed(flux, np.where(good, ivar if ivar is not None else 1.0, 0.0))
    ax.plot(lam, smooth, lw=1.0, color="tab:orange", label="ivar-weighted, 15 px")
    lo, hi = np.nanpercentile(np.where(good, flux, np.nan), [0.5, 99.5]) if good.any() else (0, 1)
    ax.fill_between(lam, lo, hi, where=mask, color="tab:red", alpha=0.15, step="mid",
                    label="masked")
    ax.set_ylim(lo - 0.1 * abs(hi - lo), hi + 0.1 * abs(hi - lo))
    z = row.get("Z", row.get("z"))
    ax.set_title(f"{title}: spectrum" + (f"  z = {float(z):.4f}" if z is not None else ""))
    ax.set_xlabel("wavelength [Å]")
    ax.set_ylabel("flux")
    ax.legend(loc="upper right", fontsize=8)


def _smoothed(flux: np.ndarray, weight: np.ndarray, width: int = 15) -> np.ndarray:
    """Inverse-variance weighted running mean, so features show through the noise."""
    kernel = np.ones(width)
    w = np.convolve(weight, kernel, mode="same")
    fw = np.convolve(np.where(weight > 0, flux * weight, 0.0), kernel, mode="same")
    return np.where(w > 0, fw / np.where(w > 0, w, 1), np.nan)


def _ifu(fig, i, nrows, ncols, row, title):
    y0, x0 = (int(v) for v in row["ifu_offset"])
    ny, nx = (int(v) for v in row["ifu_size"])
    labels = [decode(v) for v in row.get("ifu_image_label", [])]
    pick = next((k for k, lab in enumerate(labels) if "ha" in lab.lower() and "flux" in lab.lower()),
                next((k for k, lab in enumerate(labels) if lab.lower().startswith("r")), 0))
    ax = fig.add_subplot(nrows, 3, i * 3 + 1)
    if labels:
        img = row["ifu_image_data"][pick, y0 : y0 + ny, x0 : x0 + nx]
        ax.imshow(img, origin="lower", cmap="magma")
        ax.set_title(f"{title}: {labels[pick]}")
    flux = row["ifu_flux"][y0 : y0 + ny, x0 : x0 + nx]
    total = np.nansum(flux, axis=-1)
    yy, xx = np.unravel_index(np.nanargmax(total), total.shape)
    ax.plot([xx], [yy], "c+", ms=12)
    ax = fig.add_subplot(nrows, 3, (i * 3 + 2, i * 3 + 3))
    lam = row["ifu_lambda"]
    spec = row["ifu_flux"][y0 + yy, x0 + xx]
    ivar = row["ifu_ivar"][y0 + yy, x0 + xx]
    sigma = np.where(ivar > 0, 1 / np.sqrt(np.where(ivar > 0, ivar, 1)), np.nan)
    ax.plot(lam, spec, lw=0.6, color="k")
    ax.fill_between(lam, spec - sigma, spec + sigma, color="tab:blue", alpha=0.3)
    ax.set_title(f"spaxel (x={xx}, y={yy}) of the {ny}x{nx} cube")
    ax.set_xlabel("wavelength [Å]")


def _lightcurve(fig, i, nrows, ncols, row, title):
    ax = fig.add_subplot(nrows, 1, i + 1)
    names = [decode(b) for b in row["lightcurve_band"]]
    for b, name in enumerate(names):
        real = ~row["lightcurve_mask"][b].astype(bool)
        ax.errorbar(row["lightcurve_time"][b][real], row["lightcurve_flux"][b][real],
                    yerr=row["lightcurve_flux_err"][b][real], fmt="o", ms=3, label=name)
    kind = row.get("obj_type")
    ax.set_title(f"{title}: light curve" + (f" ({decode(kind)})" if kind is not None else ""))
    ax.set_xlabel("MJD")
    ax.set_ylabel("flux")
    ax.legend(ncol=6, fontsize=8)


def _segmentation(fig, i, nrows, ncols, row, title):
    image = np.moveaxis(row["image_array"], 0, -1)
    classes = [decode(c) for c in row["segmentation_class"]]
    ax = fig.add_subplot(nrows, ncols, i * ncols + 1)
    ax.imshow(image, origin="lower")
    colors = ["yellow", "cyan", "magenta", "lime", "orange"]
    for c in range(len(classes)):
        mask = row["segmentation_array"][c]
        if np.any(mask > 0):
            ax.contour(mask > 0, levels=[0.5], colors=colors[c % len(colors)], linewidths=0.8)
    ax.set_title(f"{title}: masks over image")
    ax.axis("off")
    for c, name in enumerate(classes[: ncols - 1]):
        ax = fig.add_subplot(nrows, ncols, i * ncols + 2 + c)
        ax.imshow(row["segmentation_array"][c], origin="lower", cmap="viridis")
        vf = row.get("segmentation_vote_fraction")
        ax.set_title(name + (f"  vf {vf[c]:.2f}" if vf is not None and vf[c] >= 0 else ""))
        ax.axis("off")


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
