import asyncio
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a scenario coroutine to completion (pytest-asyncio is not needed for this)."""
    return asyncio.run


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each scenario runs on SQLite and on the real PostgreSQL server (a schema of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lineoa.db'}"
        return
    import psycopg

    schema = "test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
