"""A store that counts the reads the API's answers make, and the API's answers counted alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from deepflix.pipeline.eta_reads import COUNTS_TTL_S
from deepflix.pipeline.models import Stage
from deepflix.pipeline.ports import MovieStore
from tests.api_client import InProcess

# The store's reads that an answer may need: each a billed read (or several) on Firestore.
READS = (
    "get",
    "position",
    "ahead",
    "counts",
    "running_counts",
    "mean_durations",
    "admission_paused",
)


class CountingStore:
    """The store, counting its reads by name (a position by its stage too); `before` runs
    something before a method of that name (to make time pass in a write)."""

    def __init__(self, store: MovieStore) -> None:
        self.store = store
        self.reads: Counter[str] = Counter()
        self.before: dict[str, Callable[[], None]] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if name not in READS and name not in self.before:
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            if name in self.before:
                self.before[name]()
            if name in READS:
                stage = next((a for a in args if isinstance(a, Stage)), None)
                self.reads[f"{name}:{stage.value}" if stage else name] += 1
            return attr(*args, **kwargs)

        return counted


class Answers:
    """The API in this process over a counting store; each answer's reads counted alone,
    with the ETA's reuse of its reads run out before each (a clock of its own, no waiting)."""

    def __init__(self, api: InProcess, store: CountingStore) -> None:
        self.api = api
        self.store = store
        self.now = 0.0
        api.pipeline.etas.monotonic = lambda: self.now

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[Any, Counter[str]]:
        self.now += 10 * COUNTS_TTL_S
        self.store.reads.clear()
        response = self.api.client.request(method, path, json=body)
        assert response.status_code < 300, response.text
        return response.json(), Counter(self.store.reads)
