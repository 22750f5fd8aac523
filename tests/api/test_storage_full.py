"""Issue 8, finding 9: a full disk is a clear 503 (and ``/readyz`` says so), never a bare 500.

The disk fills for real, as SQLite sees it: ``PRAGMA max_page_count`` caps the file at the
pages it has, so the next page a write needs fails with SQLITE_FULL ("database or disk is
full"), exactly the error a full file system gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import Api, make_api

from lineoa_export.errors import StorageFull
from lineoa_export.store.database import Database
from lineoa_export.testing import user_id


def fill_disk(db: Database) -> None:
    """Cap every connection of ``db`` (and those it opens later) at the pages the file has now."""
    original = db._connect
    db._connect = lambda: _capped(original())  # type: ignore[method-assign]
    for conn in db._all:
        _capped(conn)


def _capped(conn: Any) -> Any:
    pages = conn.execute("PRAGMA page_count").fetchone()
    count = pages["page_count"] if isinstance(pages, dict) else pages[0]
    conn.execute(f"PRAGMA max_page_count = {count}")
    return conn


def free_disk(db: Database) -> None:
    for conn in db._all:
        conn.execute("PRAGMA max_page_count = 1073741823")
    db._connect = type(db)._connect.__get__(db)  # type: ignore[method-assign]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with make_api(tmp_path, None) as a:
        yield a


def events(n: int) -> list[dict[str, str]]:
    return [{"event_id": f"e{i}", "line_user_id": user_id(i), "name": "x" * 2000} for i in range(n)]


def test_a_full_disk_answers_503_and_readyz_notices_until_a_write_succeeds(api: Api) -> None:
    created = api.post(
        "/v1/activations",
        json={
            "name": "welcome",
            "authentication": "line",
            "recipient": "{{line_user_id}}",
            "messages": [{"type": "text", "text": "Hi {{name}}"}],
        },
    )
    assert created.status_code == 201, created.text
    assert api.get("/readyz").status_code == 200
    fill_disk(api.ctx.db)

    full = api.post("/v1/activations/welcome/triggers", json={"events": events(200)})

    assert full.status_code == 503, full.text
    assert full.json()["error"] == "storage_full"
    assert "disk is full" in full.json()["message"]
    ready = api.get("/readyz")
    assert ready.status_code == 503 and ready.json()["error"] == "storage_full"

    free_disk(api.ctx.db)
    assert api.post("/v1/activations/welcome/triggers", json={"events": events(200)}).status_code == 202
    assert api.get("/readyz").status_code == 200


def test_the_store_says_storage_full_for_sqlite_full(tmp_path: Path) -> None:
    from lineoa_export.store.database import open_database

    db = open_database(f"sqlite:///{tmp_path / 'small.db'}")
    try:
        fill_disk(db)
        with pytest.raises(StorageFull, match="disk is full"):
            for i in range(1000):
                db.run("apikey_insert", {"name": f"k{i}", "key_hash": "h" * 64 + str(i), "now": 0.0, "role": "admin"})
        assert db.storage_full
    finally:
        db.close()
