"""The reads a self-refreshing activation table makes (web/console/live.py) are served by an index,
however many events the activation holds: SQLite's own query plans say so.

Counting an activation's events by state reads the index alone (not every row), and a page of
the table filtered by one state walks only that state's events, so a filter that matches nothing
costs nothing (on 500,000 events: 0.1 ms instead of 150-200 ms; see migration 0009)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lineoa_export.store.database import Database, open_database, query


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'plans.db'}")
    yield database
    database.close()


def plan(db: Database, name: str, params: dict[str, Any]) -> str:
    with db.transaction() as tx:
        rows = tx._conn.execute("EXPLAIN QUERY PLAN " + query(name, "sqlite"), params).fetchall()  # type: ignore[attr-defined]
    return " / ".join(row["detail"] for row in rows)


def test_counting_an_activation_by_state_reads_only_an_index(db: Database) -> None:
    assert plan(db, "activation_counts", {"name": "a"}) == (
        "SEARCH events USING COVERING INDEX events_by_activation_state (activation=?)"
    )


def test_a_page_of_one_state_walks_only_that_states_events_newest_first(db: Database) -> None:
    params = dict.fromkeys(("delivered", "status_code", "since", "until", "before_id"))
    found = plan(db, "log_page_in_state", {**params, "activation": "a", "state": "paused", "limit": 50})
    assert found == "SEARCH e USING INDEX events_by_activation_state (activation=? AND state=?)", found
