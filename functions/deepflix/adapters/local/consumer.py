"""Worker threads that deliver the embedded queue's messages to their handlers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deepflix import logs
from deepflix.adapters.local.queue import Message, SqliteQueue
from deepflix.pipeline.policy import outage_backoff_s

log = logs.get("consumer")


@dataclass(frozen=True)
class DeliveryError:
    at: float  # time.time()
    queue: str | None  # None: the queue's own database failed (a lease, a redelivery)
    error: str


@dataclass(frozen=True)
class DeliveryStatus:
    """What the delivery threads are doing, for the queues view and the health check."""

    threads: int
    threads_alive: int
    in_flight: int
    longest_in_flight_s: float | None
    errors: int  # since the start: handlers that raised, and failures of the queue itself
    last_error: DeliveryError | None


class Consumer:
    """Worker threads that deliver messages to handlers as soon as they are put.

    A handler that returns acknowledges; one that raises is redelivered with backoff. No
    error ends a thread: a database that fails (full, locked by another process) is tried
    again with backoff until it answers, and a redelivery is kept until it is recorded.
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
        self._stopped = threading.Event()  # what a thread waiting out a failure waits on
        self._lock = threading.Lock()  # the status below
        self._in_flight: dict[int, tuple[str, float]] = {}  # thread -> (queue, monotonic)
        self._failures = 0
        self._last_error: DeliveryError | None = None
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
        self._stopped.set()
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

    def status(self) -> DeliveryStatus:
        now = time.monotonic()
        with self._lock:
            started = [since for _, since in self._in_flight.values()]
            failures, last = self._failures, self._last_error
        return DeliveryStatus(
            threads=len(self._threads),
            threads_alive=sum(t.is_alive() for t in self._threads),
            in_flight=len(started),
            longest_in_flight_s=round(now - min(started), 3) if started else None,
            errors=failures,
            last_error=last,
        )

    def _run(self) -> None:
        names = set(self.handlers)
        poll = False
        failures = 0
        while True:
            with self._cond:
                if self._stop:
                    return
                self._pending = max(0, self._pending - 1)
                poll, self._poll = poll or self._poll, False
            try:
                poll = self._turn(names, poll)
            except Exception as e:  # the queue's database failed: wait, then look again
                failures += 1
                self._note(None, e)
                log.warning("delivery threads: the queue failed (%d in a row): %s", failures, e)
                poll = True
                self._stopped.wait(outage_backoff_s(failures))
            else:
                failures = 0

    def _turn(self, names: set[str], poll: bool) -> bool:
        """Deliver one message, or wait for one; whether to poll the database next."""
        message = self.queue.take_ready()
        if message is None and poll:
            self._eta_seen = -1  # what falls due next may have changed
            batch = self.queue.lease(names, 1)
            message = batch[0] if batch else None
            poll = message is not None  # go on polling while it finds something
        if message is None:
            return self._idle(names)
        self._deliver(message)
        return poll

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
        me = threading.get_ident()
        with self._lock:
            self._in_flight[me] = (message.queue, time.monotonic())
        try:
            self.handlers[message.queue](message.body)
        except Exception as e:  # the handler's error decides redelivery, never the thread
            self._note(message.queue, e)
            if self.on_error is not None:
                self.on_error(message, e)
            self._redeliver(message, f"{type(e).__name__}: {e}")
        else:
            self.queue.ack(message)  # not waited for: a lost ack is a redelivery
        finally:
            with self._lock:
                self._in_flight.pop(me, None)

    def _redeliver(self, message: Message, error: str) -> None:
        """Record the message for its redelivery, trying until the database takes it: a
        message never stored (ADR 0007) would be lost otherwise. Once the consumer stops,
        the start-up after rebuilds what is left from the movies."""
        failures = 0
        while True:
            try:
                self.queue.nack(message, error)
                return
            except Exception as e:
                failures += 1
                self._note(None, e)
                log.warning("a redelivery of %s is not recorded yet: %s", message.queue, e)
                if self._stopped.wait(outage_backoff_s(failures)):
                    return

    def _note(self, queue: str | None, e: Exception) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = DeliveryError(time.time(), queue, f"{type(e).__name__}: {e}")
