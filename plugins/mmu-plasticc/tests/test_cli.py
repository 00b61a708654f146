"""The command line: mmu sample -> mmu build -> mmu validate for both releases, describe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmu_core
from mmu_core import testing

MMU = str(Path(sys.executable).with_name("mmu"))
ENV = {**os.environ, "MMU_LOAD_PLUGINS": "plasticc", "COLUMNS": "200"}


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([MMU, *args], capture_output=True, text=True, env=ENV, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize("release,config", [("kaggle", "train"), ("unblinded", "test")])
def test_sample_build_validate_on_the_command_line(tmp_path, release, config):
    raw, out = tmp_path / "raw", tmp_path / "out"
    run(
        "sample",
        "plasticc",
        "--out",
        str(raw),
        "--n",
        "9",
        "--seed",
        "4",
        "--ra",
        "40",
        "--dec",
        "-1",
        "--radius",
        "0.3deg",
        "--release",
        release,
    )
    run("build", "plasticc", "--raw", str(raw), "--out", str(out), "--config", config)
    report = run("validate", "--strict", "--json", str(out / "plasticc" / config))
    assert json.loads(report.stdout)["ok"] is True
    assert len(mmu_core.open_dataset(out / "plasticc" / config)) == 9


@pytest.mark.parametrize("release,config", [("kaggle", "test"), ("unblinded", "train")])
def test_testing_helper_builds_the_other_configs(tmp_path, release, config):
    path = testing.sample_build_validate(
        "plasticc", tmp_path, n=6, config=config, sample_options={"release": release}
    )
    assert len(mmu_core.open_dataset(path)) == 6


def test_bad_input_on_the_command_line(tmp_path, helpers):
    raw, out = tmp_path / "raw", tmp_path / "out"
    helpers.sample(raw, n=3)
    lc = raw / "training_set.csv"
    lines = lc.read_text().splitlines(keepends=True)
    object_id = lines[5].split(",")[0]
    lines[5] = f"{object_id},59999.0,9,1.0,1.0,0\n"  # line 6: passband 9
    lc.write_text("".join(lines))
    proc = run("build", "plasticc", "--raw", str(raw), "--out", str(out), ok=False)
    assert proc.returncode == 1
    message = " ".join(proc.stderr.split())
    assert f"object {object_id}" in message and "line 6: passband 9 is outside 0-5" in message
    assert "training_set.csv" in message
    proc = run("build", "plasticc", "--raw", str(raw), "--out", str(out), "--skip-bad")
    assert object_id in proc.stdout and "object left out" in " ".join(proc.stdout.split())


def test_describe_lists_options_and_aliases():
    data = json.loads(run("describe", "plasticc", "--json").stdout)
    assert data["modality"] == "lightcurve"
    assert [c["name"] for c in data["configs"]] == ["train", "test"]
    assert data["aliases"]["train"]["decl"] == "dec"
    assert data["aliases"]["test"]["true_z"] == "z"
    assert {o["name"] for o in data["build_options"]} == {"release", "length", "unit_mb"}
    assert {o["name"] for o in data["sample_options"]} == {"release"}
    for column in ("obj_type", "redshift", "target", "hostgal_specz", "decl", "true_z"):
        assert column in data["columns"]
