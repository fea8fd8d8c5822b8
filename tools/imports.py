"""Print proofmint's package-level import graph and any cycle in it.

A node is a package: `zkml`, `media`, each subpackage of `agents` (`agents.api`, `agents.runtime`, ...)
and `agents` itself for its top-level modules; cycles are looked for there and between the
top-level packages (`agents` as a whole, `zkml`, `media`). An edge A -> B means some module of A imports
a module of B (at any place in the file, functions included: a deferred import is still a
dependency). Run: `python tools/imports.py` (add `--modules` for the module-level edges behind each
package edge). Exit status 1 when a cycle exists, so the test suite can hold the rule.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

PACKAGES = ("agents", "zkml", "media")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str | None:
    """The graph node a module belongs to, or None for a module outside the project."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] == "agents" and len(parts) >= 2 and parts[1] in _subpackages():
        return f"agents.{parts[1]}"
    return parts[0]


_SUBPACKAGES: set[str] = set()


def _subpackages() -> set[str]:
    return _SUBPACKAGES


def imported_modules(tree: ast.AST, own: str, is_package: bool) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            yield target
            for alias in node.names:  # `from agents import api` imports the subpackage
                yield f"{target}.{alias.name}"


def module_edges(root: Path) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(from package, to package) -> the (module, imported module) pairs behind that edge."""
    _SUBPACKAGES.clear()
    _SUBPACKAGES.update(p.parent.name for p in (root / "agents").glob("*/__init__.py"))
    edges: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            own = module_name(root, path)
            source = package_of(own)
            assert source is not None
            tree = ast.parse(path.read_text(), filename=str(path))
            for target in imported_modules(tree, own, path.name == "__init__.py"):
                dest = package_of(target)
                if dest is None or dest == source:
                    continue
                # `from agents import errors` names a module; `from agents.api import x` a subpackage
                if target.count(".") and dest != target and not _is_module(root, target):
                    continue
                edges[(source, dest)].add((own, target))
    return edges


def _is_module(root: Path, dotted: str) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_graph(root: Path) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for source, dest in module_edges(root):
        graph[source].add(dest)
        graph.setdefault(dest, set())
    return graph


def top_level_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between the top-level packages (`agents`, `zkml`, `media`): a subpackage's edges
    are its package's, edges inside one package dropped."""
    top: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        top[source.split(".")[0]].update(t.split(".")[0] for t in targets if t.split(".")[0] != source.split(".")[0])
    return top


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--modules", action="store_true", help="list the module imports behind each edge")
    args = parser.parse_args(argv)
    edges = module_edges(args.root)
    graph = package_graph(args.root)
    for source in sorted(graph):
        targets = sorted(graph[source])
        print(f"{source:18} -> {', '.join(targets) if targets else '(nothing)'}")
        if args.modules:
            for dest in targets:
                for own, target in sorted(edges[(source, dest)]):
                    print(f"    {own} -> {target}")
    found = cycles(graph) + cycles(top_level_graph(graph))
    for component in found:
        print(f"CYCLE: {' <-> '.join(component)}")
    if not found:
        print("no cycles between packages")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
