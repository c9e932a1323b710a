"""Cloud Function handlers: thin adapters from functions-framework to the shared API."""

from __future__ import annotations

import threading

import flask
import functions_framework
from werkzeug.wrappers import Response

from deepflix import logs
from deepflix.config import get_settings
from deepflix.handlers.api import Api

_lock = threading.Lock()
_api: Api | None = None


def _get_api() -> Api:
    """Built on the first request of an instance, once: nothing runs at import time."""
    global _api
    with _lock:
        if _api is None:
            from deepflix.handlers.wiring import build_embedded

            settings = get_settings()
            logs.setup(settings.log_level)
            runtime = build_embedded(settings)
            runtime.start()
            _api = Api(
                pipeline=runtime.pipeline,
                artifacts=runtime.artifacts,
                local_file=runtime.artifacts.resolve,
            )
        return _api


@functions_framework.http
def api(request: flask.Request) -> Response:
    """The public HTTP API (`POST /api/movies`, status, position, cancel, retry, ...)."""
    return _get_api().handle(request)
