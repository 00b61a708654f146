"""sample -> build -> validate through the core (API and CLI); stored columns per schemas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mmu_core
import mmu_hsc.hooks
from mmu_core import testing
from mmu_core.build import build
from mmu_core.errors import BuildError

BANDS = "grizy"
MMU = str(Path(sys.executable).with_name("mmu"))


def test_sample_build_validate_stores_formats_columns(tmp_path, hsc):
    registry = testing.plugin_registry(mmu_hsc.hooks)
    path = testing.sample_build_validate(
        "hsc", tmp_path, n=30, seed=4, registry=registry,
        sample_options={"patch_size": 500, "objects_per_patch": 15})
    ds = mmu_core.open_dataset(path)
    n = len(ds)
    assert n == 30
    ids = np.sort(hsc.read_catalog(tmp_path / "raw" / "hsc")["object_id"])
    rows = ds.get(ids)
    expected = {
        "image_array": ((n, 5, 160, 160), "f4"), "image_ivar": ((n, 5, 160, 160), "f4"),
        "image_mask": ((n, 5, 160, 160), "b1"), "image_psf_fwhm": ((n, 5), "f4"),
        "image_scale": ((n, 5), "f4"), "image_extinction": ((n, 5), "f4"),
        "object_id": ((n,), "i8"), "ra": ((n,), "f8"), "dec": ((n,), "f8"),
    }
    for name, (shape, kind) in expected.items():
        assert rows[name].shape == shape and rows[name].dtype.str[1:] == kind, name
    assert rows["image_band"].shape == (n, 5)
    assert [b.decode() if isinstance(b, bytes) else b for b in rows["image_band"][0]] == [
        f"hsc-{b}" for b in BANDS]
    # what was stored is what the converter produced (the core changes nothing)
    direct, _ = hsc.convert_all(tmp_path / "raw" / "hsc", config="pdr3_dud_22.5")
    order = np.argsort(direct["object_id"])
    for name in ("image_array", "image_ivar", "image_mask", "image_psf_fwhm", "i_cmodel_mag"):
        np.testing.assert_array_equal(rows[name], direct[name][order], err_msg=name)
    # standard names through the aliases
    np.testing.assert_array_equal(ds.get(ids[:3], columns=["mag_i"])["mag_i"],
                                  rows["i_cmodel_mag"][:3])
    example = ds.example(int(ids[0]))
    assert [band["filter"] for band in example["image"]] == [f"hsc-{b}" for b in BANDS]


def test_build_reports_a_corrupt_calexp_or_skips_it(tmp_path, hsc):
    registry = testing.plugin_registry(mmu_hsc.hooks)
    raw = hsc.write_sample(tmp_path / "raw", n=12, seed=8, patch_size=300, objects_per_patch=6)
    cat = hsc.read_catalog(raw)
    bad = hsc.calexp_path(raw, "r", cat["tract"][0], cat["patch"][0])
    bad.write_bytes(bad.read_bytes()[:4000])
    with pytest.raises(BuildError, match=str(bad)):
        build("hsc", raw, tmp_path / "out1", registry=registry)
    summary = build("hsc", raw, tmp_path / "out2", options={"skip_bad": True}, registry=registry)
    assert summary.rows == 12
    assert [s["file"] for s in summary.skipped_objects] == [str(bad)]
    assert any("HSC-R" in w for w in summary.warnings)


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MMU_LOAD_PLUGINS="hsc", COLUMNS="200")
    return subprocess.run([MMU, *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_sample_build_validate(tmp_path, hsc):
    raw, out = tmp_path / "raw", tmp_path / "out"
    done = _run("sample", "hsc", "--out", str(raw), "--n", "20", "--seed", "1",
                "--patch-size", "400", "--objects-per-patch", "10", "--faint-fraction", "0.2")
    assert done.returncode == 0, done.stderr
    cat = hsc.read_catalog(raw)
    done = _run("build", "hsc", "--raw", str(raw), "--out", str(out))
    assert done.returncode == 0, done.stderr + done.stdout
    done = _run("validate", str(out / "hsc" / "pdr3_dud_22.5"), "--strict")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(mmu_core.open_dataset(out / "hsc" / "pdr3_dud_22.5")) == int(
        (cat["i_cmodel_mag"] < 22.5).sum())
    # survey options on the command line: the wide config, small stamps, all bands required
    hsc.calexp_path(raw, "y", cat["tract"][0], cat["patch"][0]).unlink()
    done = _run("build", "hsc", "--raw", str(raw), "--out", str(out), "--config", "pdr3_wide",
                "--stamp-size", "48", "--require-all-bands")
    assert done.returncode == 0, done.stderr + done.stdout
    ds = mmu_core.open_dataset(out / "hsc" / "pdr3_wide")
    same_patch = (cat["tract"] == cat["tract"][0]) & (cat["patch"] == cat["patch"][0])
    assert len(ds) == int((~same_patch).sum())
    assert ds.schema["image_array"].shape == (5, 48, 48)
