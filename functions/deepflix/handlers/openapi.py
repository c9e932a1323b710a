"""The API's OpenAPI 3.1 document, generated from its declared operations and their models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from deepflix.handlers.guard import CLIENT_HEADER, SAFE_METHODS
from deepflix.handlers.operations import Operation, Param
from deepflix.handlers.schemas import ErrorAnswer

REF = "#/components/schemas/{model}"
CLIENT = Param(
    CLIENT_HEADER,
    "Any value: says the request comes from a script or the dashboard, not from a form of "
    "another site. Needed on a write sent without `Content-Type: application/json`.",
)
ERRORS = {
    400: "The request is malformed (JSON, a parameter, a header).",
    403: "`Origin` (or `Sec-Fetch-Site: cross-site`) names another site, not allowed to write.",
    404: "No such movie, artifact or route.",
    405: "The path does not take this method; `Allow` lists those it takes.",
    408: "The request body did not all arrive within 10 s.",
    409: "The movie's state refuses this, or the Idempotency-Key was used with another body.",
    413: "The request body is over 64 KiB.",
    416: "The `Range` starts past the end of the file; `Content-Range` gives its size.",
    415: f"The request is not application/json and carries no `{CLIENT_HEADER}` header.",
    421: "The `Host` is not one this service answers to (DEEPFLIX_ALLOWED_HOSTS).",
    422: "The request body is JSON but not a valid movie request; `details` names each field.",
    503: "A backing service is unreachable; nothing was half-done. Retry after `Retry-After`.",
}


def document(operations: Iterable[Operation], *, title: str, version: str) -> dict[str, Any]:
    ops = list(operations)
    models = {m for op in ops for m in (op.body, op.answer) if m is not None} | {ErrorAnswer}
    _, top = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)], ref_template=REF
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": top.get("$defs", {})},
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.name, "summary": op.summary}
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in op.path_params
    ]
    writes = op.method not in SAFE_METHODS
    headers = (*op.headers, CLIENT) if writes else op.headers
    for where, given in (("query", op.query), ("header", headers)):
        params += [
            {"name": p.name, "in": where, "description": p.description, "schema": dict(p.schema)}
            for p in given
        ]
    if params:
        out["parameters"] = params
    if op.body is not None:
        content: dict[str, Any] = {"schema": _ref(op.body)}
        if op.examples:
            content["examples"] = {name: {"value": value} for name, value in op.examples.items()}
        out["requestBody"] = {"required": True, "content": {"application/json": content}}
    answer: dict[str, Any] = {"description": op.summary}
    if op.status == 204:
        pass  # No Content
    elif op.answer is not None:
        answer["content"] = {op.media_type: {"schema": _ref(op.answer)}}
    else:
        answer["content"] = {op.media_type: {"schema": {"type": "string"}}}
    if op.answer_headers:
        answer["headers"] = _headers(op.answer_headers)
    responses: dict[str, Any] = {str(op.status): answer}
    # Every operation is behind the request guard (handlers/guard.py).
    for status in sorted({*op.errors, 421, *((403, 415) if writes else ())}):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": _ref(ErrorAnswer)}},
        }
        if status == 503:
            responses["503"]["headers"] = _headers({"Retry-After": "Seconds to wait."})
    out["responses"] = responses
    return out


def _headers(headers: Mapping[str, str]) -> dict[str, Any]:
    return {
        name: {"description": meaning, "schema": {"type": "string"}}
        for name, meaning in headers.items()
    }
