"""The package layering of docs/DESIGN.md, enforced: no upward import and no import cycle.

Every `import masktax...` / `from masktax... import` in src/masktax counts, function-local ones
included (a cycle hidden in a function is still a cycle). A package may import its own modules
and any package in a LOWER layer; packages in one layer may not import each other. There is no
list of exceptions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "masktax"
# Bottom to top; docs/DESIGN.md "Layers" states the same order.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors"),  # the package root holds only __version__
    ("results",),
    ("render",),
    ("tasks",),
    ("prompts",),
    ("embedded",),
    ("models",),
    ("samplers",),
    ("probes",),
    ("training", "lmeval"),  # lmeval: lm-eval's model class, the `masktax eval` sweep, the suite as lm-eval tasks
    ("report",),
    ("cli",),
)
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The masktax modules a file imports, anywhere in the file (`from a import b` counts a.b when
    b is a module, else a)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "masktax"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "masktax":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if module_path(sub) is not None else node.module)
    return out


def module_path(name: str) -> Path | None:
    base = SRC.parent.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(SRC.rglob("*.py"))}


def test_every_package_has_a_layer():
    packages = {package_of(m) for m in graph()}
    assert packages <= set(RANK), f"packages without a layer: {sorted(packages - set(RANK))}"


def test_no_upward_or_sideways_import():
    bad = []
    for module, targets in graph().items():
        src = package_of(module)
        for target in targets:
            dst = package_of(target)
            if dst != src and RANK[dst] >= RANK[src]:
                bad.append(f"{module} -> {target}")
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    """A package's __init__ re-exporting its modules is not a cycle unless a module imports it back."""
    edges = graph()
    assert cycles(edges) == []


@pytest.mark.parametrize("edges,expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"a"}}, [["a"]]),
])
def test_cycle_finder(edges, expected):
    assert cycles(edges) == expected


def test_function_local_imports_count(tmp_path, monkeypatch):
    (tmp_path / "masktax" / "probes").mkdir(parents=True)
    (tmp_path / "masktax" / "probes" / "run.py").write_text("")
    store = tmp_path / "masktax" / "store.py"
    store.write_text("def f():\n    from masktax.probes import run\n    import masktax.cli\n")
    monkeypatch.setitem(globals(), "SRC", tmp_path / "masktax")
    assert imports_of(store) == {"masktax.probes.run", "masktax.cli"}
