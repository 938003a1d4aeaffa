"""The layering rule, read from the imports (README, Architecture): layers only import downward.

- `schemas` (the contracts) imports only the standard library and third-party packages;
- `forecasting` (the pure core) imports only `schemas` and itself;
- `timex_stream.runtime` (what the services share) imports only those two and itself;
- `timex_stream.tools` (CLI, local stack, embedded broker, replay, readers) imports those and the runtime,
  never a service package (the CLI starts a service by module name, as a process);
- a service imports the runtime but neither the tools nor another service (services meet on topics; the
  webapp talks to the gateway over HTTP);
- no two modules import each other, directly or around a circle.

Every import counts, wherever it is written: module level, inside a function, under `if TYPE_CHECKING:`.
A function-level import only hides a dependency from import time; a circle through one still means two
modules that cannot be understood (or moved) one without the other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("ingestion", "predictor", "validator", "live", "gateway", "webapp")
PACKAGES = ("schemas", "forecasting", "timex_stream", *SERVICES)
RUNTIME, TOOLS = "timex_stream.runtime", "timex_stream.tools"
LAYERS = ("schemas", "forecasting", RUNTIME, TOOLS, *SERVICES)

# Which layers each layer may import (itself included); anything else is a violation.
ALLOWED: dict[str, frozenset[str]] = {
    "schemas": frozenset({"schemas"}),
    "forecasting": frozenset({"schemas", "forecasting"}),
    RUNTIME: frozenset({"schemas", "forecasting", RUNTIME}),
    TOOLS: frozenset({"schemas", "forecasting", RUNTIME, TOOLS}),
    **{s: frozenset({"schemas", "forecasting", RUNTIME, s}) for s in SERVICES},
}


def layer(module: str) -> str:
    """The layer of a dotted module: its top package, or for `timex_stream` its subpackage (the package's
    own `__init__` holds nothing and counts as the runtime)."""
    top = module.split(".")[0]
    if top != "timex_stream":
        return top
    return TOOLS if module == TOOLS or module.startswith(TOOLS + ".") else RUNTIME


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the first-party module it imports, dotted
    where: str  # path:line of the import statement

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def first_party_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = first_party_modules()


def _resolve(node: ast.ImportFrom, source: str, is_package: bool) -> str:
    """The absolute module a `from X import ...` names (relative imports resolved against `source`)."""
    if not node.level:
        return node.module or ""
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _owner(dotted: str) -> str | None:
    """The longest first-party module that `dotted` is or is inside (`a.b.name` → `a.b`)."""
    while dotted:
        if dotted in MODULES:
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


def imports_of(source: str) -> Iterator[Import]:
    path = MODULES[source]
    rel = path.relative_to(ROOT).as_posix()
    yield from imports_in(path.read_text(encoding="utf-8"), source, rel)


def imports_in(text: str, source: str, rel: str) -> Iterator[Import]:
    """The first-party imports in `text`, the code of module `source` (at `rel`, for the report)."""
    for node in ast.walk(ast.parse(text, filename=rel)):  # ast.walk: function-level and TYPE_CHECKING imports too
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, source, rel.endswith("__init__.py"))
            # `from pkg import sub` imports the submodule pkg.sub when there is one, else a name of pkg.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in dict.fromkeys(names):
            target = _owner(name)
            if target is not None and target != source:
                yield Import(source, target, f"{rel}:{node.lineno}")


ALL_IMPORTS = [imp for source in MODULES for imp in imports_of(source)]


def test_the_scan_sees_the_packages() -> None:
    # Guards the test itself: an empty scan would pass every rule below.
    assert {m.split(".")[0] for m in MODULES} == set(PACKAGES)
    assert {layer(m) for m in MODULES} == set(LAYERS)
    assert len(ALL_IMPORTS) > 100
    assert any(i.source.startswith("validator.") and i.target.startswith("forecasting.") for i in ALL_IMPORTS)


def test_every_kind_of_import_is_seen() -> None:
    code = """
import json, forecasting.units
from typing import TYPE_CHECKING
from schemas import codec
from schemas.topics import CATALOGUE
from . import multivariate
from .multivariate import answer
if TYPE_CHECKING:
    from gateway.api import app
def later():
    import ingestion.ingest as ingest
"""
    found = {(i.target, i.where) for i in imports_in(code, "validator.book", "validator/book.py")}
    assert found == {
        ("forecasting.units", "validator/book.py:2"),
        ("schemas.codec", "validator/book.py:4"),
        ("schemas.topics", "validator/book.py:5"),
        ("validator.multivariate", "validator/book.py:6"),
        ("validator.multivariate", "validator/book.py:7"),
        ("gateway.api", "validator/book.py:9"),
        ("ingestion.ingest", "validator/book.py:11"),
    }


@pytest.mark.parametrize("package", LAYERS)
def test_imports_only_go_down(package: str) -> None:
    allowed = ALLOWED[package]
    bad = [str(i) for i in ALL_IMPORTS if layer(i.source) == package and layer(i.target) not in allowed]
    assert not bad, (f"{package} may import only {sorted(allowed)} (and stdlib/third-party); "
                     f"{len(bad)} import(s) go up or across a layer:\n  " + "\n  ".join(bad))


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted; only those with 2+ modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return sorted(found)


def test_strongly_connected_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in ALL_IMPORTS:
        graph[i.source].add(i.target)
    circles = strongly_connected(graph)
    report = []
    for members in circles:
        inside = set(members)
        edges = [f"    {i}" for i in ALL_IMPORTS if i.source in inside and i.target in inside]
        report.append(" ↔ ".join(members) + "\n" + "\n".join(edges))
    assert not circles, f"{len(circles)} import circle(s) between modules:\n  " + "\n  ".join(report)
