"""Plugins install separately: in a clean virtualenv the core alone lists no surveys, and
``pip install plugins/mmu-desi`` makes exactly ``desi`` appear.

The clean environment reuses the already-installed third-party packages (a .pth pointing at a
folder that links to them) but none of the mmu distributions, which are pip-installed into it
for real, so entry points are discovered exactly as on a user's machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    venv = root / "venv"
    res = _run(sys.executable, "-m", "venv", venv)
    assert res.returncode == 0, res.stderr
    deps = root / "deps"
    deps.mkdir()
    purelib = Path(sysconfig.get_paths()["purelib"])
    for entry in purelib.iterdir():
        name = entry.name.lower()
        if name.startswith(("mmu", "__editable__", "_mmu")) or name.endswith(".pth"):
            continue
        (deps / entry.name).symlink_to(entry)
    site = Path(_run(venv / "bin" / "python", "-c",
                     "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "zz_shared_deps.pth").write_text(str(deps) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMU_", "PYTHON"))}
    res = _run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", REPO, env=env)
    assert res.returncode == 0, res.stderr
    return venv, env


def _surveys(venv, env):
    res = _run(venv / "bin" / "mmu", "list-surveys", "--json", env=env, cwd=venv)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_core_alone_lists_no_surveys_then_desi_only(clean_venv):
    venv, env = clean_venv
    assert _surveys(venv, env) == []
    res = _run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps",
               REPO / "plugins" / "mmu-desi", env=env)
    assert res.returncode == 0, res.stderr
    rows = _surveys(venv, env)
    assert [(r["name"], r["distribution"], r["status"]) for r in rows] == [
        ("desi", "mmu-desi", "ok")]
