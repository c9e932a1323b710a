"""Webhooks: a movie's final status POSTed to its URL, signed, retried through the outbox."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from deepflix.pipeline.events import DeliverWebhook
from deepflix.pipeline.models import Movie, MovieStatus, WebhookAttempt
from deepflix.pipeline.outbox import outgoing
from deepflix.pipeline.ports import MovieStore, UnitOfWork
from deepflix.pipeline.transitions import Decision

log = logging.getLogger("deepflix.pipeline")
NOTIFIED = frozenset({MovieStatus.succeeded, MovieStatus.failed})
COUNTED = ("delivered", "failed", "gave_up")  # attempts by result, for /metrics
# (url, body, headers, timeout_s) -> the receiver's HTTP status; raises OSError when none came.
Post = Callable[[str, bytes, Mapping[str, str], float], int]


@dataclass(frozen=True)
class WebhookConfig:
    secret: bytes = b""  # empty: no `webhook-signature` header
    max_attempts: int = 5
    base_delay_s: float = 2.0  # before the 2nd attempt; doubled before each next
    max_delay_s: float = 300.0
    timeout_s: float = 5.0

    def delay_s(self, attempt: int) -> float:
        """The wait after failed attempt `attempt` (1-based)."""
        return float(min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s))


@dataclass(frozen=True)
class WebhookSetup:
    """What a pipeline needs to deliver webhooks: the HTTP POST, the body (the movie's
    status view, rendered by the API's views), the policy, and the URL of every movie
    that names none (DEEPFLIX_WEBHOOK_URL)."""

    post: Post
    render: Callable[[Movie], bytes]
    config: WebhookConfig = field(default_factory=WebhookConfig)
    default_url: str | None = None


def secret_bytes(secret: str) -> bytes:
    """A Standard Webhooks secret (`whsec_` and base64) as its key; any other text as is."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def signature(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: HMAC-SHA256 over `<id>.<timestamp>.<body>`, as Standard Webhooks."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def announce(before: Movie, after: Movie, at: datetime) -> Movie:
    """A movie that has just become succeeded or failed, with a webhook: its first attempt
    (of this notice) in the outbox. Any other change, unchanged."""
    state = after.webhook
    if state is None or after.status is before.status or after.status not in NOTIFIED:
        return after
    attempt = len(state.attempts) + 1
    notice = state.model_copy(
        update={
            "delivered": False,
            "message_id": f"msg_{after.id}_{attempt}",
            "first_attempt": attempt,
        }
    )
    entry = outgoing([DeliverWebhook(after.id, attempt, at)], at)
    return after.model_copy(update={"webhook": notice, "outbox": (*after.outbox, *entry)})


def due(movie: Movie, attempt: int) -> bool:
    """Attempt `attempt` is the next to make, and waits in the outbox: a repeated or stale
    task, or one past the last attempt, is not."""
    state = movie.webhook
    if state is None or state.delivered or attempt != len(state.attempts) + 1:
        return False
    return any(o.kind == "webhook" and o.attempt == attempt for o in movie.outbox)


def recorded(movie: Movie, attempt: int, result: WebhookAttempt, config: WebhookConfig) -> Decision:
    """The movie with the attempt's result: delivered on a 2xx, else the next attempt in
    its outbox after a backoff, until `max_attempts`."""
    if not due(movie, attempt):
        return Decision(movie, (), applied=False, reason="this attempt was made already")
    state = movie.webhook
    assert state is not None  # nosec B101 # an invariant, not a check of input
    ok = result.status_code is not None and 200 <= result.status_code < 300
    new = state.model_copy(update={"attempts": (*state.attempts, result), "delivered": ok})
    kept = tuple(o for o in movie.outbox if not (o.kind == "webhook" and o.attempt == attempt))
    made = attempt - state.first_attempt + 1  # of this notice
    if not ok and made < config.max_attempts:
        at = result.at + timedelta(seconds=config.delay_s(made))
        kept += outgoing([DeliverWebhook(movie.id, attempt + 1, at)], result.at)
    return Decision(movie.model_copy(update={"webhook": new, "outbox": kept}))


@dataclass
class Webhooks:
    """Makes webhook attempts: renders the movie's view, signs it, POSTs it with a timeout
    (on the task's thread, never a stage's), records the result in the movie, and sends
    the next attempt the record queued. `counts` are this process's, for /metrics."""

    store: MovieStore
    unit_of_work: UnitOfWork
    send: Callable[[Movie], None]
    clock: Callable[[], datetime]
    post: Post
    render: Callable[[Movie], bytes]
    config: WebhookConfig = field(default_factory=WebhookConfig)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    # The attempts this process is making now: the same attempt's task delivered again
    # meanwhile (at least once) must not POST a second time before the first is recorded.
    _making: set[tuple[str, int]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, movie_id: str, attempt: int) -> None:
        with self._lock:
            if (movie_id, attempt) in self._making:
                return
            self._making.add((movie_id, attempt))
        try:
            self._deliver(movie_id, attempt)
        finally:
            with self._lock:
                self._making.discard((movie_id, attempt))

    def _deliver(self, movie_id: str, attempt: int) -> None:
        movie = self.store.get(movie_id)
        if movie is None or not due(movie, attempt):
            return
        state = movie.webhook
        assert state is not None and state.message_id is not None  # nosec B101 # an invariant, not a check of input
        body = self.render(movie)
        now = self.clock()
        stamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": state.message_id,
            "webhook-timestamp": str(stamp),
        }
        if self.config.secret:
            headers["webhook-signature"] = signature(
                self.config.secret, state.message_id, stamp, body
            )
        try:
            result = WebhookAttempt(
                at=now, status_code=self.post(state.url, body, headers, self.config.timeout_s)
            )
        except OSError as e:
            result = WebhookAttempt(at=now, error=f"{type(e).__name__}: {e}")
        decision = self.unit_of_work(lambda: self._record(movie_id, attempt, result))
        if decision is not None and decision.applied and decision.movie.webhook is not None:
            self._count(decision.movie, attempt)

    def _record(self, movie_id: str, attempt: int, result: WebhookAttempt) -> Decision | None:
        decision = self.store.mutate(movie_id, lambda m: recorded(m, attempt, result, self.config))
        if decision is not None and decision.applied:
            self.send(decision.movie)
        return decision

    def _count(self, movie: Movie, attempt: int) -> None:
        """Counted here for /metrics, and logged (`webhook delivered|failed|gave up`) for a
        log-based metric in the cloud."""
        state = movie.webhook
        assert state is not None  # nosec B101 # an invariant, not a check of input
        ids = {"movie_id": movie.id, "attempt": attempt}
        if state.delivered:
            self.counts["delivered"] += 1
            log.info("webhook delivered", extra=ids)
            return
        self.counts["failed"] += 1
        last = state.attempts[-1]
        log.info("webhook failed: %s", last.error or f"HTTP {last.status_code}", extra=ids)
        if not any(o.kind == "webhook" for o in movie.outbox):
            self.counts["gave_up"] += 1
            log.warning("webhook gave up after %d attempts", attempt, extra=ids)
