"""Converting galaxies one after another keeps the peak memory of one galaxy (slow: set
MMU_SLOW=1). The 50-galaxy measurement through ``mmu build`` is bench/rss_build.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from manga_testutil import write

from mmu_manga import datamodel as dm

pytestmark = pytest.mark.skipif(not os.environ.get("MMU_SLOW"), reason="slow: set MMU_SLOW=1")

SCRIPT = r"""
import resource, sys
from pathlib import Path
from mmu_core.models import ConvertContext
from mmu_manga import convert, discover
raw, n = Path(sys.argv[1]), int(sys.argv[2])
for unit in discover.discover_units("dr17", raw, {})[:n]:
    for batch in convert.convert_unit(unit, ConvertContext(raw_dir=raw)):
        del batch
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def _peak_mb(raw, n: int) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(raw), str(n)], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[-1])


def test_peak_memory_does_not_grow_with_galaxies(tmp_path):
    raw = write(tmp_path / "raw", n=6, seed=1, nwave=dm.NWAVE, bundles="19,37")
    one, six = _peak_mb(raw, 1), _peak_mb(raw, 6)
    row_mb = 4 * 96 * 96 * dm.NWAVE * 4 / 2**20  # one padded galaxy: 673 MB
    assert one < 2 * row_mb
    assert six - one < 0.25 * row_mb, (one, six)
