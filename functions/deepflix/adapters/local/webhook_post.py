"""The HTTP POST of a webhook attempt, on the standard library (no client per attempt to keep)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping


def post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
    """The receiver's HTTP status (an error status is an answer too); OSError when none
    came: refused, unreachable, timed out. Redirects are not followed: a webhook URL is
    the receiver's own, and a redirected POST would lose its body."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout_s) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as e:
        e.close()
        return int(e.code)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None
