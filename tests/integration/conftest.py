import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a scenario coroutine to completion (pytest-asyncio is not needed for this)."""
    return asyncio.run
