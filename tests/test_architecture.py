"""The package's shape: its modules import one another one way only.

Read from the source with :mod:`ast`, so that imports for type checkers only (under
``if TYPE_CHECKING:``) and imports inside functions count like any other: a module that
names one above it, even in an annotation, cannot be read (or moved) on its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import starvideos_async

PACKAGE = "starvideos_async"
ROOT = Path(starvideos_async.__file__).parent


def _modules(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root`` by its dotted name (a sub-package by its own)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, wherever in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, or level - 1 packages up
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:  # a module (``from . import _x``), or a name in one
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in modules else module)
    return {other for other in found if other in modules and other != name}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Which of the package's modules each of its modules imports."""
    modules = _modules(root)
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (its modules in order, the first again at the end), or ``None``."""
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        path.append(name)
        for other in sorted(graph[name]):
            cycle = visit(other)
            if cycle is not None:
                return cycle
        path.pop()
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name)
        if cycle is not None:
            return cycle
    return None


def test_no_import_circle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "an import circle: " + " -> ".join(cycle or [])


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from . import _a\nfrom .sub import _c\n",
        "_a.py": "import pkg._b\n",
        "_b.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .sub._c import C\n"
            "def late():\n    from pkg import _a\n"
        ),
        "sub/__init__.py": "",
        "sub/_c.py": "from .. import _b\nfrom ..sub import _d\n",
        "sub/_d.py": "from pkg._a import A\n",
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    assert import_graph(root) == {
        "pkg": {"pkg._a", "pkg.sub._c"},
        "pkg._a": {"pkg._b"},
        "pkg._b": {"pkg._a", "pkg.sub._c"},
        "pkg.sub": set(),
        "pkg.sub._c": {"pkg._b", "pkg.sub._d"},
        "pkg.sub._d": {"pkg._a"},
    }


def test_the_package_graph_holds_its_known_imports() -> None:
    graph = import_graph()
    assert "starvideos_async._client" in graph[PACKAGE]
    assert "starvideos_async._task" in graph["starvideos_async._client"]
    assert "starvideos_async._limits" in graph["starvideos_async.redis._shared"]


def test_find_cycle_finds_a_circle_through_several_modules() -> None:
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": set(), "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "d", "a"]
    graph["d"] = set()
    assert find_cycle(graph) is None
