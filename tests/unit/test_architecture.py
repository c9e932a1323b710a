"""The domain imports no cloud SDK and no web framework; main.py does no I/O at import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "functions" / "deepflix"
FORBIDDEN = ("google", "firebase_admin", "flask", "werkzeug", "functions_framework", "grpc")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_pipeline_imports_no_cloud_sdk_or_web_framework() -> None:
    files = sorted((PACKAGE / "pipeline").glob("*.py"))
    assert len(files) >= 6
    for path in files:
        for name in imported_modules(path):
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
            assert not name.startswith(("deepflix.adapters", "deepflix.handlers")), (
                f"{path.name} imports {name}: dependencies point into the pipeline, not out"
            )


def test_only_gcp_adapters_import_cloud_sdks() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "adapters/gcp" in path.as_posix():
            continue
        for name in imported_modules(path):
            top = name.split(".")[0]
            assert top not in ("google", "firebase_admin"), f"{path} imports {name}"
