"""1-D spectra on a wavelength grid.

Stored columns (docs/format.md): ``spectrum_lambda``, ``spectrum_flux``, ``spectrum_ivar``,
``spectrum_lsf_sigma`` (N,L) float32 and ``spectrum_mask`` (N,L) bool (True = bad pixel).
Wavelengths are in Å; the flux is in :data:`FLUX_UNIT` unless the dataset records another.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mmu_core.schemas.common import Array, CommonFields, same_length
from mmu_core.schemas.plotting import label_with_unit, sigma_from_ivar, smoothed, unit_of
from mmu_core.schemas.spec import ModalitySpec

PREFIX = "spectrum_"
REQUIRED: tuple[str, ...] = ()  # any subset of the arrays is a spectrum (MMU v1 folders)
ARRAYS = ("flux", "ivar", "lsf_sigma", "lambda", "mask")
# the flux unit of spectra unless a dataset records another (DESI and SDSS spectra, and the
# MMU v1 spectra, are in it); ivar is in its inverse square
FLUX_UNIT = "10⁻¹⁷ erg s⁻¹ cm⁻² Å⁻¹"


class Spectrum(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)
    flux: Array | None = None
    ivar: Array | None = None
    lsf_sigma: Array | None = None
    lambda_: Array | None = Field(default=None, alias="lambda")
    mask: Array | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Spectrum:
        same_length(
            {k: getattr(self, "lambda_" if k == "lambda" else k) for k in ARRAYS}, "spectrum"
        )
        lam = np.asarray(self.lambda_ if self.lambda_ is not None else [], dtype=float)
        if lam.size > 1 and not np.all(np.diff(lam) > 0):
            bad = int(np.argmax(np.diff(lam) <= 0))
            raise ValueError(f"spectrum lambda must increase, but lambda[{bad + 1}] <= lambda[{bad}]")
        return self


class SpectrumExample(CommonFields):
    spectrum: Spectrum
    z: float | None = None
    z_err: float | None = None


def example_from_row(row: dict[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    return {"spectrum": {k: row[prefix + k] for k in ARRAYS if prefix + k in row}}


def example_columns(block: dict[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    """:func:`example_from_row` for a block of rows at once (each array with the rows first)."""
    return example_from_row(block, prefix)


def check_columns(shapes: dict[str, tuple], prefix: str = PREFIX) -> list[str]:
    problems = [f"missing column {prefix}{c}" for c in REQUIRED if prefix + c not in shapes]
    present = {prefix + k: shapes[prefix + k] for k in ARRAYS if prefix + k in shapes}
    if len(set(present.values())) > 1:
        problems.append(f"spectrum columns must all be (L,) per row, got {present}")
    return problems


def features(specs: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """HuggingFace features of :func:`example_from_row`'s output for these columns."""
    from mmu_core.schemas.features import list_feature

    return {"spectrum": {k: list_feature(specs[PREFIX + k], specs[PREFIX + k].shape[0])
                         for k in ARRAYS if PREFIX + k in specs}}


def preview(fig: Any, i: int, nrows: int, ncols: int, row: dict[str, Any], title: str,
            units: dict[str, str] | None = None) -> None:
    """Flux against wavelength (Å) with its 1-sigma band from ivar, an ivar-weighted running
    mean, masked pixels shaded; the flux axis in the dataset's recorded unit, else
    :data:`FLUX_UNIT`."""
    ax = fig.add_subplot(nrows, 1, i + 1)
    lam, flux = row[PREFIX + "lambda"], row[PREFIX + "flux"]
    ivar = row.get(PREFIX + "ivar")
    mask = row.get(PREFIX + "mask", np.zeros(len(lam), bool)).astype(bool)
    good = ~mask
    ax.plot(lam, np.where(good, flux, np.nan), lw=0.6, color="k", label="flux")
    if ivar is not None:
        sigma = sigma_from_ivar(ivar)
        ax.fill_between(lam, flux - sigma, flux + sigma, where=good, color="tab:blue", alpha=0.3,
                        label="±1σ (from ivar)", step="mid")
    smooth = smoothed(flux, np.where(good, ivar if ivar is not None else 1.0, 0.0))
    ax.plot(lam, smooth, lw=1.0, color="tab:orange", label="ivar-weighted mean, 15 pixels")
    lo, hi = np.nanpercentile(np.where(good, flux, np.nan), [0.5, 99.5]) if good.any() else (0, 1)
    ax.fill_between(lam, lo, hi, where=mask, color="tab:red", alpha=0.15, step="mid",
                    label=f"masked (spectrum_mask): {int(mask.sum()):,} of {len(mask):,} pixels")
    ax.set_ylim(lo - 0.1 * abs(hi - lo), hi + 0.1 * abs(hi - lo))
    ax.set_xlim(float(lam[0]), float(lam[-1]))
    ax.set_title(f"spectrum: {len(lam):,} pixels, {float(lam[0]):.0f}–{float(lam[-1]):.0f} Å")
    ax.set_xlabel("wavelength [Å]")
    ax.set_ylabel(label_with_unit("flux", unit_of(PREFIX + "flux", units, default=FLUX_UNIT)))
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9, borderaxespad=0)


SPEC = ModalitySpec(
    name="spectrum", prefix=PREFIX, description="1-D spectra on a wavelength grid",
    example_model=SpectrumExample, check_columns=check_columns, example_from_row=example_from_row,
    features=features, preview=preview, priority=20, example_columns=example_columns,
    known_columns=ARRAYS,
)
