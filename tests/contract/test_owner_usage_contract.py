"""The quotas' reads of one owner, the same in both stores (embedded and Firestore)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from deepflix.pipeline.events import CancelRequested
from deepflix.pipeline.models import MovieStatus
from deepflix.pipeline.quotas import OwnerUsage
from deepflix.pipeline.transitions import apply
from tests.factories import CONFIG, T0, movie


def test_owner_usage_counts_the_owners_active_and_recent_movies(store: Any) -> None:
    made = [movie(seconds=s) for s in (0, 30, 90)]
    for m in made:
        store.create(m, idempotency_key=None, fingerprint="f")
    other = movie(seconds=100).model_copy(update={"owner": "someone-else"})
    store.create(other, idempotency_key=None, fingerprint="f")
    assert store.owner_usage("tester", T0 + timedelta(seconds=30)) == OwnerUsage(3, 2)
    store.mutate(made[0].id, lambda m: apply(m, CancelRequested(T0), CONFIG))
    assert store.get(made[0].id).status is MovieStatus.cancelled
    assert store.owner_usage("tester", T0) == OwnerUsage(active=2, created_since=3)
    assert store.owner_usage("nobody", T0) == OwnerUsage(0, 0)
