"""sample -> build -> validate through the core, and reading rows back by id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

import mmu_core
from mmu_core import testing
from mmu_core.build import build
from mmu_desi import convert


def test_sample_build_validate_and_get(tmp_path, desi_registry):
    path = testing.sample_build_validate("desi", tmp_path, n=40, seed=3, ra=150.0, dec=2.0,
                                         radius=0.4, registry=desi_registry)
    ds = mmu_core.open_dataset(path)
    assert len(ds) == 40
    zcat = fits.getdata(next((tmp_path / "raw").rglob("zall-pix-*.fits")), "ZCATALOG")
    z_of = dict(zip(zcat["TARGETID"].tolist(), zcat["Z"].tolist(), strict=True))
    ids = np.sort(np.concatenate([b["object_id"] for b in ds.iter_batches(columns=["object_id"])]))
    ask = ids[[5, 0, 17, 39]]  # any order
    rows = ds.get(ask, columns=["spectrum_flux", "spectrum_ivar", "spectrum_lambda",
                                "spectrum_mask", "spectrum_lsf_sigma", "Z", "object_id"])
    assert rows["object_id"].tolist() == ask.tolist()
    for col in ("spectrum_flux", "spectrum_ivar", "spectrum_lambda", "spectrum_mask",
                "spectrum_lsf_sigma"):
        assert rows[col].shape == (4, 7781), col
    assert rows["spectrum_mask"].dtype == bool
    assert rows["spectrum_lambda"][0, 0] == 3600.0 and rows["spectrum_lambda"][0, -1] == 9824.0
    for t, z in zip(ask.tolist(), rows["Z"].tolist(), strict=True):
        assert (z == z_of[t]) if t in z_of else np.isnan(z)
    # aliases resolve at read time
    ex = ds.example(int(ask[0]))
    assert ex["z"] == rows["Z"][0] or (np.isnan(ex["z"]) and np.isnan(rows["Z"][0]))
    assert len(ex["spectrum"]["flux"]) == 7781


def test_sv3_config_builds_from_an_sv3_sample(tmp_path, desi_registry):
    path = testing.sample_build_validate(
        "desi", tmp_path, n=15, seed=1, radius=0.2, config="edr_sv3",
        sample_options={"survey": "sv3", "catalog": "redrock"}, registry=desi_registry)
    ds = mmu_core.open_dataset(path)
    assert len(ds) == 15 and "SV3_DESI_TARGET" in ds.columns and "DESI_TARGET" not in ds.columns
    mjd = np.concatenate([b["MEAN_MJD"] for b in ds.iter_batches(columns=["MEAN_MJD"])])
    assert np.isnan(mjd).all()  # fuji FIBERMAPs lack it; the build said so once
    warnings = ds.manifest.extra["warnings"]
    assert sum(w.startswith(convert.MISSING_COLUMNS) for w in warnings) == 1


def test_build_without_catalog_warns_once(tmp_path, desi_registry):
    desi_registry.sample("desi", mmu_core.models.SampleRequest(
        out_dir=tmp_path / "raw", n=30, seed=2, radius=0.8, options={"catalog": "none"}))
    summary = build("desi", tmp_path / "raw", tmp_path / "out", registry=desi_registry)
    assert summary.units > 1 and summary.rows == 30
    assert summary.warnings == [convert.NO_CATALOG]
    z = np.concatenate([b["Z"] for b in mmu_core.open_dataset(summary.path).iter_batches(columns=["Z"])])
    assert np.isnan(z).all()


def test_cli_sample_build_validate(tmp_path):
    """The installed entry point, as a user runs it."""
    mmu = Path(sys.executable).with_name("mmu")
    env = {**os.environ, "MMU_LOAD_PLUGINS": "desi"}
    raw, out = tmp_path / "raw", tmp_path / "out"

    def run(*args):
        res = subprocess.run([str(mmu), *args], capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    assert "20 objects" in run("sample", "desi", "--out", str(raw), "--n", "20", "--seed", "9",
                               "--ra", "40", "--dec", "-5", "--radius", "0.2deg")
    run("build", "desi", "--raw", str(raw), "--out", str(out))
    assert "valid" in run("validate", str(out / "desi" / "dr1_main"))
