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
