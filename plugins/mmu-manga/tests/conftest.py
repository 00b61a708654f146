"""Fixtures of the mmu-manga tests; the helpers live in manga_testutil (a unique name)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from manga_testutil import raw_copy, small_raw  # noqa: E402, F401  (fixtures)
