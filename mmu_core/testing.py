"""Helpers for plugin authors' tests: no install needed.

::

    from mmu_core import testing
    import mmu_desi.hooks

    def test_conformance():
        testing.check_plugin(mmu_desi.hooks)

    def test_end_to_end(tmp_path):
        path = testing.sample_build_validate("desi", tmp_path, n=50)
        ds = mmu_core.open_dataset(path)

``plugin_registry(plugin)`` gives a fresh registry holding only the plugin objects given,
and ``use_registry`` makes it the one the CLI and the build use, for the ``with`` block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmu_core.models import SampleRequest
from mmu_core.registry import Registry, get_registry, set_registry
from mmu_core.schemas import modality_prefixes

STANDARD_COLUMNS = ("object_id", "ra", "dec", "healpix")


def plugin_registry(*plugins: Any, installed: bool = False) -> Registry:
    """A fresh registry with ``plugins`` registered in-process (plus installed ones if asked)."""
    registry = Registry.from_entry_points() if installed else Registry.empty()
    for i, plugin in enumerate(plugins):
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{i}"
        registry.add(plugin, name=name, distribution=None)
    return registry


@contextlib.contextmanager
def use_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the process-wide one for the duration of the block."""
    old = set_registry(registry)
    try:
        yield registry
    finally:
        set_registry(old)


def check_plugin(plugin: Any) -> Registry:
    """Conformance check every plugin's tests should call; raises AssertionError listing all
    problems. Returns the registry holding the plugin for further use.

    ``mmu_aliases`` and ``mmu_sample`` are optional: a hooks module without them passes (see
    ``Registry.can_sample``)."""
    registry = plugin_registry(plugin)
    problems = [str(f) for f in registry.failures]
    if not registry.surveys and not problems:
        problems.append("mmu_describe returned no surveys")
    for name, entry in registry.surveys.items():
        info = entry.info
        if not info.description.strip():
            problems.append(f"{name}: empty description")
        for config in info.config_names():
            try:
                aliases = registry.aliases(name, config)
            except Exception as exc:  # noqa: BLE001 - report anything a plugin raises
                problems.append(f"{name}/{config}: mmu_aliases raised {exc!r}")
                continue
            for native, standard in aliases.items():
                declared = (
                    native in info.columns
                    or native in STANDARD_COLUMNS
                    or native.startswith(modality_prefixes())
                )
                if not declared:
                    problems.append(
                        f"{name}/{config}: alias {native!r} -> {standard!r} points at a column "
                        "not declared in SurveyInfo.columns"
                    )
                if not standard or not standard.replace("_", "a").replace(".", "a").isalnum():
                    problems.append(f"{name}/{config}: alias target {standard!r} is not a plain name")
            targets = list(aliases.values())
            if len(set(targets)) != len(targets):
                problems.append(f"{name}/{config}: two native columns alias to the same name")
    if problems:
        raise AssertionError("plugin does not conform:\n- " + "\n- ".join(problems))
    return registry


def sample_build_validate(
    survey: str,
    workdir: Path,
    n: int = 50,
    seed: int = 0,
    config: str | None = None,
    ra: float = 150.0,
    dec: float = 2.0,
    radius: float = 0.5,
    sample_options: dict[str, Any] | None = None,
    build_options: dict[str, Any] | None = None,
    registry: Registry | None = None,
) -> Path:
    """Write a sample, build it, validate it (strict); return the dataset folder.

    Raises AssertionError listing the validator's problems if the built dataset is invalid.
    Skips the calling test (``pytest.skip``) when the survey's plugin has no ``mmu_sample``.
    """
    from mmu_core.build import build
    from mmu_core.validate import validate

    registry = registry or get_registry()
    if not registry.can_sample(survey):
        import pytest

        pytest.skip(f"the plugin for {survey!r} has no mmu_sample: nothing to sample, build "
                    "and validate")
    raw = Path(workdir) / "raw" / survey
    out = Path(workdir) / "out"
    registry.sample(
        survey,
        SampleRequest(out_dir=raw, n=n, seed=seed, ra=ra, dec=dec, radius=radius,
                      options=sample_options or {}),
    )
    summary = build(survey, raw, out, config=config, options=build_options or {},
                    registry=registry, workers=1)
    report = validate(summary.path, strict=True)
    if not report.ok:
        raise AssertionError("built dataset is invalid:\n" + report.text())
    return summary.path
