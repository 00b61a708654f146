"""The *sample* hook: synthetic raw inputs in the survey's official layout."""

from __future__ import annotations

from mmu_core.hookspecs.markers import hookspec
from mmu_core.models import SampleRequest, SampleResult


@hookspec(firstresult=True)
def mmu_sample(survey: str, request: SampleRequest) -> SampleResult | None:
    """Write synthetic raw files for ``survey`` into ``request.out_dir``.

    Called by ``mmu sample SURVEY`` and ``mmu demo``. Dispatch: the first non-``None``
    result wins. The files must follow the survey's published layout exactly (file names,
    HDU names, dtypes, units), place objects inside the cone ``request.ra``/``request.dec``/
    ``request.radius`` (degrees) so samples of different surveys overlap, and be
    reproducible from ``request.seed``.

    :returns: ``None`` if the survey is not this implementation's; otherwise a
        :class:`mmu_core.models.SampleResult`.
    """
