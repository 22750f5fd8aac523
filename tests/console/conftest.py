from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from console_support import Console, console_app


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """The app on a fresh database with the API key ``ops``; not logged in."""
    with console_app(tmp_path) as c:
        yield c


@pytest.fixture
def logged_in(console: Console) -> Console:
    response = console.login()
    assert response.status_code == 303, response.text
    return console
