"""The import graph of a package's own modules, read from its source with ``ast`` (nothing is imported).

Each edge remembers where it is written and whether it runs when the module is
loaded (a module-level import, also inside ``try``/``if``/class bodies) or only
when a function is first called (an import inside a function: "deferred").
Imports under ``if TYPE_CHECKING:`` never run and are left out.
"""
from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Import:
    """One import statement of one package module naming another module of the package."""

    importer: str
    imported: str
    line: int
    deferred: bool  # inside a function: runs on the first call, not at load time

    def __str__(self) -> str:
        where = "in a function" if self.deferred else "at load time"
        return f"{self.importer} -> {self.imported} (line {self.line}, {where})"


def module_names(package_dir: Path) -> dict[str, Path]:
    """Every module of the package in ``package_dir`` by dotted name (a package by its ``__init__``)."""
    root = package_dir.name
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join((root, *parts))] = path
    return names


def package_imports(package_dir: Path) -> list[Import]:
    """The imports among the package's own modules, all statements of all modules."""
    modules = module_names(package_dir)
    found = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, deferred in _import_statements(tree):
            for target in _targets(node, name, is_package, modules):
                if target != name:
                    found.append(Import(name, target, node.lineno, deferred))
    return found


def _import_statements(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Each import statement and whether it sits inside a function; ``if TYPE_CHECKING:`` bodies skipped."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, in_function = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((child, in_function) for child in node.orelse)
            continue
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        stack.extend((child, inside) for child in ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """The package modules a statement loads; ``from M import x`` names M.x when x is a submodule, else M."""
    if isinstance(node, ast.Import):
        return [m for m in (_known_prefix(alias.name, modules) for alias in node.names) if m]
    base = _absolute_base(node, importer, is_package)
    if base is None or _known_prefix(base, modules) is None:
        return []
    targets = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        targets.append(submodule if submodule in modules else _known_prefix(base, modules))
    return sorted(set(targets))


def _absolute_base(node: ast.ImportFrom, importer: str, is_package: bool) -> str | None:
    if not node.level:
        return node.module
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    if node.level - 1 >= len(package):
        return None
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join(anchor + ([node.module] if node.module else []))


def _known_prefix(dotted: str, modules: dict[str, Path]) -> str | None:
    """The longest leading part of ``dotted`` that is a package module (``import a.b.c`` loads a.b.c)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def cycles(imports: list[Import]) -> list[list[Import]]:
    """One shortest cycle, as its chain of imports, per strongly connected group of modules."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in imports:
        edges.setdefault(imp.importer, {}).setdefault(imp.imported, imp)
    return [_shortest_cycle(group, edges) for group in _strongly_connected(edges) if len(group) > 1]


def _strongly_connected(edges: dict[str, dict[str, Import]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (a long import chain must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, {}))))]
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
                    work.append((child, iter(sorted(edges.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def _shortest_cycle(group: set[str], edges: dict[str, dict[str, Import]]) -> list[Import]:
    """A shortest chain of imports from the group's first module back to itself, staying in the group."""
    start = min(group)
    came_by: dict[str, Import] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target, imp in sorted(edges.get(node, {}).items()):
            if target not in group:
                continue
            if target == start:
                chain = [imp]
                while chain[0].importer != start:
                    chain.insert(0, came_by[chain[0].importer])
                return chain
            if target not in came_by:
                came_by[target] = imp
                queue.append(target)
    raise AssertionError(f"no cycle through {start} in a strongly connected group")  # cannot happen


def load_chain(imports: list[Import], module: str, target: str) -> list[Import] | None:
    """A shortest chain of load-time imports by which ``import module`` loads ``target`` (None: no such chain).

    Python runs every parent package's ``__init__`` first, so the chain may start
    from any of them (``import a.b.c`` runs ``a``, then ``a.b``, then ``a.b.c``).
    """
    edges: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if not imp.deferred:
            edges.setdefault(imp.importer, {}).setdefault(imp.imported, imp)
    parts = module.split(".")
    starts = [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
    came_by: dict[str, Import | None] = dict.fromkeys(starts)
    queue = deque(starts)
    while queue:
        node = queue.popleft()
        if node == target:
            chain = []
            while came_by[node] is not None:
                chain.insert(0, came_by[node])
                node = came_by[node].importer
            return chain
        for nxt, imp in sorted(edges.get(node, {}).items()):
            if nxt not in came_by:
                came_by[nxt] = imp
                queue.append(nxt)
    return None
