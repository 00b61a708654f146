"""``mmu demo`` end to end on two real plugins at a small scale (integration test)."""

from __future__ import annotations

import pytest

from mmu_core import testing
from mmu_core.demo import run_demo

hsc_hooks = pytest.importorskip("mmu_hsc.hooks")
desi_hooks = pytest.importorskip("mmu_desi.hooks")


def test_demo_samples_builds_matches_loads_and_draws(tmp_path):
    registry = testing.plugin_registry(hsc_hooks, desi_hooks)
    report = run_demo(tmp_path, registry=registry, scale=0.1)
    assert [d["survey"] for d in report.datasets] == ["hsc", "desi"]  # chain order: image first
    assert all(d["valid"] and d["rows"] > 0 for d in report.datasets)
    (match,) = report.matches
    # half of the DESI sample sits exactly on HSC objects: at least those are matched
    assert match["matches"] >= int(report.datasets[1]["rows"] * 0.5)
    assert {"hsc", "desi"} <= set(report.hf["keys"])
    for png in report.previews:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert {p.name for p in report.previews} >= {"hsc.png", "desi.png", "sky.png",
                                                  "match-hsc_x_desi.png"}
