"""No import cycle between the packages of src/booking.

Every ``import`` and ``from ... import`` is read with ``ast`` - at module level and
inside functions (a lazy import hides a cycle from Python, not from the design) - and
mapped to its unit: a subpackage of ``booking`` (``booking.bookings``) or a top-level
module (``booking.db``). The graph of units must be acyclic. ``ast`` rather than
grimp/import-linter: thirty lines, no new dependency, and function-level imports are
seen the same way as module-level ones.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "booking"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(module: str) -> str | None:
    """``booking.x`` for anything inside booking/x(.py); None outside the app."""
    parts = module.split(".")
    if parts[0] != "booking" or len(parts) == 1:
        return None
    return f"booking.{parts[1]}"


def _is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports (``from a import b`` yields a and a.b), with its line."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno


Graph = dict[str, dict[str, list[str]]]


def import_graphs() -> tuple[Graph, Graph]:
    """(packages, modules): unit -> imported unit -> where (``path:line``)."""
    packages: Graph = {}
    modules: Graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _module_name(path)
        source_package = _package_of(source)
        where_base = str(path.relative_to(SRC))
        if source_package is not None:
            packages.setdefault(source_package, {})
        modules.setdefault(source, {})
        for target, line in _imports(path):
            if not _is_module(target) or target == "booking":
                continue  # a name imported from a module, or outside the app
            where = f"{where_base}:{line}"
            if target != source and not source.startswith(target + "."):
                modules[source].setdefault(target, []).append(where)
            target_package = _package_of(target)
            if source_package and target_package and target_package != source_package:
                packages[source_package].setdefault(target_package, []).append(where)
    return packages, modules


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _report(graph: Graph) -> list[str]:
    return [
        " <-> ".join(component)
        + ": "
        + "; ".join(
            f"{a} imports {b} at {', '.join(graph[a][b])}"
            for a in component
            for b in component
            if b in graph[a]
        )
        for component in cycles(graph)
    ]


def test_the_graphs_are_read() -> None:
    packages, modules = import_graphs()
    assert "booking.bookings" in packages["booking.guarantee"]
    assert "booking.db" in packages["booking.bookings"]
    assert "booking.bookings.policy" in modules["booking.bookings.changes"]
    # a function-level import counts: the CLI imports its commands' modules lazily
    assert "booking.worker" in modules["booking.cli"]


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b": ["a.py:1"]}, "b": {"c": ["b.py:1"]}, "c": {"a": ["c.py:3"]}, "d": {}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": []}, "b": {}}) == []


def test_no_import_cycle_between_packages() -> None:
    packages, _ = import_graphs()
    assert _report(packages) == []


def test_no_import_cycle_between_modules() -> None:
    _, modules = import_graphs()
    assert _report(modules) == []
