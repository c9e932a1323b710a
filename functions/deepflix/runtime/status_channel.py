"""The runtime's health, sent to the API process of `deepflix serve` each second over a pipe."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from deepflix import logs

log = logs.get("status")
INTERVAL_S = 1.0
# Silence this long means the runtime no longer answers (wedged, or gone): a few missed
# reports, with room for a runtime that is busy and below the API's CPU priority.
STALE_S = 10.0


class StatusSender:
    """The runtime's end: writes `status()` as one JSON line every `interval_s`.

    A pipe of its own, not the write channel: the API process needs to know this even
    when no write gets through, and a read of it must never wait behind the writes.
    """

    def __init__(
        self, status: Callable[[], dict[str, Any]], fd: int, *, interval_s: float = INTERVAL_S
    ) -> None:
        self.status = status
        self.fd = fd
        self.interval_s = interval_s

    def start(self) -> None:
        threading.Thread(target=self._run, name="status-sender", daemon=True).start()

    def _run(self) -> None:
        # Unbuffered, so nothing is left to flush at the close after the API process is gone
        # (a flush then would fail on the closed pipe).
        with open(self.fd, "wb", buffering=0) as pipe:
            while True:
                try:
                    line = orjson.dumps(self.status())
                except Exception as e:  # what the report says must not end the reports
                    log.exception("the runtime's status failed")
                    line = orjson.dumps({"error": f"{type(e).__name__}: {e}"})
                try:
                    pipe.write(line + b"\n")
                except OSError:  # the API process is gone
                    return
                time.sleep(self.interval_s)


class StatusReader:
    """The API process's end: keeps the latest report, read on a thread of its own."""

    def __init__(self, fd: int, *, stale_s: float = STALE_S) -> None:
        self.fd = fd
        self.stale_s = stale_s
        self._latest: tuple[float, dict[str, Any]] | None = None
        self._started = time.monotonic()

    def start(self) -> None:
        threading.Thread(target=self._run, name="status-reader", daemon=True).start()

    def latest(self) -> dict[str, Any] | None:
        """The runtime's last report, unless it is older than `stale_s`."""
        latest = self._latest
        if latest is None or time.monotonic() - latest[0] > self.stale_s:
            return None
        return latest[1]

    def health(self) -> dict[str, Any]:
        """`/healthz`'s verdict on the runtime: "ok", or "degraded" with the problems."""
        report = self.latest()
        if report is None:
            since = self._latest[0] if self._latest else self._started
            quiet = time.monotonic() - since
            return {
                "status": "degraded",
                "problems": [f"the runtime has not reported for {quiet:.0f} s"],
                "store": None,
                "delivery": None,
            }
        found = problems(report)
        return {
            "status": "degraded" if found else "ok",
            "problems": found,
            "store": report.get("store"),
            "delivery": report.get("delivery"),
        }

    def _run(self) -> None:
        with open(self.fd, "rb") as pipe:
            for line in pipe:
                with contextlib.suppress(ValueError):
                    self._latest = (time.monotonic(), orjson.loads(line))


def problems(report: dict[str, Any]) -> list[str]:
    """What in a runtime's report stops work from moving."""
    if "error" in report:
        return [f"the runtime could not report: {report['error']}"]
    found = []
    store, delivery = report["store"], report["delivery"]
    if not store["writable"]:
        found.append(f"the database takes no writes: {store['error']}")
    if delivery.get("threads_alive", 0) < delivery.get("threads", 0):
        found.append(f"{delivery['threads'] - delivery['threads_alive']} delivery threads died")
    if not delivery["sweeper_alive"]:
        found.append("the sweeper thread died")
    return found
