"""The service's structure: layers that only import downward, no import circle, small modules.

The layer order, lowest first. A module may import its own layer's package and lower
layers; never a higher layer, nor another package of its own layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "service" / "kodad"
GENERATED = ROOT / "gen"
MAX_LINES = 400

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"kodad"}),  # the root package: the version
    frozenset({"kodad.gen", "kodad.domain"}),  # the contract's code; the shared types
    frozenset({"kodad.paths", "kodad.logs", "kodad.metrics", "kodad.client"}),
    frozenset({"kodad.bash"}),  # the bash parser and classifier
    frozenset({"kodad.store", "kodad.providers", "kodad.tools"}),
    frozenset({"kodad.engine"}),
    frozenset({"kodad.api", "kodad.chat", "kodad.acp"}),  # the servicer; the clients we ship
    frozenset({"kodad.config"}),
    frozenset({"kodad.config_flags"}),  # the serve command's flags as a configuration
    frozenset({"kodad.server"}),
    frozenset({"kodad.cli"}),
    frozenset({"kodad.__main__"}),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if path.is_relative_to(GENERATED):
            continue
        parts = ("kodad", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """The kodad modules `name` imports (anywhere in it, lazily too), with their lines."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # `from package import module` imports the module.
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "kodad" or target.startswith("kodad."):
                yield target, node.lineno


def _layer(module: str) -> tuple[int, str]:
    """The layer of `module` and the package that places it there."""
    best = (-1, "")
    for index, packages in enumerate(LAYERS):
        for package in packages:
            if (module == package or module.startswith(package + ".")) and len(package) > len(
                best[1]
            ):
                best = (index, package)
    return best


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if _layer(m)[0] < 0] == []


def test_imports_only_go_down() -> None:
    wrong = []
    for name, path in MODULES.items():
        layer, package = _layer(name)
        for target, line in _imports(name, path):
            target_layer, target_package = _layer(target)
            if target_layer > layer or (target_layer == layer and target_package != package):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {name} imports {target}")
    assert wrong == []


def test_no_import_circle() -> None:
    graph = {
        name: {t for t, _ in _imports(name, path) if t in MODULES and t != name}
        for name, path in MODULES.items()
    }
    circles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"
