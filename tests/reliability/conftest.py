"""Fixtures of the reliability suite (sizes and helpers live in ``reliability_support``).

Sizes: ``pytest tests/reliability --full`` runs release sizes. pytest honours
``pytest_addoption`` only in conftests it loads at start-up (the one of a directory named on
the command line), so from the project root use ``LINEOA_EXPORT_RELIABILITY=full pytest``
instead (the variable works everywhere).
"""

from __future__ import annotations

import pytest
import reliability_support
from reliability_support import ENV_VAR, Sizes, current_sizes


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help=f"reliability suite at release sizes (same as {ENV_VAR}=full)",
    )


def pytest_configure(config: pytest.Config) -> None:
    reliability_support.CONFIG = config


@pytest.fixture(scope="session")
def sizes() -> Sizes:
    size = current_sizes()
    print(f"\n[reliability] size: {'full' if size.full else 'default'} {size}")
    return size
