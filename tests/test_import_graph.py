"""The layers of xlingual, read from its source: no import cycles, and no stage package importing ``scale`` or ``cli``.

The graph is read with :mod:`ast`, so nothing is imported (no torch). Every
import counts wherever it is written: at the top of a module, inside a
function, or under ``TYPE_CHECKING``. An import hidden in a function still
ties the two modules together for whoever changes one of them, and is still
a cycle at run time. Beside ``import`` statements, a literal
``importlib.import_module("xlingual.x")`` and a ``"xlingual.x:Name"`` spec (a
registry entry such as ``MODEL_CLASSES``) are imports too.

``from xlingual.x import y`` is an edge to the module ``xlingual.x.y`` where
that module exists, else to the package ``xlingual.x``; relative imports are
resolved against the importing module's package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import xlingual

PACKAGE_ROOT = Path(xlingual.__file__).parent
STAGES = ("data", "translate", "projection", "embeddings", "features", "models", "train", "evaluation")
"""The pipeline's stage packages: they do their work in this process and never decide how they are scaled."""
OUTER = ("scale", "cli")
"""What wraps the stages (Ray, the command line): it may import any stage, no stage imports it."""

Graph = dict[str, dict[str, int]]
"""Module -> each module it imports -> the line of the first such import."""


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package folder ``root`` (a package is its ``__init__``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _known(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package, or None for another package's name."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def _literal_targets(node: ast.AST) -> Iterator[str]:
    """Module names in ``importlib.import_module("...")`` calls and ``"module:Name"`` specs."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        function = node.func
        if (isinstance(function, ast.Attribute) and function.attr == "import_module") or (isinstance(function, ast.Name) and function.id == "import_module"):
            yield node.args[0].value
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        module, sep, attribute = node.value.partition(":")
        if sep and attribute.isidentifier() and all(part.isidentifier() for part in module.split(".")):
            yield module


def _targets(node: ast.AST, package: str, modules: Mapping[str, Path]) -> Iterator[str]:
    """The package's modules one AST node imports; ``package`` is the importing module's package (for relative imports)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        for alias in node.names:
            yield f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
    else:
        yield from _literal_targets(node)


def import_graph(root: Path) -> tuple[Graph, dict[str, Path]]:
    """The import graph of the package folder ``root`` (see the module docstring), and its module files."""
    modules = module_files(root)
    graph: Graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _targets(node, package, modules):
                known = _known(target, modules)
                if known is not None and known != name:
                    line = getattr(node, "lineno", 0)
                    edges[known] = min(edges.get(known, line), line)
        graph[name] = edges
    return graph, modules


def cycles(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, without recursion), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(graph.get(successor, ()))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def layer_violations(graph: Graph) -> list[tuple[str, str, int]]:
    """(stage module, the scale or cli module it imports, line) for every such import."""
    return [(module, target, line) for module, edges in sorted(graph.items()) for target, line in sorted(edges.items())
            if _layer(module) in STAGES and _layer(target) in OUTER]


def describe(graph: Graph, modules: Mapping[str, Path], root: Path) -> list[str]:
    """One line per problem, naming the file (relative to ``root``'s parent) and line of each import to remove."""
    def where(module: str, target: str) -> str:
        return f"{modules[module].relative_to(root.parent)}:{graph[module][target]} imports {target}"

    problems = [f"stage imports {_layer(target)}: {where(module, target)}" for module, target, _ in layer_violations(graph)]
    for component in cycles(graph):
        members = set(component)
        inside = [where(module, target) for module in component for target in sorted(graph[module]) if target in members]
        problems.append(f"import cycle {' <-> '.join(component)}: {'; '.join(inside)}")
    return problems


def test_xlingual_has_no_import_cycle_and_no_stage_imports_scale_or_cli() -> None:
    graph, modules = import_graph(PACKAGE_ROOT)
    assert {"xlingual.features.extract", "xlingual.scale.features", "xlingual.train.experiment", "xlingual.hub"} <= set(graph)
    assert "xlingual.features.extract" in graph["xlingual.scale.features"]  # scale wraps the stage, as it should
    problems = describe(graph, modules, PACKAGE_ROOT)
    assert not problems, "\n".join(problems)


def _write(root: Path, files: Mapping[str, str]) -> Path:
    """A made-up package: ``files`` by path, and an empty ``__init__.py`` in every folder that is not given one."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in [root / "xlingual", *(p for p in (root / "xlingual").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return root / "xlingual"


def test_every_kind_of_import_is_an_edge(tmp_path: Path) -> None:
    """Top-level, inside a function, under TYPE_CHECKING, relative, aliased, a name from a module, import_module and a spec string."""
    root = _write(tmp_path, {
        **{f"xlingual/{empty}.py": "" for empty in ("data/sample", "io", "hub", "errors", "lazy")},
        "xlingual/data/labels.py": "SPAN = 1\n",
        "xlingual/features/extract.py": (
            "from typing import TYPE_CHECKING\n"
            "import importlib\n"
            "import json, xlingual.io\n"
            "from . import cache\n"
            "from ..data.labels import SPAN\n"
            "if TYPE_CHECKING:\n"
            "    from xlingual.data.sample import Sample\n"
            "def run():\n"
            "    import xlingual.hub as hub\n"
            "    importlib.import_module('xlingual.errors')\n"
            "    return 'xlingual.lazy:lazy_exports'\n"
        ),
        "xlingual/features/cache.py": "from xlingual.data import sample, nothing_of_that_name\n",
    })
    graph, _ = import_graph(root)
    assert graph["xlingual.features.extract"] == {
        "xlingual.io": 3, "xlingual.features.cache": 4, "xlingual.data.labels": 5, "xlingual.data.sample": 7,
        "xlingual.hub": 9, "xlingual.errors": 10, "xlingual.lazy": 11,
    }
    assert graph["xlingual.features.cache"] == {"xlingual.data.sample": 1, "xlingual.data": 1}
    assert graph["xlingual.data.labels"] == {}


def test_a_hidden_cycle_and_a_stage_importing_scale_are_each_named_with_their_line(tmp_path: Path) -> None:
    root = _write(tmp_path, {
        "xlingual/features/extract.py": "import os\n\ndef extract():\n    from xlingual.scale.features import run_on_ray\n",
        "xlingual/scale/features.py": "from xlingual.features.extract import extract\n",
        "xlingual/cli/__init__.py": "from xlingual.features import extract\n",
        "xlingual/data/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from xlingual.cli import app\n",
    })
    graph, modules = import_graph(root)
    assert layer_violations(graph) == [("xlingual.data", "xlingual.cli", 3), ("xlingual.features.extract", "xlingual.scale.features", 4)]
    assert cycles(graph) == [["xlingual.features.extract", "xlingual.scale.features"]]
    problems = describe(graph, modules, root)
    assert len(problems) == 3
    assert any("features/extract.py:4 imports xlingual.scale.features" in line and line.startswith("import cycle") for line in problems)


def _reachable(graph: Mapping[str, Mapping[str, int]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for successor in graph.get(todo.pop(), ()):
            if successor not in seen:
                seen.add(successor)
                todo.append(successor)
    return seen


graphs = st.dictionaries(st.sampled_from("abcdefgh"), st.dictionaries(st.sampled_from("abcdefghij"), st.just(1), max_size=4), max_size=8)


@given(graph=graphs)
def test_cycles_are_exactly_the_groups_of_modules_that_reach_each_other(graph: dict[str, dict[str, int]]) -> None:
    """Against the definition: two different modules share a cycle iff each reaches the other."""
    graph = {node: {t: 1 for t in edges if t != node} for node, edges in graph.items()}
    reach = {node: _reachable(graph, node) for node in set(graph) | {t for edges in graph.values() for t in edges}}
    expected = {frozenset({a} | {b for b in reach if b != a and b in reach[a] and a in reach[b]}) for a in reach}
    assert sorted(sorted(group) for group in expected if len(group) > 1) == cycles(graph)
