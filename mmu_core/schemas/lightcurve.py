"""Multi-band light curves, padded per band to one length L for the whole dataset.

Stored columns (docs/format.md): ``lightcurve_time`` (N,B,L) float64 (MJD; float32 would
lose minutes), ``lightcurve_flux`` and ``lightcurve_flux_err`` (N,B,L) float32,
``lightcurve_mask`` (N,B,L) bool (True = padding), ``lightcurve_band`` (N,B) band names.
Within a band, observations are sorted by time, real points first, padding last.

The logical example (docs/examples.md) flattens band-major: ``band``/``time``/``flux``/``flux_err``/
``mask`` of length B*L, ``band`` holding the band index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from mmu_core.schemas.common import Array, CommonFields, decode, same_length
from mmu_core.schemas.plotting import label_with_unit, unit_of
from mmu_core.schemas.spec import ModalitySpec

PREFIX = "lightcurve_"
REQUIRED = ("time",)  # the rest may be absent (MMU v1 folders)
ARRAYS = ("time", "flux", "flux_err", "mask")
# the flux unit of light curves unless a dataset records another: SNANA's calibrated flux
# (FLUXCAL, AB zero point 27.5: m = 27.5 - 2.5 log10 flux), PLAsTiCC's and MMU v1's supernova
# light curves'
FLUX_UNIT = "FLUXCAL, AB zero point 27.5"


class LightCurve(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="allow")
    band: Array
    time: Array
    flux: Array
    flux_err: Array
    mask: Array | None = None
    band_names: list[str] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LightCurve:
        same_length(
            {"band": self.band, "time": self.time, "flux": self.flux, "flux_err": self.flux_err,
             "mask": self.mask},
            "lightcurve",
        )
        return self


class LightCurveExample(CommonFields):
    lightcurve: LightCurve


def example_from_row(row: dict[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    time = row[prefix + "time"]
    n_bands, length = time.shape
    lc: dict[str, Any] = {"band": np.repeat(np.arange(n_bands, dtype=np.int64), length)}
    for key in ARRAYS:
        if prefix + key in row:
            lc[key] = row[prefix + key].reshape(-1)
    # survey extras of the same (B, L) shape (e.g. lightcurve_detected), flattened alike
    for name, value in row.items():
        key = name[len(prefix):]
        if name.startswith(prefix) and key not in lc and key != "band" and np.shape(value) == time.shape:
            lc[key] = np.asarray(value).reshape(-1)
    if prefix + "band" in row:
        lc["band_names"] = [decode(b) for b in row[prefix + "band"]]
    return {"lightcurve": lc}


def example_columns(block: dict[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    """:func:`example_from_row` for a block of rows at once: the (n, B, L) columns as they are
    (their rows flatten band-major), the band index of every slot, the band names."""
    time = block[prefix + "time"]
    n, n_bands, length = time.shape
    lc: dict[str, Any] = {"band": np.broadcast_to(
        np.repeat(np.arange(n_bands, dtype=np.int64), length), (n, n_bands * length))}
    for key in ARRAYS:
        if prefix + key in block:
            lc[key] = block[prefix + key]
    for name, value in block.items():
        key = name[len(prefix):]
        if name.startswith(prefix) and key not in lc and key != "band" and \
                np.shape(value)[1:] == time.shape[1:]:
            lc[key] = value
    if prefix + "band" in block:
        lc["band_names"] = block[prefix + "band"]
    return {"lightcurve": lc}


def check_columns(shapes: dict[str, tuple], prefix: str = PREFIX) -> list[str]:
    problems = [f"missing column {prefix}{c}" for c in REQUIRED if prefix + c not in shapes]
    present = {prefix + k: shapes[prefix + k] for k in ARRAYS if prefix + k in shapes}
    if len(set(present.values())) > 1:
        problems.append(f"lightcurve columns must all be (B, L) per row, got {present}")
    if prefix + "band" in shapes and prefix + "time" in shapes:
        if shapes[prefix + "band"][:1] != shapes[prefix + "time"][:1]:
            problems.append(f"{prefix}band must name each of the {shapes[prefix + 'time'][0]} bands")
    return problems


def features(specs: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """HuggingFace features of :func:`example_from_row`'s output for these columns."""
    from datasets import List, Value

    from mmu_core.schemas.features import list_feature

    n_bands, length = specs[PREFIX + "time"].shape
    lc: dict[str, Any] = {"band": List(Value("int64"), length=n_bands * length)}
    for key in ARRAYS:
        if PREFIX + key in specs:
            lc[key] = list_feature(specs[PREFIX + key], n_bands * length)
    # survey extras of the same (B, L) shape, flattened like the rest (e.g. detected)
    for name, spec in specs.items():
        key = name[len(PREFIX):]
        if (name.startswith(PREFIX) and key not in lc and key != "band"
                and tuple(spec.shape) == (n_bands, length)):
            lc[key] = list_feature(spec, n_bands * length)
    if PREFIX + "band" in specs:
        lc["band_names"] = List(Value("string"), length=n_bands)
    return {"lightcurve": lc}


def preview(fig: Any, i: int, nrows: int, ncols: int, row: dict[str, Any], title: str,
            units: dict[str, str] | None = None) -> None:
    """Flux with its errors per band against MJD (padding left out), one colour and marker
    per band named in the legend; the flux axis in the dataset's recorded unit, else
    :data:`FLUX_UNIT`."""
    from matplotlib.ticker import ScalarFormatter

    ax = fig.add_subplot(nrows, 1, i + 1)
    time = row[PREFIX + "time"]
    names = [decode(b) for b in row.get(PREFIX + "band", [f"band {b}" for b in range(len(time))])]
    mask = row.get(PREFIX + "mask")
    markers = "osD^vP*X<>"
    points = 0
    for b, name in enumerate(names):
        real = ~np.asarray(mask[b], bool) if mask is not None else np.isfinite(time[b])
        points += int(real.sum())
        err = row[PREFIX + "flux_err"][b][real] if PREFIX + "flux_err" in row else None
        ax.errorbar(time[b][real], row[PREFIX + "flux"][b][real], yerr=err,
                    fmt=markers[b % len(markers)], ms=3.5, lw=0.8, capsize=0,
                    label=f"{name} ({int(real.sum())})")
    real_t = time[~np.asarray(mask, bool)] if mask is not None else time.ravel()
    span = f", MJD {real_t.min():.1f}–{real_t.max():.1f}" if real_t.size else ""
    ax.set_title(f"light curve: {points:,} observations in {len(names)} bands{span}")
    ax.axhline(0, color="0.6", lw=0.6, zorder=0)
    ax.xaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    ax.set_xlabel("time [MJD]")
    ax.set_ylabel(label_with_unit("flux", unit_of(PREFIX + "flux", units, default=FLUX_UNIT)))
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9, borderaxespad=0,
              title="band (points)")


SPEC = ModalitySpec(
    name="lightcurve", prefix=PREFIX, description="multi-band light curves, padded per band",
    example_model=LightCurveExample, check_columns=check_columns,
    example_from_row=example_from_row, features=features, preview=preview, priority=10,
    former_names=("timeseries",), example_columns=example_columns,
    known_columns=("time", "flux", "flux_err", "mask", "band"),
)
