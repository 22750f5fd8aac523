"""Fixtures for the acceptance tests (helpers live in ``cli_support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Cli, Setup, Simulator


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def setup(cli: Cli, sim: Simulator) -> Setup:
    """The authentication ``line`` on the simulator; ``setup.activation(name)`` adds activations."""
    return Setup(cli, sim)
