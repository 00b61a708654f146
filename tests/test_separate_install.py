"""Plugins install separately: in a clean virtualenv the core alone lists no surveys, and
``pip install plugins/mmu-desi`` makes exactly ``desi`` appear."""

from __future__ import annotations

import json

from venvs import REPO, make_clean_venv, pip_install, run


def _surveys(venv, env):
    res = run(venv / "bin" / "mmu", "list-surveys", "--json", env=env, cwd=venv)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_core_alone_lists_no_surveys_then_desi_only(tmp_path):
    venv, env = make_clean_venv(tmp_path)
    assert _surveys(venv, env) == []
    pip_install(venv, env, REPO / "plugins" / "mmu-desi")
    rows = _surveys(venv, env)
    assert [(r["name"], r["distribution"], r["status"]) for r in rows] == [
        ("desi", "mmu-desi", "ok")]


def test_the_legacy_survey_plugin_installs_separately(tmp_path):
    """``pip install plugins/mmu-legacysurvey`` beside the core: ``mmu list-surveys`` shows it,
    and it samples, builds and validates in that venv."""
    venv, env = make_clean_venv(tmp_path)
    pip_install(venv, env, REPO / "plugins" / "mmu-legacysurvey")
    rows = _surveys(venv, env)
    assert [(r["name"], r["distribution"], r["status"]) for r in rows] == [
        ("legacysurvey", "mmu-legacysurvey", "ok")]
    raw, out = tmp_path / "raw", tmp_path / "out"
    for args in (("sample", "legacysurvey", "--out", raw, "--n", "8", "--dec", "2.25",
                  "--ra", "150.0834", "--radius", "0.01deg", "--brick-size", "600",
                  "--layout", "bricks"),
                 ("build", "legacysurvey", "--raw", raw, "--out", out),
                 ("validate", out / "legacysurvey" / "dr10_south_21", "--strict")):
        res = run(venv / "bin" / "mmu", *map(str, args), env=env, cwd=venv)
        assert res.returncode == 0, res.stdout + res.stderr
