"""Every `from masktax... import name` in bench/ and scripts/ names something that exists: a refactor
that renames a module must update the benchmarks too (they are run by hand, not by the suite)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*ROOT.glob("bench/*.py"), *ROOT.glob("scripts/*.py")])


def masktax_imports(path: Path) -> list[tuple[int, str, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.module, alias.name) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "masktax"
            for alias in node.names]


def is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, AttributeError, ValueError):  # a parent that is a module, not a package
        return False


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_masktax_names_imported_by_benchmarks_and_scripts_exist(path: Path) -> None:
    missing = []
    for line, module, name in masktax_imports(path):
        try:
            found = importlib.import_module(module)
        except ImportError:
            missing.append(f"{line}: {module}")
            continue
        if not hasattr(found, name) and not is_module(f"{module}.{name}"):
            missing.append(f"{line}: {module}.{name}")
    assert missing == []
