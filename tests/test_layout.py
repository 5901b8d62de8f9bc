"""The package's shape, kept: no import cycles, each layer imports only the layers below it, and no code branches
on a paper's pipeline name (the paper registry, wmaug.core.papers, answers those questions)."""

from __future__ import annotations

import ast
import re

from conftest import ROOT

PACKAGE = ROOT / "wmaug"
# What each layer may import, besides itself. Above these sit the entry points (behaviour, cell, cli), free to
# import anything. The two papers never import each other; report/ holds what both share and imports neither.
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "algos": {"core", "data"},
    "report": {"core"},
    "paper_a": {"core", "data", "algos", "report"},
    "paper_b": {"core", "data", "algos", "report"},
}
# Deliberate exceptions, each a lazy import inside a function: checking a config reads the dataset files it names
# and the algorithm settings it changes, with the code that reads them (h5py and torch load only then).
EXCEPTIONS = {("wmaug.core.config", "wmaug.data.minari_io"), ("wmaug.core.config", "wmaug.algos")}


def import_graph() -> dict[str, set[str]]:
    """module -> the wmaug modules it imports anywhere in its source (lazy imports included)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wmaug"):
                targets |= {resolve(f"{node.module}.{alias.name}") for alias in node.names}
            elif isinstance(node, ast.Import):
                targets |= {resolve(alias.name) for alias in node.names if alias.name.startswith("wmaug")}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else "wmaug"


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_each_layer_imports_only_the_layers_below_it():
    graph = import_graph()
    assert {layer(m) for m in graph} >= set(ALLOWED)
    wrong = sorted((a, b) for a, targets in graph.items() for b in targets
                   if layer(a) in ALLOWED and layer(b) != layer(a) and layer(b) not in ALLOWED[layer(a)]
                   and (a, b) not in EXCEPTIONS and (a, layer_package(b)) not in EXCEPTIONS)
    assert wrong == []


def layer_package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_code_branches_on_a_pipeline_name():
    compare = re.compile(r"""(==|!=|\bin)\s*\(?["'](wmaug|balanced_replay)["']|["'](wmaug|balanced_replay)["']\s*(==|!=)""")
    files = [*PACKAGE.rglob("*.py"), ROOT / "Snakefile", *(ROOT / "rules").glob("*.smk")]
    hits = [f"{path.relative_to(ROOT)}:{i}: {line.strip()}" for path in files
            for i, line in enumerate(path.read_text().splitlines(), 1) if compare.search(line)]
    assert hits == []
