"""Imports point one way: entrypoints -> runtime -> handlers | adapters | stages -> pipeline."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
PACKAGE = FUNCTIONS / "deepflix"
CLOUD_SDKS = ("google", "firebase_admin", "grpc")
WEB = ("flask", "werkzeug", "functions_framework", "starlette", "granian")

# A layer may import its own modules and those of lower rank. Layers of one rank are
# siblings and never import each other: the two adapter families, the handlers, the stages.
RANK = {
    "tracing": -1,
    "pipeline": 0,
    "logs": 0,
    "metering": 0,
    "settings": 1,
    "stages": 2,
    "handlers": 2,
    "adapters.gcp": 2,
    "adapters.local": 2,
    "runtime": 3,
    "entrypoints": 4,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(FUNCTIONS).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    rest = module.removeprefix("deepflix.")
    for name in sorted(RANK, key=len, reverse=True):
        if rest == name or rest.startswith(name + "."):
            return name
    return rest


@cache
def modules() -> dict[str, frozenset[str]]:
    """Every module of the package and what it imports, lazy and type-only imports included."""
    graph: dict[str, frozenset[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0]
                    base = f"{anchor}.{base}".rstrip(".")
                found.add(base)
                # `from deepflix.x import y` may name a module y: count it as one.
                found.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = frozenset(found)
    return graph


def own_imports(module: str) -> Iterator[str]:
    known = modules()
    for name in modules()[module]:
        if name in known and name != module:
            yield name


def test_every_module_is_in_a_layer() -> None:
    unplaced = {m for m in modules() if layer(m) not in RANK} - {"deepflix", "deepflix.adapters"}
    assert not unplaced, f"modules outside every layer: {sorted(unplaced)}"


def test_imports_point_down_and_never_across_siblings() -> None:
    wrong = []
    for module in modules():
        if module in ("deepflix", "deepflix.adapters"):
            continue
        mine = layer(module)
        for name in own_imports(module):
            theirs = layer(name)
            if name in ("deepflix", "deepflix.adapters") or theirs == mine:
                continue
            if RANK[theirs] >= RANK[mine]:
                wrong.append(f"{module} ({mine}) imports {name} ({theirs})")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    graph = {m: set(own_imports(m)) - {"deepflix"} for m in modules()}
    # A package imports what its modules import, not the other way round.
    for module in graph:
        graph[module] = {n for n in graph[module] if not module.startswith(n + ".")}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checks_see_a_broken_rule() -> None:
    """The walk itself works: it finds the layers and a real upward import would show."""
    assert layer("deepflix.adapters.gcp.tasks") == "adapters.gcp"
    assert layer("deepflix.pipeline.service") == "pipeline"
    assert "deepflix.pipeline.models" in set(own_imports("deepflix.pipeline.service"))
    assert RANK[layer("deepflix.runtime.compose")] > RANK[layer("deepflix.handlers.api")]


def test_the_domain_imports_no_cloud_sdk_or_web_framework() -> None:
    for module in modules():
        if layer(module) != "pipeline":
            continue
        for name in modules()[module]:
            top = name.split(".")[0]
            assert top not in CLOUD_SDKS + WEB, f"{module} imports {name}"


def test_only_gcp_adapters_import_cloud_sdks() -> None:
    for module in modules():
        if layer(module) == "adapters.gcp":
            continue
        for name in modules()[module]:
            assert name.split(".")[0] not in CLOUD_SDKS, f"{module} imports {name}"
