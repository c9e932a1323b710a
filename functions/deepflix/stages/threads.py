"""Threads for in-process stage work: a hung stage holds one of these, never a delivery thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from deepflix import logs

log = logs.get("stages")
# How many threads stage work may hold at once: the stages' concurrency, and attempts that
# hang past their deadline (a thread cannot be stopped). Past it, new work waits for one.
MAX_THREADS = 64


class StageThreads:
    """Runs functions on reused daemon threads, starting another when every one is busy.

    Not a ThreadPoolExecutor: work that hangs would keep its fixed number of threads and
    everything queued behind them would wait, and the interpreter waits for its threads
    at exit. Here the threads follow the work running at once (which the stages'
    concurrency bounds) plus the hung attempts, up to `limit`.
    """

    def __init__(self, *, limit: int = MAX_THREADS, name: str = "stage-work") -> None:
        self.limit = limit
        self.name = name
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads waiting for work
        self._queued = 0  # work waiting for a thread (all `limit` busy)

    def submit(self, fn: Callable[[], None]) -> None:
        """Run `fn` on an idle thread, or a new one; it logs what `fn` raises."""
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif self._threads < self.limit:
                self._threads += 1
                threading.Thread(
                    target=self._serve, name=f"{self.name}-{self._threads}", daemon=True
                ).start()
            else:
                self._queued += 1
                log.warning("all %d stage threads are busy: work waits for one", self.limit)
            self._work.put(fn)

    def counts(self) -> tuple[int, int]:
        """(threads, busy ones)."""
        with self._lock:
            return self._threads, self._threads - self._idle

    def _serve(self) -> None:
        while True:
            fn = self._work.get()
            try:
                fn()
            except Exception:  # the caller's to record; the thread serves the next work
                log.exception("stage work raised")
            with self._lock:  # its next get takes queued work, or waits as an idle thread
                if self._queued:
                    self._queued -= 1
                else:
                    self._idle += 1
