"""The house's layers, checked on every import statement (function-level ones included; those under
``if TYPE_CHECKING:`` are annotations only and skipped), and no import circle between modules.

Bottom to top: the foundation (``errors``, ``io``, ``lazy``, ``progress``, ``locking``, ``tasks``,
``metrics``, ``actor``, ``data``, ...), ``dynamics``, the core concepts (``rollout``,
``dynamics_reward``, ``shaping``, ``collect``, ``credit``), ``learners``, ``training``, ``runs``, and
the command line (``commands``, ``cli``). A layer imports only layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "morec"
FOUNDATION = (
    "morec.errors",
    "morec.io",
    "morec.lazy",
    "morec.progress",
    "morec.locking",
    "morec.allocator",
    "morec.tasks",
    "morec.metrics",
    "morec.actor",
    "morec.bundled_configs",
    "morec.provenance",
    "morec.cpu_features",
    "morec.denormals",
    "morec.row_blocks",
    "morec.data",
)
LAYERS = [
    FOUNDATION,
    ("morec.dynamics",),
    ("morec.rollout", "morec.dynamics_reward", "morec.shaping", "morec.collect", "morec.credit"),
    ("morec.learners",),
    ("morec.training",),
    ("morec.runs",),
    ("morec.commands", "morec.cli", "morec.__main__"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports at run time (at any depth, not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), str(path))
    annotation_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for stmt in node.body
        for n in ast.walk(stmt)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in annotation_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: relative import (the house uses absolute ones)"
            names.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return names


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    for index, layer in enumerate(LAYERS):
        if any(module == name or module.startswith(f"{name}.") for name in layer):
            return index
    return None


def test_every_module_sits_in_a_layer():
    assert [m for m in MODULES if m != "morec" and layer_of(m) is None] == []


def test_no_layer_imports_a_layer_above_it():
    upward = []
    for module, path in MODULES.items():
        own = layer_of(module)
        for name in runtime_imports(path):
            other = layer_of(name) if name.startswith("morec.") else None
            if own is not None and other is not None and other > own:
                upward.append(f"{module} -> {name}")
    assert upward == []


def test_no_import_circle_between_modules():
    graph = {}
    for module, path in MODULES.items():
        deps = set()
        for name in runtime_imports(path):
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name not in (module, "morec") and not module.startswith(f"{name}."):
                deps.add(name)
        graph[module] = deps
    seen, on_path, circles = set(), [], []

    def visit(module: str) -> None:
        on_path.append(module)
        for dep in sorted(graph[module]):
            if dep in on_path:
                circles.append(on_path[on_path.index(dep) :] + [dep])
            elif dep not in seen:
                visit(dep)
        on_path.pop()
        seen.add(module)

    for module in graph:
        if module not in seen:
            visit(module)
    assert circles == []


def test_the_old_top_level_packages_are_gone():
    assert not (ROOT / "algos").exists() and not (ROOT / "dynamics").exists()
