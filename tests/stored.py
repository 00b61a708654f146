"""Test helpers: a synthetic stored dataset straight from columns, and sky offsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmu_core.storage.columns import schema_of
from mmu_core.storage.derived import finalize_dataset
from mmu_core.storage.writer import write_rows


def store(dataset_dir: Path, cols: dict, survey: str, modality: str | None = None,
          aliases: dict | None = None) -> Path:
    """A stored dataset (HEALPix layout, index, manifest) holding these columns."""
    dataset_dir.mkdir(parents=True, exist_ok=True)
    write_rows(dataset_dir, [cols], {"survey": survey, "config": "test"}, key="rows")
    finalize_dataset(dataset_dir, survey=survey, config="test", modality=modality,
                     columns=schema_of(cols), aliases=aliases or {})
    return dataset_dir


def build_toy_pair(root: Path, spec_units: int) -> tuple[Path, Path]:
    """A toy image and a toy spectrum dataset built under ``root`` whose objects coincide
    (same seeds): 4 image units, the spectra covering only the first ``spec_units``."""
    import json

    from toy_plugin import ToyPlugin, write_units

    from mmu_core import testing
    from mmu_core.build import build

    registry = testing.plugin_registry(ToyPlugin())
    write_units(root / "raw_img", n_units=4, n=60, ra=150.0, dec=2.0, radius=3.0)
    units = write_units(root / "raw_spec", n_units=4, n=60, ra=150.0, dec=2.0, radius=3.0)
    (root / "raw_spec" / "units.json").write_text(json.dumps(units[:spec_units]))
    img = build("toyimg", root / "raw_img", root / "out", registry=registry).path
    spec = build("toyspec", root / "raw_spec", root / "out", registry=registry).path
    return img, spec


def offset(ra, dec, sep_arcsec, pa_deg):
    """(ra, dec) moved by sep towards the position angle, on the sphere."""
    d, s, p = np.radians(dec), np.radians(np.asarray(sep_arcsec) / 3600.0), np.radians(pa_deg)
    dec2 = np.arcsin(np.clip(np.sin(d) * np.cos(s) + np.cos(d) * np.sin(s) * np.cos(p), -1, 1))
    dra = np.arctan2(np.sin(p) * np.sin(s) * np.cos(d), np.cos(s) - np.sin(d) * np.sin(dec2))
    ra2 = np.mod(ra + np.degrees(dra), 360.0)
    return np.where(ra2 >= 360.0, 0.0, ra2), np.degrees(dec2)
