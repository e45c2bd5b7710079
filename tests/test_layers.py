"""The packages form no cycle: ``dynamics`` <- ``morec`` (library) <- ``algos`` <- ``morec.commands``.
Checked on every import statement, including the ones inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            else:
                names.add(node.module)
    return names


def importers(package: str, of: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = sorted(m for m in imported_modules(path) if any(m == o or m.startswith(f"{o}.") for o in of))
        if bad:
            found.append(f"{path.relative_to(ROOT)}: {', '.join(bad)}")
    return found


def test_only_the_commands_import_algos_from_morec():
    outside = [f for f in importers("morec", ("algos",)) if not f.startswith("morec/commands/")]
    assert outside == []
    assert importers("morec/commands", ("algos",)), "the commands are the composition root that reaches algos"


def test_algos_builds_on_the_morec_library_only():
    assert importers("algos", ("morec.commands", "morec.cli", "morec.experiments")) == []


def test_dynamics_imports_neither_morec_nor_algos():
    assert importers("dynamics", ("morec", "algos")) == []


def test_relative_imports_resolve():
    assert imported_modules(ROOT / "morec" / "commands" / "train.py") >= {"morec.bundled_configs", "algos.config", "algos.train"}
