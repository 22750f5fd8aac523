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
