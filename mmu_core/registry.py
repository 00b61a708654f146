"""Plugin manager and the typed facade the rest of the core talks to.

Nothing outside this module calls ``pm.hook`` directly. Every entry point is loaded in its own
try/except: a plugin that fails to import, has an invalid hook implementation, returns
malformed records or claims a survey that another distribution already provides is recorded
in :attr:`Registry.failures` and the others keep working.

Environment switches (comma-separated entry-point names):

- ``MMU_DISABLE_PLUGINS=hsc,desi`` — do not load these;
- ``MMU_LOAD_PLUGINS=desi`` — load only these (empty string: load none).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pluggy
from pydantic import ValidationError

from mmu_core.errors import PluginError, UnknownSurveyError
from mmu_core.hookspecs import PROJECT, SPEC_MODULES, SPEC_NAMES
from mmu_core.models import (
    ConvertContext,
    SampleRequest,
    SampleResult,
    SurveyInfo,
    WorkUnit,
    check_slug,
)

ENTRY_POINT_GROUP = PROJECT


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, and why."""

    entry_point: str
    distribution: str | None
    error: str

    def __str__(self) -> str:
        dist = f" ({self.distribution})" if self.distribution else ""
        return f"plugin {self.entry_point!r}{dist}: {self.error}"


@dataclass(frozen=True)
class SurveyEntry:
    """A survey the registry knows, with the plugin and distribution that provide it."""

    info: SurveyInfo
    plugin_name: str
    distribution: str | None
    version: str | None

    @property
    def name(self) -> str:
        return self.info.name


