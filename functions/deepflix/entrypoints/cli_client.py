"""The CLI's HTTP client: where the service is, credentials, and errors said in one line."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

CLIENT_HEADER = "X-DeepFlix-Client"
TIMEOUT_S = 30.0
# The API's field names, as the CLI's options spell them, for error messages.
OPTION_OF_FIELD = {
    "scene_count": "--scenes",
    "priority": "--priority",
    "style": "--style",
    "title": "--title",
    "seed": "--seed",
    "prompt": "the prompt",
}


class CliError(Exception):
    """A failure to report in one line; `code` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ApiError(CliError):
    """The service answered with an error: its HTTP status and error code."""

    def __init__(self, message: str, status: int, error_code: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


def default_url(env: Mapping[str, str] | None = None) -> str:
    """DEEPFLIX_URL, else this machine at PORT (or DEEPFLIX_PORT; 8080) as `make run` serves."""
    env = os.environ if env is None else env
    if env.get("DEEPFLIX_URL"):
        return env["DEEPFLIX_URL"].rstrip("/")
    port = env.get("PORT") or env.get("DEEPFLIX_PORT") or "8080"
    return f"http://127.0.0.1:{port}"


def _field_names(text: str) -> str:
    for field, option in OPTION_OF_FIELD.items():
        if text.startswith(f"{field}:"):
            return option + text[len(field) :]
    return text


def _field_errors(details: Any) -> str | None:
    """`--scenes: Input should be ...; ...` from a validation error's field details."""
    if not isinstance(details, list):
        return None
    parts = [
        f"{OPTION_OF_FIELD.get(str(d['field']), str(d['field']))}: {d['message']}"
        for d in details
        if isinstance(d, dict) and "field" in d and "message" in d
    ]
    return "; ".join(parts) or None


def error_message(status: int, body: Any, headers: Mapping[str, str], has_token: bool) -> str:
    """One line for an error answer, saying what to do where there is something to do."""
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    if status == 401:
        if not has_token:
            return (
                "the service asks for credentials: pass --token or set DEEPFLIX_TOKEN"
                " (an API key from `deepflix keys create`)"
            )
        return f"the service refused the token (401): {message or 'unauthenticated'}"
    if status == 403:
        return f"not allowed (403): {message or 'forbidden'}"
    if status == 429:
        wait = headers.get("Retry-After")
        after = f"; try again in {wait} s" if wait else ""
        return f"rate limited (429): {message or 'too many requests'}{after}"
    if not message:
        return f"the service answered HTTP {status}"
    fields = _field_errors(error.get("details") if isinstance(error, dict) else None)
    return f"{fields or _field_names(message)} ({code or status})"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Client:
    """Requests to the service at `url`, with `token` as a bearer credential when set."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token or None

    def _request(self, method: str, path: str, body: Any = None) -> urllib.request.Request:
        data = json.dumps(body).encode() if body is not None else None
        # The header tells the service this is no other site's page (handlers/guard.py).
        headers = {CLIENT_HEADER: "cli"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return urllib.request.Request(self.url + path, data=data, method=method, headers=headers)

    def _unreachable(self, e: urllib.error.URLError) -> CliError:
        reason = e.reason
        if isinstance(reason, ConnectionRefusedError):
            why = "connection refused"
        else:
            why = getattr(reason, "strerror", None) or str(reason)
        return CliError(
            f"cannot reach the service at {self.url}: {why}"
            " (is `deepflix serve` running there? set --url, DEEPFLIX_URL or PORT)"
        )

    def send(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = ()) -> Answer:
        """The answer; ApiError for an error status not in `ok`."""
        try:
            with urllib.request.urlopen(self._request(method, path, body), timeout=TIMEOUT_S) as r:  # nosec B310 # the service URL the user gave, http(s)
                return Answer(r.status, dict(r.headers.items()), r.read())
        except urllib.error.HTTPError as e:
            answer = Answer(e.code, dict(e.headers.items()), e.read())
            if e.code in ok:
                return answer
            try:
                parsed = answer.json()
            except ValueError:
                parsed = None
            raise ApiError(
                error_message(e.code, parsed, answer.headers, bool(self.token)),
                e.code,
                _code(parsed),
            ) from None
        except urllib.error.URLError as e:
            raise self._unreachable(e) from None
        except (TimeoutError, ConnectionError) as e:
            raise CliError(f"the service at {self.url} did not answer: {e}") from None

    def get(self, path: str, **query: str | int | None) -> Any:
        params = {k: str(v) for k, v in query.items() if v is not None}
        suffix = "?" + urllib.parse.urlencode(params) if params else ""
        return self.send("GET", path + suffix).json()

    def post(self, path: str, body: Any = None) -> Any:
        return self.send("POST", path, body if body is not None else {}).json()

    def events(self, path: str) -> Iterator[tuple[str, str]]:
        """(event, data) pairs of a text/event-stream, until the service ends it."""
        try:
            r = urllib.request.urlopen(self._request("GET", path), timeout=TIMEOUT_S)  # nosec B310 # the service URL the user gave, http(s)
        except urllib.error.HTTPError as e:
            parsed = _safe_json(e.read())
            message = error_message(e.code, parsed, dict(e.headers.items()), bool(self.token))
            raise ApiError(message, e.code, _code(parsed)) from None
        except urllib.error.URLError as e:
            raise self._unreachable(e) from None
        with r:
            event, data = "message", list[str]()
            for raw in r:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if data:
                        yield event, "\n".join(data)
                    event, data = "message", []
                elif line.startswith(":"):
                    continue  # a heartbeat
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)

    def resolve(self, movie_id: str) -> str:
        """A full movie id from a unique prefix of one (as the dashboard shows them)."""
        text = movie_id.strip().lower()
        if len(text) == 32:
            return text
        if not text:
            raise CliError("give a movie id (or the start of one)", 2)
        matches: list[str] = []
        cursor: str | None = None
        # `q` narrows the list to ids starting with the text where the service supports it;
        # the prefix is checked here either way.
        for _ in range(100):
            page = self.get("/api/movies", q=text, limit=100, cursor=cursor)
            matches += [m["movie_id"] for m in page["movies"] if m["movie_id"].startswith(text)]
            cursor = page.get("next_cursor")
            if not cursor or len(matches) > 1:
                break
        if not matches:
            raise CliError(f"no movie with an id starting {text!r}")
        if len(set(matches)) > 1:
            shown = ", ".join(m[:12] for m in matches[:5])
            raise CliError(f"{text!r} starts more than one movie id ({shown}): give more of it")
        return matches[0]


def _safe_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _code(parsed: Any) -> str:
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return str(error.get("code", "")) if isinstance(error, dict) else ""
