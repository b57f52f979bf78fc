"""The package's layout: no import circles between modules of repair/, argparse only in *cli.py,
every module in a row of README's layer table and no import of a layer above its own.

Imports are read from the source (every ``import``/``from`` at any depth, inside functions too),
so a lazy import that closes a circle counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "repair"


def module_name(path: Path) -> str:
    """``repair/train.py`` -> ``repair.train``; ``repair/__init__.py`` -> ``repair``."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module name that ``path`` imports (relative imports resolved), at any depth."""
    name = module_name(path)
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.add(module)
            out |= {f"{module}.{alias.name}" for alias in node.names}  # `from repair import x`
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the other modules of repair/ it imports (the package itself left out)."""
    files = sorted(PACKAGE.rglob("*.py"))
    names = {module_name(f) for f in files}
    graph = {}
    for f in files:
        name = module_name(f)
        graph[name] = {m for m in imported_modules(f) if m in names and m not in (name, "repair")}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walk_sees_the_modules_and_their_imports():
    graph = import_graph()
    assert {"repair.cli", "repair.train", "repair.damage"} <= set(graph)
    assert "repair.train" in graph["repair.restorer_train"]     # lazy imports count too
    assert "repair.cli" in graph["repair.__main__"]


def test_circles_are_found_when_there_are_some():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    loops = circles(import_graph())
    assert not loops, "import circles in repair/: " + "; ".join(" <-> ".join(c) for c in loops)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_argparse_only_in_cli_modules(path):
    if path.stem.endswith("cli"):
        return
    assert not any(m.split(".")[0] == "argparse" for m in imported_modules(path)), \
        f"{path.name} imports argparse: command-line code belongs in a *cli.py module"


README = PACKAGE.parent / "README.md"


def readme_layers() -> dict[str, int]:
    """Module -> its row in README's layer table (0 at the top), e.g. ``{"repair.cli": 0}``."""
    rows = re.findall(r"^\| ([a-z' ]+) \| (.+) \|$", README.read_text(), re.M)
    layers = {}
    for i, (_, modules) in enumerate(r for r in rows if r[0] != "layer"):
        for name in re.findall(r"`(\w+)`", modules):
            if (PACKAGE / f"{name}.py").is_file():
                layers.setdefault(f"repair.{name}", i)
    return layers


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """``a -> b`` for every import of a module in a layer above ``a``'s."""
    return [f"{a} -> {b}" for a, targets in sorted(graph.items()) for b in sorted(targets)
            if a in layers and b in layers and layers[b] < layers[a]]


def test_readme_places_every_module_in_a_layer():
    modules = {m for m in import_graph() if m.count(".") == 1 and not m.endswith("__main__")}
    assert not modules - set(readme_layers()), "modules missing from README's layer table"


def test_no_module_imports_a_layer_above_its_own():
    found = upward_imports(import_graph(), readme_layers())
    assert not found, "imports against README's layers:\n" + "\n".join(found)


def test_upward_imports_are_found():
    graph = {"repair.images": {"repair.cli"}, "repair.cli": {"repair.images"}}
    assert upward_imports(graph, {"repair.cli": 0, "repair.images": 8}) == [
        "repair.images -> repair.cli"]
