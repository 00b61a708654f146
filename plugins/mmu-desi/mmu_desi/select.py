"""Which FIBERMAP rows become objects: shared by discover (to give every target one owner)
and convert (to pick the rows), so both always agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmu_desi import catalogs
from mmu_desi import columns as cols


def real_targets(targetid: np.ndarray, fiberstatus: np.ndarray,
                 objtype: np.ndarray | None) -> np.ndarray:
    """TARGETID > 0 (sky and unassigned fibers are negative), good fiber, OBJTYPE TGT if known."""
    keep = (targetid > 0) & (fiberstatus == 0)
    if objtype is not None:
        keep &= objtype == b"TGT"
    return keep


def redshift_table(config: str, meta: dict, program: str | None) -> catalogs.RedshiftTable | None:
    """The redshift rows that go with a unit: zall-pix if the build has one, else the coadd's
    redrock file, else None."""
    spec = cols.CONFIGS[config]
    if meta.get("zall"):
        return catalogs.load_zall(meta["zall"], spec.survey, spec.primary_flags).table(program)
    if meta.get("redrock"):
        return catalogs.read_redrock(Path(meta["redrock"]))
    return None
