"""An in-process test plugin: surveys whose rows are generated from a seed.

``raw/units.json`` lists units ``{"key", "seed", "n", "ra", "dec", "radius"}``; the same
function that the converter calls (:func:`make_rows`) gives the tests the expected rows, so a
round trip can be compared bit for bit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mmu_core import hookimpl
from mmu_core.errors import InputError
from mmu_core.models import ConfigInfo, SampleResult, SurveyInfo, WorkUnit

BANDS = np.array([b"g", b"r", b"i", b"z", b"y"])


def make_rows(unit: dict, modality: str, size: int = 16, length: int = 64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(unit["seed"])
    n = unit["n"]
    # uniform in a cap around (ra, dec)
    r = np.radians(unit["radius"]) * np.sqrt(rng.random(n))
    theta = rng.random(n) * 2 * np.pi
    dec = np.clip(unit["dec"] + np.degrees(r * np.sin(theta)), -90, 90)
    ra = (unit["ra"] + np.degrees(r * np.cos(theta)) / max(np.cos(np.radians(dec)).min(), 1e-3)) % 360.0
    rows: dict[str, np.ndarray] = {
        "object_id": unit["id0"] + np.arange(n, dtype=np.int64) * 7 + rng.integers(0, 7, n),
        "ra": ra,
        "dec": dec,
        "mag": rng.normal(22, 1, n).astype(np.float32),
        "name": np.array([f"obj-{unit['key']}-{i}" for i in range(n)]),
    }
    if modality == "image":
        rows["image_array"] = rng.normal(0, 1, (n, 5, size, size)).astype(np.float32)
        rows["image_ivar"] = rng.random((n, 5, size, size)).astype(np.float32)
        rows["image_mask"] = rng.random((n, 5, size, size)) > 0.1
        rows["image_band"] = np.tile(BANDS, (n, 1))
        rows["image_psf_fwhm"] = rng.uniform(0.5, 1.0, (n, 5)).astype(np.float32)
        rows["image_scale"] = np.full((n, 5), 0.168, np.float32)
    else:
        lam = np.linspace(3600, 9824, length, dtype=np.float32)
        rows["spectrum_lambda"] = np.tile(lam, (n, 1))
        rows["spectrum_flux"] = rng.normal(1, 0.1, (n, length)).astype(np.float32)
        rows["spectrum_ivar"] = rng.random((n, length)).astype(np.float32)
        rows["spectrum_lsf_sigma"] = np.full((n, length), 1.2, np.float32)
        rows["spectrum_mask"] = rng.random((n, length)) > 0.95
        rows["Z"] = rng.random(n).astype(np.float32)
    return rows


class ToyPlugin:
    """Surveys 'toyimg' (image) and 'toyspec' (spectrum)."""

    def __init__(self, batch: int = 50, fail_unit: str | None = None, delay: float = 0.0,
                 corrupt: str | None = None):
        self.batch = batch
        self.fail_unit = fail_unit
        self.delay = delay
        self.corrupt = corrupt  # name of a deliberate defect to inject (bad-input tests)

    @hookimpl
    def mmu_describe(self):
        common = dict(configs=[ConfigInfo(name="default")], default_config="default",
                      version="0.0.1", columns={"mag": "a magnitude", "Z": "redshift",
                                                "name": "a name"})
        return [
            SurveyInfo(name="toyimg", modality="image", description="toy images", **common),
            SurveyInfo(name="toyspec", modality="spectrum", description="toy spectra", **common),
        ]

    @hookimpl
    def mmu_discover(self, survey, config, raw_dir):
        spec = json.loads((Path(raw_dir) / "units.json").read_text())
        out = []
        for u in spec:
            own = Path(raw_dir) / f"{u['key']}.json"  # a unit with a file of its own
            if own.is_file():
                u = json.loads(own.read_text())
            out.append(WorkUnit(survey=survey, config=config, key=u["key"],
                                files=[own.name if own.is_file() else "units.json"],
                                ra=u["ra"], dec=u["dec"], meta=u))
        return out

    @hookimpl
    def mmu_convert(self, unit, context):
        return self._convert(unit, context)

    def _convert(self, unit, context):
        if unit.key == self.fail_unit:
            raise InputError("bad bytes in toy file", file="units.json", object=unit.key)
        rows = make_rows(unit.meta, "image" if unit.survey == "toyimg" else "spectrum")
        n = len(rows["object_id"])
        for i, a in enumerate(range(0, n, self.batch)):
            if self.delay:
                time.sleep(self.delay)
            batch = {k: v[a : a + self.batch] for k, v in rows.items()}
            if i == 1 and unit.key == "u001":
                self._inject(batch)
            yield batch

    def _inject(self, batch: dict) -> None:
        if self.corrupt == "nan_ra":
            batch["ra"] = batch["ra"].copy()
            batch["ra"][3] = np.nan
        elif self.corrupt == "shape_change":
            batch["image_array"] = batch["image_array"][:, :, :8, :8]
            batch["image_ivar"] = batch["image_ivar"][:, :, :8, :8]
        elif self.corrupt == "missing_column":
            del batch["mag"]

    @hookimpl
    def mmu_aliases(self, survey, config):
        return {"mag": "magnitude", "Z": "z"}

    @hookimpl
    def mmu_sample(self, survey, request):
        units = write_units(request.out_dir, n_units=4, n=request.n // 4, ra=request.ra,
                            dec=request.dec, radius=request.radius, seed=request.seed)
        return SampleResult(files=[str(request.out_dir / "units.json")],
                            n_objects=sum(u["n"] for u in units))


def write_units(raw: Path, n_units: int, n: int, ra: float, dec: float, radius: float,
                seed: int = 0) -> list[dict]:
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    units = [
        {"key": f"u{i:03d}", "seed": seed * 1000 + i, "n": n, "ra": ra, "dec": dec,
         "radius": radius, "id0": 10_000_000 * (i + 1)}
        for i in range(n_units)
    ]
    (raw / "units.json").write_text(json.dumps(units))
    return units
