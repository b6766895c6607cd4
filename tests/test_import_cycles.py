"""No import cycles in the packages that promise none, read from the source (nothing imported).

An edge is an ``import`` / ``from … import`` anywhere in a module, function-level (lazy)
imports included; ``from a import b`` counts ``a.b`` when it is a module. Importing
``a.b.c`` also imports ``a.b``, except where ``a.b`` is the importing module's own package
(Python initialises that first). Widen ``ACYCLIC`` as more of the package is untangled.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ACYCLIC = ("excise.report", "excise.sweep")


def _modules() -> dict[str, Path]:
    out = {}
    for f in (SRC / "excise").rglob("*.py"):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            implied = [m for m in _ancestors(target) if m not in _ancestors(name)]
            found |= {m for m in [*implied, target] if m in modules and m != name}
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            components.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return [c for c in components if len(c) > 1]


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycle_touches_the_acyclic_packages():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert any(graph[m] for m in graph if m.startswith("excise.report."))  # the graph is not empty
    touching = [c for c in _cycles(graph) if any(m.startswith(ACYCLIC) for m in c)]
    assert touching == []
