import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from lineoa_export.testing import postgres_schema


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
    with postgres_schema() as url:
        yield url
