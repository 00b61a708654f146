"""Run a toy build in its own process (the SIGKILL test kills it part-way)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from toy_plugin import ToyPlugin  # noqa: E402

from mmu_core import testing  # noqa: E402
from mmu_core.build import build  # noqa: E402

if __name__ == "__main__":
    raw, out, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    registry = testing.plugin_registry(ToyPlugin(batch=20, delay=delay))
    summary = build("toyimg", raw, out, registry=registry, max_file_bytes=300_000)
    print(summary.rows, summary.units_converted)
