"""Worker threads that deliver the embedded queue's messages to their handlers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from deepflix.adapters.local.queue import Message, SqliteQueue


class Consumer:
    """Worker threads that deliver messages to handlers as soon as they are put.

    A handler that returns acknowledges; one that raises is redelivered with backoff.
    Puts from this process are handed over in memory; puts from other processes (job
    subprocesses) and delayed messages are found by polling the database when `wake()` is
    called — the runtime calls it when a job exits — when one falls due, or after `idle_s`.
    """

    def __init__(
        self,
        queue: SqliteQueue,
        handlers: Mapping[str, Callable[[dict[str, Any]], None]],
        *,
        threads: int = 4,
        idle_s: float = 1.0,
        on_error: Callable[[Message, BaseException], None] | None = None,
        stored: bool = True,
    ) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.idle_s = idle_s
        self.on_error = on_error
        self._cond = threading.Condition()
        self._pending = 0
        self._poll = True  # at start: messages left in the database from before
        self._eta: float | None = None
        self._eta_seen = -1  # queue.delays when _eta was read; -1: read it again
        self._stop = False
        self._threads = [
            threading.Thread(target=self._run, name=f"consumer-{i}", daemon=True)
            for i in range(threads)
        ]
        queue.deliver_here(self.handlers, stored=stored)
        queue.on_put(self._put_here)

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=10)

    def wake(self) -> None:
        """Look in the database now: another process has put messages."""
        with self._cond:
            self._poll = True  # the poll also reads again what falls due next
            self._pending += 1
            self._cond.notify()

    def _put_here(self) -> None:
        with self._cond:
            self._pending += 1
            self._cond.notify()

    def _run(self) -> None:
        names = set(self.handlers)
        poll = False
        while True:
            with self._cond:
                if self._stop:
                    return
                self._pending = max(0, self._pending - 1)
                poll, self._poll = poll or self._poll, False
            message = self.queue.take_ready()
            if message is None and poll:
                self._eta_seen = -1  # what falls due next may have changed
                batch = self.queue.lease(names, 1)
                message = batch[0] if batch else None
                poll = message is not None  # go on polling while it finds something
            if message is not None:
                self._deliver(message)
            else:
                poll = self._idle(names)

    def _idle(self, names: set[str]) -> bool:
        """Wait for a put; True when the database should be polled (something fell due)."""
        # The earliest due time changes only with delays, nacks and polls (queue.delays
        # counts them): read it again only then, not with a query on every idle turn.
        seen = self.queue.delays
        if seen != self._eta_seen:
            self._eta, self._eta_seen = self.queue.next_eta(names), seen
        eta = self._eta
        timeout = self.idle_s if eta is None else min(self.idle_s, max(0.0, eta - time.time()))
        with self._cond:
            if self._pending or self._stop:
                return False
            if timeout <= 0:
                return True
            return not self._cond.wait(timeout)

    def _deliver(self, message: Message) -> None:
        try:
            self.handlers[message.queue](message.body)
        except Exception as e:  # the handler's error decides redelivery, never the thread
            if self.on_error is not None:
                self.on_error(message, e)
            self.queue.nack(message, f"{type(e).__name__}: {e}")
        else:
            self.queue.ack(message)
