"""The dashboard page: dashboard.html with its stylesheet and scripts put inline, one answer."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
# `@@name.css@@` / `@@name.js@@` in the page: a file beside it, put in its place. The page stays
# one answer (no routes for assets, nothing to cache wrongly) while each file stays short.
_INCLUDE = re.compile(r"@@([a-z-]+\.(?:css|js))@@")


def page() -> bytes:
    """The page as served; read at each request, so an edit shows on reload."""
    html = (HERE / "dashboard.html").read_text(encoding="utf-8")
    text = _INCLUDE.sub(lambda m: (HERE / m.group(1)).read_text(encoding="utf-8"), html)
    return text.encode()
