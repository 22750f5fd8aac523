"""An error is one line on stderr, word for word, whatever it quotes and however long it is."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cli_support import Cli


@pytest.fixture
def narrow_cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    del cli.env["COLUMNS"]  # stderr is a pipe: rich would assume 80 columns and wrap at them
    return cli


@pytest.mark.parametrize("name", ["[/red]x", "[bold]x", "[link=https://example.com]x"])
def test_an_error_quoting_square_brackets_shows_them_as_typed(narrow_cli: Cli, name: str) -> None:
    result = narrow_cli("activation", "show", name)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == f"error: activation {name!r} not found\n"


def test_an_error_longer_than_the_terminal_is_still_one_line(narrow_cli: Cli) -> None:
    narrow_cli.ok("apikey", "list")  # makes the database
    with sqlite3.connect(narrow_cli.db_path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, '0099_future', 0, 'a later release')")
    result = narrow_cli("activation", "list")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and len(result.stderr) > 80
    assert result.stderr.startswith("error: database schema is version 99, newer than this lineoa-export's")
