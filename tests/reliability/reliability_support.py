"""Sizes and helpers of the reliability suite: tests that attack the product and count what
was lost or duplicated.

Two sizes:

- default (CI): the whole suite runs in well under 3 minutes on 2 cores;
- full (release checks): ``pytest tests/reliability --full``, or the environment variable
  ``LINEOA_EXPORT_RELIABILITY=full`` (needed when pytest is started from the project root:
  it honours ``pytest_addoption`` only in conftests it loads at start-up).

Every test prints what it counted (accepted, delivered, duplicates, lost) and asserts with a
message holding those counts; run with ``-s`` to see them on success too.

``tests/acceptance/cli_support.py`` (the CLI and the simulator as processes) and ``tests/api``
(schemathesis helpers) are reused: both directories are put on ``sys.path`` here.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for helper_dir in (TESTS / "acceptance", TESTS / "api"):
    if str(helper_dir) not in sys.path:
        sys.path.append(str(helper_dir))

ENV_VAR = "LINEOA_EXPORT_RELIABILITY"
SECRET_KEY = "reliability-secret-key, long enough to be a passphrase"


@dataclass(frozen=True)
class Sizes:
    full: bool
    crash_events: int
    crash_kills: int
    fault_events: int
    quota_events: int
    hypothesis_examples: int
    api_examples: int


DEFAULT = Sizes(
    full=False,
    crash_events=3_000,
    crash_kills=5,
    fault_events=1_000,
    quota_events=1_000,
    hypothesis_examples=150,
    api_examples=15,
)
FULL = Sizes(
    full=True,
    crash_events=20_000,
    crash_kills=10,
    fault_events=10_000,
    quota_events=10_000,
    hypothesis_examples=1_500,
    api_examples=60,
)


def is_full(config: pytest.Config | None) -> bool:
    flag = bool(config.getoption("--full", default=False)) if config is not None else False
    return flag or os.environ.get(ENV_VAR, "").lower() == "full"


#: Set by the conftest's ``pytest_configure`` (a historic hook: it runs even for this late
#: conftest), so that modules needing a size at import time (decorator arguments) can read it.
CONFIG: pytest.Config | None = None


def current_sizes() -> Sizes:
    return FULL if is_full(CONFIG) else DEFAULT


def report(title: str, counts: dict[str, object]) -> str:
    """Print one line of counts; returns it as the message for the asserts."""
    line = f"[reliability] {title}: " + ", ".join(f"{k}={v}" for k, v in counts.items())
    print(line, flush=True)
    return line
