"""1-D spectra on a wavelength grid.

Stored columns (FORMATS.md §1): ``spectrum_lambda``, ``spectrum_flux``, ``spectrum_ivar``,
``spectrum_lsf_sigma`` (N,L) float32 and ``spectrum_mask`` (N,L) bool (True = bad pixel).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mmu_core.schemas.common import Array, CommonFields, same_length

PREFIX = "spectrum_"
REQUIRED = ("lambda", "flux", "ivar", "mask")
ARRAYS = ("flux", "ivar", "lsf_sigma", "lambda", "mask")


class Spectrum(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)
    flux: Array
    ivar: Array
    lsf_sigma: Array | None = None
    lambda_: Array = Field(alias="lambda")
    mask: Array

    @model_validator(mode="after")
    def _consistent(self) -> Spectrum:
        same_length(
            {k: getattr(self, "lambda_" if k == "lambda" else k) for k in ARRAYS}, "spectrum"
        )
        lam = np.asarray(self.lambda_, dtype=float)
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


def check_columns(shapes: dict[str, tuple], prefix: str = PREFIX) -> list[str]:
    problems = [f"missing column {prefix}{c}" for c in REQUIRED if prefix + c not in shapes]
    present = {prefix + k: shapes[prefix + k] for k in ARRAYS if prefix + k in shapes}
    if len(set(present.values())) > 1:
        problems.append(f"spectrum columns must all be (L,) per row, got {present}")
    return problems
