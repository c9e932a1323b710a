"""Number and table formatting for bench/RESULTS.md."""

from __future__ import annotations

from typing import Any


def fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return str(x)


def med(s: dict[str, Any] | None, digits: int = 1) -> str:
    """'median [min, max]' of a spread."""
    if not s or s.get("median") is None:
        return "-"
    m, lo, hi = s["median"], s["min"], s["max"]
    if len(s.get("runs", [])) < 2:
        return fmt(m, digits)
    return f"{fmt(m, digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]
