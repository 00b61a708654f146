"""The core's layers point one way (docs/architecture.md): a module imports only modules of its
own layer or of the layers below, and no two modules import each other, directly or round a
longer loop. Imports inside functions count as much as those at the top of a module."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = "mmu_core"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# lowest first; a module belongs to the first entry that names it or a package above it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("errors", "version", "progress", "angles", "processes")),
    ("schemas", ("schemas",)),
    ("contract", ("models", "hookspecs", "registry", "sampling", "fits")),
    ("storage", ("storage",)),
    ("operations", ("executors", "worker_preload", "build", "validate", "crossmatch", "concat",
                    "sample_positions", "hats", "download")),
    ("integrations", ("hf", "loader", "previews", "testing", "scaffold", "demo",
                      "publish")),
    ("interface", ("cli", "")),  # "" is the package root: the public API
]


def module_names(root: Path) -> dict[str, Path]:
    """dotted module name -> file, for every module of the package under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def layer_of(module: str) -> int:
    rest = module[len(PACKAGE) + 1:] if module != PACKAGE else ""
    for level, (_, members) in enumerate(LAYERS):
        for m in members:
            if rest == m or (m and rest.startswith(m + ".")):
                return level
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and docs/architecture.md)")


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports (``from pkg import sub`` is ``pkg.sub``
    when ``sub`` is a module, else ``pkg``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != module}


def check(root: Path) -> list[str]:
    """Every upward import and every import cycle in the package under ``root``."""
    modules = module_names(root)
    known = set(modules)
    graph = {m: imports_of(m, p, known) for m, p in modules.items()}
    problems = []
    for m, targets in sorted(graph.items()):
        for t in sorted(targets):
            if layer_of(t) > layer_of(m):
                problems.append(f"upward import: {m} ({LAYERS[layer_of(m)][0]}) imports {t} "
                                f"({LAYERS[layer_of(t)][0]})")
    # cycles: depth-first search, reporting each loop once by its members
    state: dict[str, int] = {}
    stack: list[str] = []
    seen_loops: set[frozenset[str]] = set()

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                loop = stack[stack.index(t):] + [t]
                if frozenset(loop) not in seen_loops:
                    seen_loops.add(frozenset(loop))
                    problems.append("import cycle: " + " -> ".join(loop))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return problems


def test_the_core_imports_only_downwards_and_has_no_cycle():
    problems = check(ROOT)
    assert not problems, "\n".join(problems)


def test_every_module_is_in_a_layer():
    for module in module_names(ROOT):
        layer_of(module)


@pytest.fixture
def copy_of_core(tmp_path) -> Path:
    dest = tmp_path / PACKAGE
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns("__pycache__", "*.npy"))
    return dest


def test_an_upward_import_is_caught(copy_of_core):
    reader = copy_of_core / "storage" / "reader.py"
    reader.write_text(reader.read_text() + "\n\ndef _late():\n    from mmu_core.hf import load\n")
    problems = check(copy_of_core)
    assert problems[0] == ("upward import: mmu_core.storage.reader (storage) imports mmu_core.hf "
                           "(integrations)")
    assert all(p.startswith("import cycle: ") for p in problems[1:])  # hf imports the reader


def test_an_import_cycle_in_one_layer_is_caught(copy_of_core):
    concat = copy_of_core / "concat.py"
    concat.write_text(concat.read_text() + "\nfrom mmu_core import build  # noqa\n")
    build = copy_of_core / "build.py"
    build.write_text(build.read_text() + "\nimport mmu_core.concat  # noqa\n")
    problems = check(copy_of_core)
    assert len(problems) == 1 and problems[0].startswith("import cycle: ")
    assert {"mmu_core.build", "mmu_core.concat"} <= set(problems[0][len("import cycle: "):]
                                                        .split(" -> "))
