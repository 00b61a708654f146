"""A clean virtualenv for install tests, reusing the installed third-party packages.

The venv sees the already-installed dependencies (a .pth pointing at a folder of links to
them) but none of the mmu distributions, which tests pip-install into it for real, so entry
points are discovered exactly as on a user's machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)


def make_clean_venv(root: Path, install_core: bool = True) -> tuple[Path, dict[str, str]]:
    venv = root / "venv"
    res = run(sys.executable, "-m", "venv", venv)
    assert res.returncode == 0, res.stderr
    deps = root / "deps"
    deps.mkdir()
    purelib = Path(sysconfig.get_paths()["purelib"])
    for entry in purelib.iterdir():
        name = entry.name.lower()
        if name.startswith(("mmu", "__editable__", "_mmu")) or name.endswith(".pth"):
            continue
        (deps / entry.name).symlink_to(entry)
    site = Path(run(venv / "bin" / "python", "-c",
                    "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "zz_shared_deps.pth").write_text(str(deps) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMU_", "PYTHON"))}
    if install_core:
        pip_install(venv, env, REPO)
    return venv, env


def pip_install(venv: Path, env: dict[str, str], *targets) -> None:
    res = run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", *targets, env=env)
    assert res.returncode == 0, res.stderr
