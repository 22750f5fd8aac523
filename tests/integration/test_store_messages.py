"""What the store says about a database: never its password."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineoa_export.errors import ConfigurationError
from lineoa_export.store.database import Database, open_database, redacted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://admin:S3cret@db:5432/lineoa", "postgresql://admin:***@db:5432/lineoa"),
        ("postgres://admin:p@ss:w0rd@db/lineoa?sslmode=require", "postgres://admin:***@db/lineoa?sslmode=require"),
        ("postgresql://admin@db/lineoa?password=S3cret&sslmode=require", "postgresql://admin@db/lineoa?password=***&sslmode=require"),
        ("postgresql://admin@db/lineoa", "postgresql://admin@db/lineoa"),
    ],
)  # fmt: skip
def test_database_urls_in_messages_never_show_a_password(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_an_unsupported_database_url_is_refused_without_showing_its_password() -> None:
    with pytest.raises(ConfigurationError) as refused:
        Database("mysql://admin:S3cret@db/lineoa")
    assert "S3cret" not in str(refused.value) and "mysql://admin:***@db/lineoa" in str(refused.value)


@pytest.mark.parametrize("kind", ["a directory", "a text file", "under a file"])
def test_a_path_that_cannot_be_a_sqlite_database_is_refused_with_one_clear_error(tmp_path: Path, kind: str) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n")
    path = {
        "a directory": tmp_path,
        "a text file": tmp_path / "notes.txt",
        "under a file": tmp_path / "notes.txt" / "x.db",
    }[kind]
    with pytest.raises(ConfigurationError, match=r"^LINEOA_EXPORT_DATABASE_URL: cannot use .* as a SQLite database: "):
        open_database(f"sqlite:///{path}")
    assert (tmp_path / "notes.txt").read_text() == "not a database\n"  # nothing was written to it
