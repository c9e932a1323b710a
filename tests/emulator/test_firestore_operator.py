"""FirestoreMovieStore's filtered lists on the emulator: a page that runs out of reads."""

from __future__ import annotations

from typing import Any

import pytest

from deepflix.adapters.gcp.firestore_store import FirestoreMovieStore
from deepflix.pipeline.operator import MovieFilter
from tests.factories import movie

pytestmark = pytest.mark.emulator


def test_a_page_out_of_reads_is_short_and_its_cursor_goes_on(empty_firestore: Any) -> None:
    store = FirestoreMovieStore(client=empty_firestore, max_scan=2)
    oldest = movie(prompt="the one about a whale")
    store.create(oldest, idempotency_key=None, fingerprint="w")
    for i in range(1, 6):
        m = movie(seconds=i, prompt=f"a cat, take {i}")
        store.create(m, idempotency_key=None, fingerprint=m.id)
    where = MovieFilter(text="whale")
    sizes, cursor, found = [], None, []
    while True:
        page = store.list(owner=None, limit=5, cursor=cursor, where=where)
        sizes.append(len(page.movies))
        found += [m.id for m in page.movies]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        assert len(sizes) < 10
    # Six movies, two read per page: short pages with a cursor until the whale, the oldest.
    assert found == [oldest.id]
    assert sizes[:2] == [0, 0] and len(sizes) in (3, 4)
