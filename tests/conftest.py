"""Fixtures every test layer may use. A layer's own conftest.py may override them (the
acceptance tests, for one, run the simulator as a process instead)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lineoa_export.testing import ThreadedSimulator


@pytest.fixture
def sim() -> Iterator[ThreadedSimulator]:
    """A LINE simulator on its own thread, for synchronous tests (ASGI clients, browsers)."""
    simulator = ThreadedSimulator()
    try:
        yield simulator
    finally:
        simulator.stop()
