"""A build that meets a full disk or an interrupt stops cleanly: one clear message, the exit
code users can script on, no temporary file left, and the same command finishes the job."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toy_plugin import ToyPlugin, write_units

from mmu_core import testing
from mmu_core.build import build
from mmu_core.errors import OutOfSpaceError
from mmu_core.validate import validate

MMU = [sys.executable, "-m", "mmu_core.cli"]


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of every data and index file of a dataset (the manifest holds times)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "manifest.json"}


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                        capture_output=True)
    if ok.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {ok.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_build_cleanly_and_a_rerun_finishes(small_disk, tmp_path):
    write_units(tmp_path / "raw", n_units=6, n=300, ra=45.0, dec=0.0, radius=5.0)
    registry = testing.plugin_registry(ToyPlugin())
    with pytest.raises(OutOfSpaceError, match=r"no space left on device while writing .*"
                                              r"bytes needed, [\d,]+ free"):
        build("toyimg", tmp_path / "raw", small_disk / "out", registry=registry)
    leftovers = [p for p in small_disk.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []

    subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
    summary = build("toyimg", tmp_path / "raw", small_disk / "out", registry=registry)
    assert summary.rows == 1800 and validate(summary.path, strict=True).ok
    fresh = build("toyimg", tmp_path / "raw", tmp_path / "fresh", registry=registry)
    assert _digest(summary.path) == _digest(fresh.path)


def test_ctrl_c_stops_a_two_worker_build_at_once_and_the_rerun_completes(tmp_path):
    pytest.importorskip("mmu_desi")  # spawned workers load plugins from their entry points
    raw, out = tmp_path / "raw", tmp_path / "out"
    subprocess.run([*MMU, "sample", "desi", "--out", str(raw), "--n", "1200"], check=True,
                   capture_output=True)
    args = [*MMU, "build", "desi", "--raw", str(raw), "--out", str(out), "--workers", "2",
            "--config", "dr1_main"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staging = out / "desi" / "dr1_main" / "_staging"
    deadline = time.monotonic() + 60
    while not staging.exists() and time.monotonic() < deadline:  # converting has begun
        time.sleep(0.05)
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 130, err.decode()
    assert took < 2.0
    assert err.decode().strip().splitlines() == ["interrupted; rerun the same command to resume"]

    rerun = subprocess.run(args, capture_output=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert validate(out / "desi" / "dr1_main", strict=True).ok


# ---- a changed input is never served stale ---------------------------------------------------
def test_a_changed_input_stops_the_rerun_and_overwrite_rebuilds(tmp_path):
    import json

    from mmu_core.errors import BuildError

    registry = testing.plugin_registry(ToyPlugin())
    units = write_units(tmp_path / "raw", n_units=3, n=50, ra=45.0, dec=0.0, radius=2.0)
    first = build("toyimg", tmp_path / "raw", tmp_path / "out", registry=registry)
    assert build("toyimg", tmp_path / "raw", tmp_path / "out", registry=registry).noop

    units[1]["seed"] += 1  # one unit's rows change
    (tmp_path / "raw" / "units.json").write_text(json.dumps(units))
    with pytest.raises(BuildError, match=r"units\.json changed \(size|units\.json changed \(mtime"):
        build("toyimg", tmp_path / "raw", tmp_path / "out", registry=registry)
    old = _digest(first.path)
    assert _digest(first.path) == old  # refused: the old dataset is untouched

    again = build("toyimg", tmp_path / "raw", tmp_path / "out", registry=registry, overwrite=True)
    fresh = build("toyimg", tmp_path / "raw", tmp_path / "fresh", registry=registry)
    assert _digest(again.path) == _digest(fresh.path) != old
    assert not [p for p in (tmp_path / "out").rglob("*") if ".tmp-" in p.name]
    assert build("toyimg", tmp_path / "raw", tmp_path / "out", registry=registry).noop


def test_update_rebuilds_the_changed_unit_and_equals_a_fresh_build(tmp_path):
    import json

    from mmu_core.storage.manifest import load_manifest

    registry = testing.plugin_registry(ToyPlugin())
    raw = tmp_path / "raw"
    # units in distinct patches of sky, each with a file of its own
    units = []
    for i, ra in enumerate((20.0, 60.0, 100.0, 140.0)):
        units += write_units(tmp_path / f"u{i}", n_units=1, n=80, ra=ra, dec=10.0, radius=1.0,
                             seed=i)
    for i, u in enumerate(units):
        u["key"], u["id0"] = f"u{i:03d}", 10_000_000 * (i + 1)
    raw.mkdir()
    (raw / "units.json").write_text(json.dumps(units))
    for u in units:
        (raw / f"{u['key']}.json").write_text(json.dumps(u))
    first = build("toyimg", raw, tmp_path / "out", registry=registry)
    old = load_manifest(first.path)
    untouched = {f.path: (first.path / f.path).stat().st_ino for f in old.files}

    units[2]["seed"] += 7  # one unit's rows change, in its own pixels
    (raw / "u002.json").write_text(json.dumps(units[2]))
    updated = build("toyimg", raw, tmp_path / "out", registry=registry, update=True)
    assert updated.units_converted == 1 and updated.units == 4
    fresh = build("toyimg", raw, tmp_path / "fresh", registry=registry)
    assert _digest(updated.path) == _digest(fresh.path)
    assert validate(updated.path, strict=True).ok
    new = load_manifest(updated.path)
    changed_pixels = {f.pixel for f in new.files} - {f.pixel for f in old.files} | {
        f.pixel for f in old.files if (updated.path / f.path).exists()
        and (updated.path / f.path).stat().st_ino != untouched[f.path]}
    kept = [p for p, ino in untouched.items() if (updated.path / p).exists()
            and (updated.path / p).stat().st_ino == ino]
    assert kept and changed_pixels  # other pixels' files kept as they were (hard links)
    assert build("toyimg", raw, tmp_path / "out", registry=registry).noop
