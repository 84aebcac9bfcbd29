"""The package's import graph: no module imports a project module inside a function, and no cycle.

Read statically from the source (ast), so the test sees every import, taken or not. An edge
`a -> b` means module a imports module b (`from nmt.x import name` counts as importing nmt.x,
or nmt.x.name when that is a module). Importing a submodule also runs its package's
__init__, which is not counted: a package that imports its own submodules is the usual layout.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import nmt

ROOT = Path(nmt.__file__).parent


def _modules() -> dict[str, Path]:
    found = {"nmt": ROOT / "__init__.py"}
    for info in pkgutil.walk_packages([str(ROOT)], prefix="nmt."):
        spec = importlib.util.find_spec(info.name)
        found[info.name] = Path(spec.origin)
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> tuple[set[str], list[str]]:
    """(project modules imported at module level, descriptions of imports inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top: set[str] = set()
    deferred: list[str] = []
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inner = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.split(".")[0] == "nmt"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "nmt":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                targets.append(sub if sub in MODULES else node.module)
        if not targets:
            continue
        if id(node) in inner:
            deferred.append(f"{name}:{node.lineno} imports {', '.join(targets)} inside a function")
        else:
            top.update(t for t in targets if t in MODULES)
    return top, deferred


GRAPH = {}
DEFERRED = []
for _name, _path in MODULES.items():
    GRAPH[_name], _found = _imports(_name, _path)
    DEFERRED += _found


def test_no_project_import_is_deferred_into_a_function():
    assert DEFERRED == []


def test_the_import_graph_has_no_cycle():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH.get(node, set())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_beam_search_is_not_imported_back_by_what_it_imports():
    reach, todo = set(), ["nmt.generation.beam"]
    while todo:
        for nxt in GRAPH[todo.pop()]:
            if nxt not in reach:
                reach.add(nxt)
                todo.append(nxt)
    assert "nmt.generation.beam" not in reach
    assert "nmt.generation.decoding" in reach  # the graph is read, not empty
