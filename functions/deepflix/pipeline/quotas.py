"""Per-owner quotas and the global queue cap: what a create may not exceed, and for how long."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from deepflix.pipeline.errors import DeepflixError
from deepflix.pipeline.models import TERMINAL, MovieStatus, Stage
from deepflix.pipeline.ports import Page, QueueCounts

# The statuses of a movie still in the pipeline (what the active quota counts).
ACTIVE = tuple(s.value for s in MovieStatus if s not in TERMINAL)
DONE = tuple(s.value for s in MovieStatus if s in TERMINAL)


class RateLimited(DeepflixError):
    """Over a quota: answered 429 with Retry-After."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int, details: object = None) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = max(1, retry_after_s)


@dataclass(frozen=True)
class OwnerUsage:
    active: int  # movies of the owner not yet succeeded, failed or cancelled
    created_since: int  # movies the owner created since the window's start


class QuotaReads(Protocol):
    """What the quotas read: per owner two counts the stores answer from an index (no
    document every create writes), the queue counts, and the owner's newest movies."""

    def owner_usage(self, owner: str, since: datetime) -> OwnerUsage: ...

    def counts(self) -> Mapping[Stage, QueueCounts]: ...

    def list(self, *, owner: str | None, limit: int, cursor: str | None) -> Page: ...


@dataclass(frozen=True)
class Quotas:
    """0 for no limit. `active_per_owner`: movies of one owner in the pipeline at once;
    `creates_per_window`: creates of one owner per `window_s`; `queue_cap`: movies waiting
    in all stage queues together. Checked before a create, from reads: two racing creates
    can both pass at the limit's edge (docs/decisions/0018)."""

    active_per_owner: int = 0
    creates_per_window: int = 0
    queue_cap: int = 0
    window_s: float = 60.0
    # Until a place frees in a full queue nobody knows when; ask again after this long.
    queue_full_retry_s: int = 30

    @property
    def enabled(self) -> bool:
        return bool(self.active_per_owner or self.creates_per_window or self.queue_cap)

    def check(self, reads: QuotaReads, owner: str, now: datetime) -> None:
        """Raises RateLimited for a create `owner` may not make now."""
        if not self.enabled:
            return
        if self.queue_cap:
            waiting = sum(c.waiting for c in reads.counts().values())
            if waiting >= self.queue_cap:
                raise RateLimited(
                    "the service is at its queue capacity; try again later",
                    retry_after_s=self.queue_full_retry_s,
                    details={"queue_cap": self.queue_cap, "waiting": waiting},
                )
        if not (self.active_per_owner or self.creates_per_window):
            return
        since = now - timedelta(seconds=self.window_s)
        usage = reads.owner_usage(owner, since)
        if self.creates_per_window and usage.created_since >= self.creates_per_window:
            raise RateLimited(
                f"at most {self.creates_per_window} movies per {self.window_s:g} s",
                retry_after_s=self._window_frees(reads, owner, now),
                details={"limit": self.creates_per_window, "window_seconds": self.window_s},
            )
        if self.active_per_owner and usage.active >= self.active_per_owner:
            raise RateLimited(
                f"at most {self.active_per_owner} movies in progress at once; "
                "wait for one to finish or cancel one",
                retry_after_s=self.queue_full_retry_s,
                details={"limit": self.active_per_owner, "active": usage.active},
            )

    def _window_frees(self, reads: QuotaReads, owner: str, now: datetime) -> int:
        """Seconds until the oldest create in the window leaves it (the Nth newest)."""
        newest = reads.list(owner=owner, limit=self.creates_per_window, cursor=None).movies
        if len(newest) < self.creates_per_window:
            return 1
        leaves = newest[-1].created_at + timedelta(seconds=self.window_s)
        return max(1, math.ceil((leaves - now).total_seconds()))
