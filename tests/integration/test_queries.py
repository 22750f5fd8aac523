"""Every named query in store/queries.sql is valid SQL on both stores, against the schema the
migrations make: a query one dialect cannot run fails here, not in a user's worker."""

from __future__ import annotations

import re

import pytest

from lineoa_export.store.database import _query_texts, open_database, query

NAMES = sorted(_query_texts())
PARAM = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")
#: Queries one store has and the other does not need (locks, catalogue reads), by the store they are for.
ONE_STORE = {
    "lock_schema": "postgres",
    "cap_lock": "postgres",
    "aggregation_units_lock": "postgres",
    "insight_requests_lock": "postgres",
    "tables_postgres": "postgres",
    "tables_sqlite": "sqlite",
    "followers_blocked_among_postgres": "postgres",
    "followers_blocked_among_sqlite": "sqlite",
}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from lineoa_export.testing import postgres_schema

    if request.param == "sqlite":
        db = open_database(f"sqlite:///{tmp_path_factory.mktemp('q') / 'q.db'}")
        yield db
        db.close()
        return
    with postgres_schema() as url:
        db = open_database(url)
        yield db
        db.close()


@pytest.mark.parametrize("name", NAMES)
def test_every_named_query_is_valid_on_both_stores(store, name: str) -> None:  # type: ignore[no-untyped-def]
    if ONE_STORE.get(name, store.dialect) != store.dialect:
        pytest.skip(f"{name} is a {ONE_STORE[name]} query")
    params = dict.fromkeys(PARAM.findall(_query_texts()[name]))
    sql = query(name, store.dialect)
    with store.transaction() as tx:
        conn = tx._conn  # the driver's own connection
        if sql.lstrip().upper().startswith("CREATE"):
            conn.execute(sql, params)  # DDL cannot be EXPLAINed; it is IF NOT EXISTS, so run it
        else:
            conn.execute("EXPLAIN " + sql, params)  # plans the statement without running it


#: Queries that read a channel's (or every channel's) waiting events. Finished events pile up by
#: the million; these must reach the few waiting ones through a partial index, never by reading
#: the table. (SQLite: the store that plans without statistics, so its plan is the one to pin.)
READ_WAITING_EVENTS = [
    "claim_due",
    "pending_summary",
    "release_leases_of",
    "channel_hold_events",
    "channel_release_events",
    "breaker_hold_events",
    "overview_queue",
]


@pytest.mark.parametrize("name", READ_WAITING_EVENTS)
def test_queries_of_waiting_events_read_an_index_not_the_events_table(tmp_path_factory, name: str) -> None:  # type: ignore[no-untyped-def]
    db = open_database(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'p.db'}")
    try:
        params = dict.fromkeys(PARAM.findall(_query_texts()[name]))
        plan = [r["detail"] for r in db._conn().execute("EXPLAIN QUERY PLAN " + query(name, "sqlite"), params)]
    finally:
        db.close()
    on_events = [step for step in plan if re.match(r"(SCAN|SEARCH) (events|e)\b", step)]
    assert on_events, plan
    assert all(" USING " in step for step in on_events), plan


class _RollBack(Exception):
    pass


def test_every_event_state_is_stored_and_no_other_on_both_stores(store) -> None:  # type: ignore[no-untyped-def]
    # SQLite spells events.state's CHECK with ORs since migration 0011 (an IN list of seven cost
    # ≈2 µs a write there): the same seven states go in, anything else is refused.
    from lineoa_export.delivery.states import EventState

    blob = "x'00'" if store.dialect == "sqlite" else "'\\x00'"
    with pytest.raises(_RollBack), store.transaction() as tx:
        conn = tx._conn
        conn.execute(
            "INSERT INTO authentications (name, kind, api_url, channel_key, credentials, created_at) "
            f"VALUES ('s', 'access_token', 'https://api.line.me', 'k', {blob}, 0)"
        )
        conn.execute(
            "INSERT INTO activations (name, authentication, recipient, messages, max_retries, initial_retry_delay, "
            "retry_delay_multiple, created_at, updated_at) VALUES ('s', 's', 'r', '[]', 3, 1, 2, 0, 0)"
        )
        for n, state in enumerate(EventState):
            conn.execute(
                "INSERT INTO events (activation, event_id, channel_key, retry_key, state, accepted_at) "
                f"VALUES ('s', 'e{n}', 'k', 'r{n}', '{state}', 0)"
            )
        with pytest.raises(Exception, match=r"(?i)check constraint"):
            conn.execute("UPDATE events SET state = 'sent' WHERE event_id = 'e0'")
        raise _RollBack
