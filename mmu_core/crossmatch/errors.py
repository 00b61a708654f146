"""The cross-match's error."""

from __future__ import annotations

from mmu_core.errors import MMUError


class CrossMatchError(MMUError):
    """Bad cross-match arguments or output folder."""
