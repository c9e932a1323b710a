"""/openapi.json: every route is in it, its references resolve, its examples are valid, and
the answers the API really gives have the shapes it documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from starlette.routing import Route

from deepflix.handlers.operations import OPERATIONS
from deepflix.handlers.schemas import (
    Created,
    ErrorAnswer,
    Health,
    JobPosition,
    MovieList,
    MovieView,
    Queues,
)
from tests.api_client import InProcess, in_process

pytestmark = pytest.mark.integration


@pytest.fixture
def api(tmp_path: Path) -> Iterator[InProcess]:
    with in_process(tmp_path) as api:
        yield api


@pytest.fixture
def document(api: InProcess) -> dict[str, Any]:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    doc: dict[str, Any] = response.json()
    return doc


def test_every_route_and_method_is_documented(api: InProcess, document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    routes = [r for r in api.client.app.routes if isinstance(r, Route)]  # type: ignore[attr-defined]
    assert routes
    for route in routes:
        methods = {m.lower() for m in route.methods or ()} - {"head"}
        assert set(document["paths"][route.path]) == methods, route.path
    assert len(document["paths"]) == len(routes)


def test_every_operation_is_named_once(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == len(list(OPERATIONS))


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    refs = set(references(document))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for op in item.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == {part[1:-1] for part in path.split("/") if part.startswith("{")}


def test_the_examples_are_valid() -> None:
    checked = 0
    for op in OPERATIONS:
        if op.body is not None:
            assert op.examples, f"{op.name} documents its body with no example"
            for example in op.examples.values():
                op.body.model_validate_json(json.dumps(example))
                checked += 1
        models: list[type[BaseModel]] = [ErrorAnswer]
        if op.answer is not None:
            models.append(op.answer)
        for model in models:
            extra = model.model_config.get("json_schema_extra")
            examples = extra.get("examples") if isinstance(extra, dict) else None
            assert isinstance(examples, list) and examples, f"{model.__name__}: no example"
            for example in examples:
                model.model_validate_json(json.dumps(example))
                checked += 1
    assert checked > len(list(OPERATIONS))


def test_the_answers_have_the_documented_shapes(api: InProcess) -> None:
    client = api.client
    created = client.post("/api/movies", json={"prompt": "a kite over the dunes"})
    assert created.status_code == 202
    Created.model_validate(created.json())
    movie_id = created.json()["movie_id"]
    assert created.headers["Location"] == f"/api/movies/{movie_id}"
    MovieView.model_validate(client.get(f"/api/movies/{movie_id}/status").json())
    JobPosition.model_validate(client.get(f"/api/queue/{movie_id}/position").json())
    MovieList.model_validate(client.get("/api/movies").json())
    Queues.model_validate(client.get("/api/queues").json())
    Health.model_validate(client.get("/healthz").json())
    cancelled = client.post(f"/api/movies/{movie_id}/cancel")
    MovieView.model_validate(cancelled.json())
    JobPosition.model_validate(client.get(f"/api/queue/{movie_id}/position").json())
    ErrorAnswer.model_validate(client.post(f"/api/movies/{movie_id}/cancel").json())  # 409
