"""The package's shape: no import cycle, the core stays pure, and Azure only at its edges."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ingest"

AZURE_EDGES = {
    "function_app",
    "ingest.identity",
    "ingest.sinks.adx",
    "ingest.sinks.dead_letters",
    "ingest.sinks.ingestion_status",
    "ingest.kql.apply",
    "ingest.commands.send",
}
"""The only modules that may import ``azure.*`` (ruff's banned-api rule says the same)."""

PURE = ("ingest.core", "ingest.model", "ingest.errors", "ingest.config", "ingest.schema")
"""The pure core and the types it uses: no I/O-bound layer below them."""


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module a file imports, at any depth (lazy imports inside functions included)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    files = [*PACKAGE.rglob("*.py"), ROOT / "function_app.py"]
    modules = {_module(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for imported in _imports(path):
            # "from ingest.core import pipeline" names a module; "from x import f" names x.
            target = imported
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
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


def test_the_graph_walk_finds_a_planted_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_anywhere() -> None:
    graph = _graph()
    assert "ingest.core.flatten" in graph  # the walk sees the package
    assert _cycles(graph) == []


def test_azure_is_imported_only_at_the_edges() -> None:
    files = [*PACKAGE.rglob("*.py"), ROOT / "function_app.py"]
    importers = {
        _module(path)
        for path in files
        if any(name == "azure" or name.startswith("azure.") for name in _imports(path))
    }
    assert importers <= AZURE_EDGES
    assert "ingest.sinks.adx" in importers  # the check sees real imports


def test_the_core_depends_on_nothing_outside_it() -> None:
    graph = _graph()
    for module, targets in graph.items():
        if module.startswith(PURE):
            outside = {t for t in targets if t.startswith("ingest") and not t.startswith(PURE)}
            assert outside == set(), module


def test_the_functions_app_imports_no_local_tool() -> None:
    # What the Functions app loads: core, config, the ADX sink; never DuckDB, the CLI or sources.
    graph = _graph()
    reached: set[str] = set()
    todo = ["function_app"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(graph[module])
    assert not {m for m in reached if m.startswith(("ingest.commands", "ingest.sinks.local"))}
    assert not {m for m in reached if m.startswith(("ingest.sources", "ingest.kql"))}
