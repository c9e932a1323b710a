"""The embedded change feed: every save of a movie moves it up the sequence; a look with no
commit since reads nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepflix.adapters.local import changes
from deepflix.adapters.local.changes import SqliteChanges
from deepflix.adapters.local.db import Database
from deepflix.adapters.local.store import SqliteMovieStore
from deepflix.pipeline.models import MovieCreate, Priority
from deepflix.pipeline.service import Pipeline
from deepflix.pipeline.transitions import Decision
from deepflix.settings import Settings
from tests.pipeline_fakes import Recorder

pytestmark = pytest.mark.integration


def test_saves_are_news_in_order_and_quiet_costs_no_read(tmp_path: Path) -> None:
    db = Database(tmp_path / "movies.db")
    store = SqliteMovieStore(db)
    changes.install(db)
    work = Recorder()
    pipeline = Pipeline(
        store=store, tasks=work, events=work, jobs=work, config=Settings().pipeline_config()
    )
    feed = SqliteChanges(tmp_path / "movies.db")
    start = feed.latest()
    a = pipeline.create(MovieCreate(prompt="a"), owner="o", idempotency_key=None)
    b = pipeline.create(MovieCreate(prompt="b"), owner="o", idempotency_key=None)
    got = feed.since(start)
    assert got is not None and got[1] == [a.id, b.id]
    assert feed.since(got[0]) is None  # nothing committed since: no read at all
    store.mutate(
        a.id,
        lambda m: Decision(
            m.model_copy(
                update={"request": m.request.model_copy(update={"priority": Priority.high})}
            )
        ),
    )
    again = feed.since(got[0])
    assert again is not None and again[1] == [a.id] and again[0] > got[0]
    assert feed.since(again[0]) is None
    feed.close()
