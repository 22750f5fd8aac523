"""Issue 8, finding 9: on a full disk the CLI prints one error line, not a traceback.

In process (typer's runner), because the disk is filled the way SQLite sees it, per
connection: ``PRAGMA max_page_count`` caps the file at the pages it has, so the next page
a write needs fails with SQLITE_FULL, as on a full file system.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lineoa_export.cli.main import app
from lineoa_export.store.database import Database


def test_a_trigger_on_a_full_disk_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"LINEOA_EXPORT_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "COLUMNS": "250"}
    runner = CliRunner()
    for command in (
        ["auth", "create", "line", "--access-token", "t", "--skip-test"],
        [
            "activation",
            "create",
            "welcome",
            "--auth",
            "line",
            "--recipient",
            "{{uid}}",
            "--messages",
            json.dumps([{"type": "text", "text": "hi"}]),
        ],
    ):
        assert runner.invoke(app, command, env=env).exit_code == 0

    original = Database._connect

    def capped(self: Database) -> Any:
        conn = original(self)
        pages = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages['page_count']}")
        return conn

    monkeypatch.setattr(Database, "_connect", capped)
    events = "\n".join(json.dumps({"event_id": f"e{i}", "uid": "U" + "0" * 32, "x": "y" * 4000}) for i in range(300))
    result = runner.invoke(app, ["trigger", "welcome", "--events", "-"], input=events, env=env)

    assert result.exit_code == 1
    assert "disk is full" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # exited, did not crash
