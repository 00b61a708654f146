"""Scale-out on a real dask.distributed cluster on loopback.

A scheduler and two workers run as separate processes from a clean virtualenv holding the core
and a plugin scaffolded by ``mmu new-plugin`` (so the workers find it through its entry point,
as on a real cluster). The same build runs locally and on the cluster; the stored files must be
byte-identical. Then a worker is SIGKILLed mid-build: the build still completes, with the
same files and nothing half-written.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner
from venvs import make_clean_venv, pip_install, run

from mmu_core.cli import app


def _files(dataset: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dataset)): p.read_bytes() for p in sorted(dataset.rglob("*.hdf5"))}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    res = CliRunner().invoke(app, ["new-plugin", "clusterdemo", "--modality", "spectrum",
                                   "--dest", str(root)])
    assert res.exit_code == 0, res.output
    venv, env = make_clean_venv(root / "env")
    pip_install(venv, env, root / "mmu-clusterdemo")
    sched_file = root / "scheduler.json"
    procs = [subprocess.Popen(
        [venv / "bin" / "python", "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", sched_file],
        env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    deadline = time.time() + 60
    while not sched_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    address = json.loads(sched_file.read_text())["address"]
    workers = []
    for _ in range(2):
        workers.append(subprocess.Popen(
            [venv / "bin" / "python", "-m", "dask", "worker", "--scheduler-file", sched_file, "--nthreads", "1",
             "--no-nanny", "--no-dashboard", "--death-timeout", "60"],
            env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    procs += workers
    probe = run(venv / "bin" / "python", "-c",
                f"from distributed import Client; c = Client('{address}', timeout=60); "
                "c.wait_for_workers(2, timeout=60); print(len(c.scheduler_info()['workers']))",
                env=env)
    assert probe.stdout.strip() == "2", probe.stderr
    raw = root / "raw"
    res = run(venv / "bin" / "mmu", "sample", "clusterdemo", "--out", raw, "--n", "3000",
              env=env)
    assert res.returncode == 0, res.stderr
    yield {"venv": venv, "env": env, "address": address, "raw": raw, "root": root,
           "workers": workers}
    for p in procs:
        p.kill()
        p.wait()


def _build(cluster, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run(cluster["venv"] / "bin" / "mmu", "build", "clusterdemo", "--raw", cluster["raw"],
               "--out", out, *extra, env=cluster["env"])


def test_cluster_build_matches_local_byte_for_byte(cluster):
    root = cluster["root"]
    local = _build(cluster, root / "local", "--workers", "1")
    assert local.returncode == 0, local.stderr
    remote = _build(cluster, root / "remote", "--scheduler", cluster["address"])
    assert remote.returncode == 0, remote.stderr
    a = _files(root / "local" / "clusterdemo" / "default")
    b = _files(root / "remote" / "clusterdemo" / "default")
    assert a and a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a), "cluster output differs from the local build"
    pool = _build(cluster, root / "pool", "--workers", "2")
    assert pool.returncode == 0, pool.stderr
    assert _files(root / "pool" / "clusterdemo" / "default") == a
    check = run(cluster["venv"] / "bin" / "mmu", "validate", "--strict",
                root / "remote" / "clusterdemo" / "default", env=cluster["env"])
    assert check.returncode == 0, check.stdout


@pytest.mark.parametrize("how", ["all", "nearest"])
def test_cluster_crossmatch_matches_local(cluster, how):
    """Cross-match tasks on the cluster's workers (pairs shipped back to the driver, the
    matched dataset written by the workers) give the local result, file for file."""
    import pyarrow.parquet as pq

    root = cluster["root"]
    src = root / "xm-src"
    if not src.exists():
        assert _build(cluster, src, "--workers", "1").returncode == 0
    dataset = src / "clusterdemo" / "default"
    outs = {}
    for name, extra in (("local", ["--workers", "1"]),
                        ("remote", ["--scheduler", cluster["address"]])):
        outs[name] = root / f"xm-{how}-{name}"
        res = run(cluster["venv"] / "bin" / "mmu", "crossmatch", dataset, dataset, "--radius",
                  "20arcsec", "--how", how, "--out", outs[name], *extra, env=cluster["env"])
        assert res.returncode == 0, res.stderr
    local, remote = (pq.read_table(outs[k] / "catalog.parquet") for k in ("local", "remote"))
    assert local.num_rows >= 3000 and local.equals(remote)
    if how == "all":  # every object meets itself, and some others within 20"
        assert local.num_rows > 3000
    a, b = (_files(outs[k] / "left_x_right" / "matched") for k in ("local", "remote"))
    assert a and a == b


def test_worker_killed_mid_build_still_completes(cluster):
    root = cluster["root"]
    out = root / "killed"
    env = dict(cluster["env"], MMU_SCHEDULER=cluster["address"])
    proc = subprocess.Popen(
        [cluster["venv"] / "bin" / "mmu", "build", "clusterdemo", "--raw", cluster["raw"],
         "--out", out], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = out / "clusterdemo" / "default" / "_staging"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if staging.exists() and any((d / "DONE.json").exists() for d in staging.iterdir()):
            break
        time.sleep(0.02)
    victim = cluster["workers"][0]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    stdout, stderr = proc.communicate(timeout=300)
    dataset = out / "clusterdemo" / "default"
    if proc.returncode != 0:  # allowed: fail clearly, then finish on a re-run
        assert "error" in stderr.lower()
        rerun = _build(cluster, out, "--scheduler", cluster["address"])
        assert rerun.returncode == 0, rerun.stderr
    assert not list(dataset.rglob("*.tmp-*"))
    local = root / "local" / "clusterdemo" / "default"
    if not local.exists():
        assert _build(cluster, root / "local", "--workers", "1").returncode == 0
    assert _files(dataset) == _files(local)


def test_local_workers_see_their_pool_creators_environment(monkeypatch):
    """Workers fork from a fork server started earlier; they still get the environment of the
    process making the pool now (MMU_CACHE, plugin switches), as spawned workers did."""
    import os

    from mmu_core.executors import ProcessPool, run_tasks
    from mmu_core.processes import process_context, start_worker_server

    start_worker_server()  # the server exists before the variable does
    monkeypatch.setenv("MMU_TEST_WORKER_ENV", "seen")
    args = [("MMU_TEST_WORKER_ENV",)] * 4
    assert list(run_tasks(os.getenv, args, workers=2)) == ["seen"] * 4
    with ProcessPool(2) as pool:  # a pool kept across calls too
        assert list(run_tasks(os.getenv, args, workers=2, pool=pool)) == ["seen"] * 4
    if "forkserver" in __import__("multiprocessing").get_all_start_methods():
        assert process_context().get_start_method() == "forkserver"
