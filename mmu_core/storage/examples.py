"""Stored rows as logical examples, for plain and matched datasets alike.

A *plan* is a JSON-able description of what to read from a dataset and how to shape it: which
stored columns, their standard names, the provenance, and for a matched dataset (a cross-match
output) one sub-plan per side. The reader's :meth:`Dataset.row_to_example` and the
HuggingFace integration both build examples from a plan, so the two always agree; the plan is
also part of the HF cache key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from mmu_core.schemas import ALWAYS_PRESENT, MATCHED, logical_example, modality_prefixes
from mmu_core.schemas.common import decode


def side_namespaces(lds: Any, rds: Any) -> tuple[str, str]:
    """The column prefixes of the two sides of a matched dataset (docs/format.md): the survey
    names; if equal ``<survey>_<config>``; if still equal ``left``/``right``; dots -> ``_``."""
    a, b = lds.survey, rds.survey
    if a == b:
        a, b = f"{lds.survey}_{lds.config}", f"{rds.survey}_{rds.config}"
    if a == b:
        a, b = "left", "right"
    return a.replace(".", "_"), b.replace(".", "_")


def _side_names(specs: Iterable[str], aliases: dict[str, str]) -> dict[str, str]:
    """native -> standard for aliases whose native is stored and standard is not (the
    reader's rule)."""
    stored = set(specs)
    return {n: s for n, s in aliases.items() if n in stored and s not in stored}


def _keep(stored: list[str], wanted: set[str] | None, prefix: str = "") -> list[str]:
    """Stored columns kept: position/id, modality columns, and the wanted catalog columns."""
    prefixes = modality_prefixes()
    out = []
    for name in stored:
        bare = name[len(prefix):]
        if wanted is None or name in wanted or bare in ALWAYS_PRESENT or bare.startswith(prefixes):
            out.append(name)
    return out


def make_plan(ds: Any, columns: Iterable[str] | None = None,
              example_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plan for dataset ``ds`` (a :class:`~mmu_core.storage.reader.Dataset`): every
    stored column, or the position/id and modality columns plus ``columns`` (stored or
    standard names)."""
    wanted = None
    if columns is not None:
        wanted = {ds.resolve(c) for c in ([columns] if isinstance(columns, str) else columns)}
    provenance = {"survey": ds.survey, "config": ds.config}
    if ds.manifest is not None:
        provenance.update(version=ds.manifest.plugin_version,
                          distribution=ds.manifest.distribution)
    plan: dict[str, Any] = {"modality": ds.modality, "provenance": provenance,
                            "options": example_options or {}}
    if ds.modality != MATCHED:
        plan["columns"] = _keep(ds.columns, wanted)
        plan["names"] = _side_names(ds.columns, ds.aliases)
        return plan
    sides = ds.sides()
    side_plans = []
    for ns, info in sides.items():
        prefix = f"{ns}."
        stored = [c for c in ds.columns if c.startswith(prefix)]
        bare = [c[len(prefix):] for c in stored]
        aliases = {n[len(prefix):]: s[len(prefix):] for n, s in ds.aliases.items()
                   if n.startswith(prefix) and s.startswith(prefix)}
        side_prov = {"survey": info.get("survey", ns), "config": info.get("config")}
        if info.get("fingerprint") is not None or info.get("distribution") is not None:
            side_prov.update(version=info.get("plugin_version"),
                             distribution=info.get("distribution"))
        side_plans.append({"namespace": ns, "modality": info.get("modality"),
                           "columns": _keep(stored, wanted, prefix),
                           "names": _side_names(bare, aliases), "provenance": side_prov})
    plan["columns"] = [c for c in ds.columns if not any(c.startswith(f"{ns}.") for ns in sides)]
    plan["sides"] = side_plans
    return plan


def plan_columns(plan: dict[str, Any]) -> list[str]:
    """Every stored column a plan reads (matched sides included)."""
    return list(plan["columns"]) + [c for s in plan.get("sides", []) for c in s["columns"]]


def matched_example(row: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """A matched row: the top-level columns, then each side's logical example."""
    example = {c: decode(row[c]) if np.ndim(row[c]) == 0 else row[c] for c in plan["columns"]}
    example["provenance"] = dict(plan["provenance"])
    for side in plan["sides"]:
        prefix = side["namespace"] + "."
        sub = {c[len(prefix):]: row[c] for c in side["columns"]}
        example[side["namespace"]] = logical_example(side["modality"], sub, side["names"],
                                                     side["provenance"], **plan["options"])
    return example


def plan_example(row: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """One stored row (column -> value) as the plan's logical example, numpy values kept."""
    if plan["modality"] == MATCHED:
        return matched_example(row, plan)
    return logical_example(plan["modality"], row, plan["names"], plan["provenance"],
                           **plan["options"])


def row_example(ds: Any, row: dict[str, Any], **options: Any) -> dict[str, Any]:
    """One stored row of ``ds`` (only the columns it holds are used) as its logical example."""
    plan = make_plan(ds, None, options)
    plan["columns"] = [c for c in plan["columns"] if c in row]
    for side in plan.get("sides", []):
        side["columns"] = [c for c in side["columns"] if c in row]
    return plan_example(row, plan)
