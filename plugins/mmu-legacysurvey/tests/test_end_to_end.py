"""sample -> build -> validate through the core (API and CLI), for both configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import mmu_core
from mmu_core import testing

MMU = str(Path(sys.executable).with_name("mmu"))


def test_dr10_sample_build_validate(tmp_path, ls):
    path = testing.sample_build_validate(
        "legacysurvey", tmp_path, n=30, seed=4, registry=ls.registry(), dec=2.125, radius=0.16,
        sample_options={**ls.SMALL, "objects_per_brick": 15, "layout": "bricks"})
    ds = mmu_core.open_dataset(path)
    direct, _ = ls.convert_all(tmp_path / "raw" / "legacysurvey")
    n = len(direct["object_id"])
    assert len(ds) == n > 10
    order = np.argsort(direct["object_id"])
    ids = direct["object_id"][order]
    rows = ds.get(ids)
    shapes = {"image_array": ((n, 4, 160, 160), "f4"), "image_ivar": ((n, 4, 160, 160), "f4"),
              "image_mask": ((n, 4, 160, 160), "b1"), "image_psf_fwhm": ((n, 4), "f4"),
              "image_scale": ((n, 4), "f4"), "image_extinction": ((n, 4), "f4"),
              "ra": ((n,), "f8"), "dec": ((n,), "f8")}
    for name, (shape, kind) in shapes.items():
        assert rows[name].shape == shape and rows[name].dtype.str[1:] == kind, name
    for name in ("image_array", "image_ivar", "image_mask", "flux_r", "type", "brick_primary"):
        np.testing.assert_array_equal(rows[name], direct[name][order], err_msg=name)
    mag = ds.get(ids[:5], columns=["mag_r", "extinction_z"])
    np.testing.assert_allclose(mag["mag_r"], 22.5 - 2.5 * np.log10(rows["flux_r"][:5]), rtol=1e-6)
    np.testing.assert_allclose(mag["extinction_z"],
                               -2.5 * np.log10(rows["mw_transmission_z"][:5].astype(float)),
                               rtol=1e-5)
    example = ds.example(ids[0])
    assert [b["filter"] for b in example["image"]] == ["des-g", "des-r", "des-i", "des-z"]
    assert example["image"][0]["units"] == "nanomaggy"


def test_stein_sample_build_validate(tmp_path, ls):
    path = testing.sample_build_validate(
        "legacysurvey", tmp_path, n=20, seed=6, config="stein_et_al", registry=ls.registry(),
        sample_options={**ls.SMALL, "layout": "stein", "psf_fraction": 0.0},
        build_options={"rows_per_unit": 8})
    ds = mmu_core.open_dataset(path)
    assert len(ds) == 20
    direct, _ = ls.convert_all(tmp_path / "raw" / "legacysurvey", "stein_et_al")
    order = np.argsort(direct["object_id"])
    rows = ds.get(direct["object_id"][order])
    for name in ("image_array", "flux_z", "z_spec", "psfsize_g"):
        np.testing.assert_array_equal(rows[name], direct[name][order], err_msg=name)
    z = ds.get(direct["object_id"][order][:3], columns=["z", "mag_g"])
    np.testing.assert_array_equal(z["z"], rows["z_spec"][:3])


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MMU_LOAD_PLUGINS="legacysurvey", COLUMNS="200")
    return subprocess.run([MMU, *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_lists_samples_builds_and_validates(tmp_path):
    done = _run("list-surveys")
    assert done.returncode == 0 and "legacysurvey" in done.stdout, done.stderr
    raw, out = tmp_path / "raw", tmp_path / "out"
    done = _run("sample", "legacysurvey", "--out", str(raw), "--n", "12", "--seed", "2",
                "--dec", "2.125", "--radius", "0.16deg", "--brick-size", "300",
                "--objects-per-brick", "6", "--layout", "bricks")
    assert done.returncode == 0, done.stderr
    done = _run("build", "legacysurvey", "--raw", str(raw), "--out", str(out), "--skip-bad")
    assert done.returncode == 0, done.stderr + done.stdout
    done = _run("validate", str(out / "legacysurvey" / "dr10_south_21"), "--strict")
    assert done.returncode == 0, done.stdout + done.stderr
