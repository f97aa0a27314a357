"""No import circles inside a package: a type two modules share lives in a third that both import.

The graph is read from the source with `ast`, function-level imports included (a circle broken only by a late
import is still a circle in the design), so nothing is imported and the test runs in either virtual environment.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# (package name, the folder on sys.path that holds it)
PACKAGES = [
    ("include", REPO),
    ("mlperf_sut", REPO / "sut_image"),
    ("mlperf_benchmarks", REPO / "plugins"),
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(name: str, modules: set[str]) -> str | None:
    """The module `name` refers to: itself, or the nearest package above it (`a.b.func` -> `a.b`)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(path: Path, module: str, modules: set[str]) -> set[str]:
    """Modules of the package that `module` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from pkg import mod` imports pkg.mod when it is a module, else a name of pkg.
            targets = [f"{origin}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = resolve(target, modules)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


def import_graph(package: str, root: Path) -> dict[str, set[str]]:
    files = {module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}
    modules = set(files)
    return {module: imports_of(path, module, modules) for module, path in files.items()}


def components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan): the modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(set(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each component, shortest from its first module: what to cut."""
    return [cycle_through(graph, component) for component in components(graph)]


def cycle_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One cycle inside a component, from its first module back to it (breadth-first, so the shortest)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    following.append(nxt)
        frontier = following
    return sorted(component)


def test_cycle_finder_names_the_circle() -> None:
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert circles(graph) == [["p.a", "p.b", "p.c", "p.a"]]
    assert circles({"p.a": {"p.b"}, "p.b": set()}) == []


def test_imports_resolve_relative_late_and_from_package(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .leaf import x\n")
    (pkg / "sub" / "leaf.py").write_text("def f():\n    from pkg import top\n")
    (pkg / "top.py").write_text("from pkg.sub.leaf import f\nimport pkg.sub\n")
    graph = import_graph("pkg", tmp_path)
    assert graph["pkg.sub"] == {"pkg.sub.leaf"}
    assert graph["pkg.sub.leaf"] == {"pkg.top"}
    assert graph["pkg.top"] == {"pkg.sub.leaf", "pkg.sub"}
    assert circles(graph) == [["pkg.sub", "pkg.sub.leaf", "pkg.top", "pkg.sub"]]


@pytest.mark.parametrize("package,root", PACKAGES, ids=[name for name, _ in PACKAGES])
def test_no_import_circles(package: str, root: Path) -> None:
    graph = import_graph(package, root)
    found = components(graph)
    assert not found, "import circles (a cycle, then every module of its component):\n" + "\n".join(
        f"  {' -> '.join(cycle_through(graph, component))}\n    ({', '.join(sorted(component))})"
        for component in found)
