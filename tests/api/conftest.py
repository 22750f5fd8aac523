"""Fixtures for the API tests: the app in process, a LINE simulator on a thread, a fake clock.

The app is reached through schemathesis' in-process ASGI client (a ``requests.Session``), so
these tests need nothing beyond the dev dependencies. The simulator is aiohttp-based and runs
on its own event loop in a daemon thread; tests drive it through its ``/__sim/*`` endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import Api, make_api

from lineoa_export.testing import ThreadedSimulator


@pytest.fixture
def api(tmp_path: Path, sim: ThreadedSimulator) -> Iterator[Api]:
    """The app on a fresh database, an API key, and the authentication ``line`` on the simulator."""
    with make_api(tmp_path, sim) as a:
        yield a
