"""The *sample* hook: synthetic raw inputs in the survey's official layout."""

from __future__ import annotations

from mmu_core.hookspecs.markers import hookspec
from mmu_core.models import SampleRequest, SampleResult


@hookspec(firstresult=True)
def mmu_sample(survey: str, request: SampleRequest) -> SampleResult | None:
    """Write synthetic raw files for ``survey`` into ``request.out_dir``.

    Called by ``mmu sample SURVEY`` and ``mmu demo``, only on the plugin that provides
    ``survey`` and only for its own surveys. The files must follow the survey's published
    layout exactly (file names, HDU names, dtypes, units), place objects inside the cone
    ``request.ra``/``request.dec``/``request.radius`` (degrees), the first ones exactly at
    ``request.positions`` when given, so samples of different surveys overlap
    (:func:`mmu_core.sampling.cone_positions` does both), and be reproducible from
    ``request.seed``.

    Optional: a plugin without it still builds its surveys; ``Registry.can_sample`` is then
    False, ``mmu sample`` refuses the survey with a message saying so and ``mmu demo`` leaves
    it out.

    :returns: a :class:`mmu_core.models.SampleResult`.
    """