@dataclass
class Registry:
    """Typed access to the loaded plugins: one method per hook."""

    pm: pluggy.PluginManager
    surveys: dict[str, SurveyEntry] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> Registry:
        pm = pluggy.PluginManager(PROJECT)
        for module in SPEC_MODULES:
            pm.add_hookspecs(module)
        return cls(pm=pm)

    @classmethod
    def from_entry_points(
        cls, entry_points: Iterable[metadata.EntryPoint] | None = None
    ) -> Registry:
        """Load the ``mmu`` entry points (or the ones given), honouring the env switches."""
        registry = cls.empty()
        if entry_points is None:
            entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in _apply_switches(list(entry_points)):
            dist = ep.dist.name if getattr(ep, "dist", None) is not None else None
            version = ep.dist.version if getattr(ep, "dist", None) is not None else None
            try:
                plugin = ep.load()
            except BaseException as exc:  # a plugin's import may raise anything
                if isinstance(exc, KeyboardInterrupt):
                    raise
                registry.failures.append(
                    PluginFailure(ep.name, dist, f"import failed: {_describe_exc(exc)}")
                )
                continue
            registry.add(plugin, name=ep.name, distribution=dist, version=version)
        return registry

    def add(
        self,
        plugin: Any,
        name: str,
        distribution: str | None = None,
        version: str | None = None,
    ) -> bool:
        """Register one plugin object or module; record a failure instead of raising."""
        unknown = sorted(
            attr
            for attr in dir(plugin)
            if attr.startswith("mmu_") and callable(getattr(plugin, attr, None))
            and attr not in SPEC_NAMES
        )
        if unknown:
            self.failures.append(
                PluginFailure(name, distribution, f"unknown hook(s) {unknown}; known: "
                              f"{sorted(SPEC_NAMES)}")
            )
            return False
        try:
            self.pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            self.failures.append(
                PluginFailure(name, distribution, f"invalid hook implementation: {exc}")
            )
            return False
        try:
            infos = self._describe_one(plugin)
        except (PluginError, ValidationError, TypeError) as exc:
            self.pm.unregister(plugin)
            self.failures.append(PluginFailure(name, distribution, f"mmu_describe: {exc}"))
            return False
        except Exception as exc:  # noqa: BLE001 - a plugin's describe may raise anything
            self.pm.unregister(plugin)
            self.failures.append(
                PluginFailure(name, distribution, f"mmu_describe raised {_describe_exc(exc)}")
            )
            return False
        version = version or next((i.version for i in infos if i.version), None)
        accepted = False
        for info in infos:
            taken = self.surveys.get(info.name)
            if taken is not None:
                self.failures.append(
                    PluginFailure(
                        name,
                        distribution,
                        f"survey {info.name!r} is claimed by both "
                        f"{taken.distribution or taken.plugin_name!r} and "
                        f"{distribution or name!r}; the first one is kept",
                    )
                )
                continue
            self.surveys[info.name] = SurveyEntry(info, name, distribution, version)
            accepted = True
        if not accepted and infos:
            self.pm.unregister(plugin)
        return accepted

    def remove(self, name: str) -> None:
        """Unregister a plugin by name (tests use this to clean up)."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.surveys = {k: v for k, v in self.surveys.items() if v.plugin_name != name}

    def _describe_one(self, plugin: Any) -> list[SurveyInfo]:
        impl = getattr(plugin, "mmu_describe", None)
        if impl is None:
            return []
        result = impl()
        if result is None:
            return []
        if isinstance(result, (SurveyInfo, dict)):
            result = [result]
        infos = []
        for record in result:
            infos.append(
                record if isinstance(record, SurveyInfo) else SurveyInfo.model_validate(record)
            )
        return infos

    # ---- lookups --------------------------------------------------------------------------
    def survey(self, name: str) -> SurveyEntry:
        try:
            return self.surveys[name]
        except KeyError:
            known = ", ".join(sorted(self.surveys)) or "none"
            hint = ""
            if self.failures:
                hint = "; plugins that failed to load: " + "; ".join(map(str, self.failures))
            raise UnknownSurveyError(
                f"no installed plugin provides survey {name!r} (installed: {known}){hint}"
            ) from None

    def resolve_config(self, survey: str, config: str | None) -> str:
        info = self.survey(survey).info
        if config is None:
            return info.default_config
        if config not in info.config_names():
            raise UnknownSurveyError(
                f"survey {survey!r} has no config {config!r} (configs: {info.config_names()})"
            )
        return config

    def can_sample(self, survey: str) -> bool:
        """Does the plugin providing ``survey`` implement ``mmu_sample`` (it is optional)?

        :raises UnknownSurveyError: no installed plugin provides ``survey``.
        """
        return self._implements("mmu_sample", survey)

    # ---- dispatch -------------------------------------------------------------------------
    # A hook is called only on the plugin that declared the survey, and only for its own
    # surveys: implementations never check the survey name.
    def _owner(self, survey: str) -> Any:
        return self.pm.get_plugin(self.survey(survey).plugin_name)

    def _implements(self, hook: str, survey: str) -> bool:
        owner = self._owner(survey)
        return any(impl.plugin is owner for impl in getattr(self.pm.hook, hook).get_hookimpls())

    def _caller(self, hook: str, survey: str):
        owner = self._owner(survey)
        others = [p for p in self.pm.get_plugins() if p is not owner]
        return self.pm.subset_hook_caller(hook, remove_plugins=others)

    def discover(
        self, survey: str, config: str, raw_dir: Path, options: dict[str, Any]
    ) -> list[WorkUnit]:
        result = self._caller("mmu_discover", survey)(
            survey=survey, config=config, raw_dir=Path(raw_dir), options=options
        )
        if result is None:
            raise PluginError(f"plugin for {survey!r} has no mmu_discover for it")
        units = [u if isinstance(u, WorkUnit) else WorkUnit.model_validate(u) for u in result]
        keys = [u.key for u in units]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})[:5]
            raise PluginError(f"mmu_discover for {survey!r} returned repeated unit keys {dup}")
        return units

    def convert(self, unit: WorkUnit, context: ConvertContext) -> Iterator[dict[str, np.ndarray]]:
        result = self._caller("mmu_convert", unit.survey)(unit=unit, context=context)
        if result is None:
            raise PluginError(f"plugin for {unit.survey!r} has no mmu_convert for it")
        return iter(result)

    def aliases(self, survey: str, config: str) -> dict[str, str]:
        result = self._caller("mmu_aliases", survey)(survey=survey, config=config)
        return dict(result or {})

    def sample(self, survey: str, request: SampleRequest) -> SampleResult:
        """Write synthetic raw files for ``survey`` (see :meth:`can_sample`).

        :raises PluginError: the survey's plugin has no ``mmu_sample``, or it returned nothing.
        """
        if not self.can_sample(survey):
            entry = self.survey(survey)
            raise PluginError(
                f"survey {survey!r} has no sampler: its plugin "
                f"{entry.distribution or entry.plugin_name!r} does not implement mmu_sample, "
                "so it cannot write sample data (build it from real files)"
            )
        result = self._caller("mmu_sample", survey)(survey=survey, request=request)
        if result is None:
            raise PluginError(f"mmu_sample of the plugin for {survey!r} returned nothing")
        return result if isinstance(result, SampleResult) else SampleResult.model_validate(result)


def _apply_switches(entry_points: list[metadata.EntryPoint]) -> list[metadata.EntryPoint]:
    only = os.environ.get("MMU_LOAD_PLUGINS")
    disabled = {n.strip() for n in os.environ.get("MMU_DISABLE_PLUGINS", "").split(",") if n.strip()}
    if only is not None:
        wanted = {n.strip() for n in only.split(",") if n.strip()}
        entry_points = [ep for ep in entry_points if ep.name in wanted]
    return [ep for ep in entry_points if ep.name not in disabled]


def _describe_exc(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


_REGISTRY: Registry | None = None
_LOADED_WITH: tuple[str | None, str | None] | None = None  # the switches it was loaded under


def _switches() -> tuple[str | None, str | None]:
    return os.environ.get("MMU_LOAD_PLUGINS"), os.environ.get("MMU_DISABLE_PLUGINS")


def get_registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use (and again if
    ``MMU_LOAD_PLUGINS``/``MMU_DISABLE_PLUGINS`` changed since: a worker forked from a fork
    server that loaded it takes its pool creator's environment)."""
    global _REGISTRY, _LOADED_WITH
    if _REGISTRY is None or (_LOADED_WITH is not None and _LOADED_WITH != _switches()):
        _REGISTRY, _LOADED_WITH = Registry.from_entry_points(), _switches()
    return _REGISTRY


def set_registry(registry: Registry | None) -> Registry | None:
    """Replace the process-wide registry (``None`` reloads on next use); returns the old one."""
    global _REGISTRY, _LOADED_WITH
    old, _REGISTRY, _LOADED_WITH = _REGISTRY, registry, None
    return old


__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginFailure",
    "Registry",
    "SurveyEntry",
    "check_slug",
    "get_registry",
    "set_registry",
]
