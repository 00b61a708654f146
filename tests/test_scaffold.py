"""``mmu new-plugin`` scaffolds plugins that install, list and pass their own tests."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner
from venvs import make_clean_venv, pip_install, run

from mmu_core.cli import app
from mmu_core.models import MODALITIES

runner = CliRunner()


def test_every_modality_scaffold_passes_its_generated_tests(tmp_path):
    roots = []
    for modality in MODALITIES:
        res = runner.invoke(app, ["new-plugin", f"x{modality}", "--modality", modality,
                                  "--dest", str(tmp_path)])
        assert res.exit_code == 0, res.output
        roots.append(tmp_path / f"mmu-x{modality}")
    env_path = ":".join(str(r) for r in roots)
    res = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
              "--import-mode=importlib", *[r / "tests" for r in roots],
              env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{2 * len(MODALITIES)} passed" in res.stdout


def test_scaffold_refuses_bad_names(tmp_path):
    res = runner.invoke(app, ["new-plugin", "Bad Name", "--modality", "image", "--dest",
                              str(tmp_path)])
    assert res.exit_code == 1 and "not a slug" in res.output
    res = runner.invoke(app, ["new-plugin", "ok", "--modality", "video", "--dest", str(tmp_path)])
    assert res.exit_code == 1 and "video" in res.output


@pytest.mark.parametrize("modality", ["spectrum"])
def test_scaffolded_plugin_installs_and_is_listed(tmp_path, modality):
    res = runner.invoke(app, ["new-plugin", "mysurvey", "--modality", modality, "--dest",
                              str(tmp_path)])
    assert res.exit_code == 0, res.output
    venv, env = make_clean_venv(tmp_path / "env")
    pip_install(venv, env, tmp_path / "mmu-mysurvey")
    listed = run(venv / "bin" / "mmu", "list-surveys", "--json", env=env, cwd=tmp_path)
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["distribution"], r["modality"]) for r in rows] == [
        ("mysurvey", "mmu-mysurvey", modality)]
    tests = run(venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                tmp_path / "mmu-mysurvey" / "tests", env=env, cwd=tmp_path)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_scaffold_writes_the_plugin_module_convention(tmp_path):
    """hooks, discover, reader, convert, samples, datamodel (README, "Add a survey"); the hooks
    check no survey name: the registry calls a plugin only for its own surveys."""
    from mmu_core.scaffold import scaffold

    root = scaffold("conv", "spectrum", tmp_path)
    modules = {p.stem for p in (root / "mmu_conv").glob("*.py")}
    assert modules == {"__init__", "hooks", "discover", "reader", "convert", "samples",
                       "datamodel"}
    hooks = (root / "mmu_conv" / "hooks.py").read_text()
    assert "survey !=" not in hooks and "return None" not in hooks
    assert "cone_positions" in (root / "mmu_conv" / "samples.py").read_text()
    assert "mmu_core.fits" in (root / "mmu_conv" / "reader.py").read_text()
