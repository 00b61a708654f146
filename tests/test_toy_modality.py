"""A modality defined in this one file — radio visibilities — goes through the whole core:
build (through an in-process plugin), validate, read by id, logical examples, HuggingFace
features and rows, preview. Nothing else in the core is told about it: every module dispatches
through the ModalitySpec table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, model_validator

import mmu_core
from mmu_core import hf, hookimpl, schemas, testing
from mmu_core.build import build
from mmu_core.models import ConfigInfo, SurveyInfo, WorkUnit
from mmu_core.previews import preview
from mmu_core.schemas.common import Array, CommonFields
from mmu_core.schemas.spec import ModalitySpec
from mmu_core.validate import validate

PREFIX = "visibility_"
N_BASELINES = 12


class Visibilities(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    uvw: Array  # (K, 3) metres
    real: Array  # (K,) Jy
    imag: Array
    weight: Array

    @model_validator(mode="after")
    def _same_length(self) -> Visibilities:
        lengths = {len(self.uvw), len(self.real), len(self.imag), len(self.weight)}
        if len(lengths) != 1:
            raise ValueError(f"visibility fields must have one length, got {sorted(lengths)}")
        return self


class VisibilityExample(CommonFields):
    visibilities: Visibilities


def check_columns(shapes: dict[str, tuple]) -> list[str]:
    problems = [f"missing column {PREFIX}{c}" for c in ("uvw", "real", "imag", "weight")
                if PREFIX + c not in shapes]
    if not problems and shapes[PREFIX + "uvw"][-1:] != (3,):
        problems.append(f"{PREFIX}uvw rows must be (K, 3), got {shapes[PREFIX + 'uvw']}")
    return problems


def example_from_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"visibilities": {k: row[PREFIX + k] for k in ("uvw", "real", "imag", "weight")}}


def features(specs: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    from mmu_core.schemas.features import array_feature, list_feature

    k = specs[PREFIX + "real"].shape[0]
    return {"visibilities": {"uvw": array_feature(specs[PREFIX + "uvw"], (k, 3)),
                             **{c: list_feature(specs[PREFIX + c], k)
                                for c in ("real", "imag", "weight")}}}


def draw(fig, i, nrows, ncols, row, title) -> None:
    ax = fig.add_subplot(nrows, 1, i + 1)
    uvw = row[PREFIX + "uvw"]
    ax.scatter(uvw[:, 0], uvw[:, 1], c=np.hypot(row[PREFIX + "real"], row[PREFIX + "imag"]))
    ax.set_title(f"{title}: uv coverage")
    ax.set_xlabel("u [m]")
    ax.set_ylabel("v [m]")


SPEC = ModalitySpec(name="visibility", prefix=PREFIX, description="radio visibilities",
                    example_model=VisibilityExample, check_columns=check_columns,
                    example_from_row=example_from_row, features=features, preview=draw)


def make_rows(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "object_id": 1000 * seed + np.arange(n, dtype=np.int64),
        "ra": rng.uniform(200.0, 201.0, n), "dec": rng.uniform(-31.0, -30.0, n),
        "flux_1400": rng.random(n).astype(np.float32),
        PREFIX + "uvw": rng.normal(0, 500, (n, N_BASELINES, 3)),
        PREFIX + "real": rng.normal(0, 1, (n, N_BASELINES)).astype(np.float32),
        PREFIX + "imag": rng.normal(0, 1, (n, N_BASELINES)).astype(np.float32),
        PREFIX + "weight": rng.random((n, N_BASELINES)).astype(np.float32),
    }


class RadioPlugin:
    @hookimpl
    def mmu_describe(self):
        return [SurveyInfo(name="toyradio", modality="visibility", description="toy radio",
                           configs=[ConfigInfo(name="dr1")], default_config="dr1",
                           columns={"flux_1400": "1.4 GHz flux density, Jy"},
                           preview_columns=["flux_1400"])]

    @hookimpl
    def mmu_discover(self, survey, config, raw_dir):
        return [WorkUnit(survey=survey, config=config, key=f"u{s}", files=[], meta={"seed": s})
                for s in (1, 2)]

    @hookimpl
    def mmu_convert(self, unit, context):
        yield make_rows(40, unit.meta["seed"])

    @hookimpl
    def mmu_aliases(self, survey, config):
        return {"flux_1400": "flux"}


@pytest.fixture
def radio(tmp_path):
    schemas.register_modality(SPEC)
    try:
        registry = testing.plugin_registry(RadioPlugin())
        (tmp_path / "raw").mkdir()
        summary = build("toyradio", tmp_path / "raw", tmp_path / "out", registry=registry)
        yield summary.path
    finally:
        schemas.unregister_modality("visibility")


def test_a_new_modality_builds_validates_reads_and_loads(radio, tmp_path):
    report = validate(radio, strict=True, full=True)
    assert report.ok and report.examples_checked == 80, report.text()

    ds = mmu_core.open_dataset(radio)
    assert ds.modality == "visibility" and len(ds) == 80
    want = make_rows(40, 2)
    got = ds.get(want["object_id"][[5, 0, 39]], columns=[PREFIX + "uvw", "flux"])
    np.testing.assert_array_equal(got[PREFIX + "uvw"], want[PREFIX + "uvw"][[5, 0, 39]])
    np.testing.assert_array_equal(got["flux"], want["flux_1400"][[5, 0, 39]])

    example = ds.example(int(want["object_id"][7]))
    np.testing.assert_array_equal(example["visibilities"]["real"], want[PREFIX + "real"][7])
    assert example["flux"] == want["flux_1400"][7]  # catalog column under its standard name
    assert example["provenance"]["survey"] == "toyradio"

    hfds = hf.load(radio, cache_dir=tmp_path / "cache")
    assert set(hfds.features["visibilities"]) == {"uvw", "real", "imag", "weight"}
    row = hfds[int(np.flatnonzero(np.sort(np.r_[make_rows(40, 1)["object_id"],
                                                 want["object_id"]]) == want["object_id"][7])[0])]
    assert row["object_id"] == want["object_id"][7]
    np.testing.assert_array_equal(np.asarray(row["visibilities"]["uvw"]), want[PREFIX + "uvw"][7])

    png = preview(radio, tmp_path / "vis.png", object_id=int(want["object_id"][7]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_corrupt_row_of_the_new_modality_is_reported(radio):
    import h5py

    path = next(radio.glob("healpix=*/*.hdf5"))
    with h5py.File(path, "r+") as h:
        del h[PREFIX + "imag"]
        h[PREFIX + "imag"] = np.zeros((h["object_id"].shape[0], N_BASELINES - 1), np.float32)
    report = validate(radio, full=True)
    assert not report.ok
    assert any("visibility fields must have one length" in p.message for p in report.problems)


def test_former_modality_names_still_open():
    assert schemas.get_modality("timeseries").name == "lightcurve"
    info = SurveyInfo(name="old", modality="timeseries", description="", default_config="a",
                      configs=[ConfigInfo(name="a")])
    assert info.modality == "lightcurve"
    with pytest.raises(ValueError, match="unknown modality 'radio'.*known: image"):
        SurveyInfo(name="bad", modality="radio", description="", default_config="a",
                   configs=[ConfigInfo(name="a")])
