"""Acceptance: the monthly quota pause and resume, and ``lineoa-export demo``."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from cli_support import DEMO_CHANNEL_ID, Cli, Setup, Simulator, describe, new_user

WORKER_TIMEOUT = 20.0


def run_worker(cli: Cli) -> subprocess.CompletedProcess[str]:
    try:
        result = cli("worker", "--until-idle", timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker --until-idle did not exit within {WORKER_TIMEOUT} s")
    assert result.returncode == 0, describe(result)
    return result


def status_of(cli: Cli, activation: str) -> str:
    shown = cli.ok("activation", "show", activation).stdout
    match = re.search(r"^\s*status\s{2,}(.*?)\s*$", shown, re.MULTILINE)
    assert match, shown
    return match.group(1)


def test_monthly_quota_pauses_then_resume_delivers_each_once(
    cli: Cli, sim: Simulator, setup: Setup, tmp_path: Path
) -> None:
    setup.activation("monthly")
    setup.activation("neighbour")  # same authentication, same LINE channel, no events
    sim.patch({"channels": {DEMO_CHANNEL_ID: {"quota": 3}}})

    users = [new_user() for _ in range(6)]
    events = tmp_path / "events.ndjson"
    events.write_text("".join(Setup.event(u, f"q{i}") + "\n" for i, u in enumerate(users)))
    triggered = cli.ok("trigger", "monthly", "--events", str(events))
    assert triggered.stdout.count("\taccepted") == 6

    run_worker(cli)
    log = cli.log_json("monthly")
    states = Counter(e["state"] for e in log)
    assert states == {"delivered": 3, "paused": 3}, states
    paused_keys = {e["event_id"]: e["retry_key"] for e in log if e["state"] == "paused"}
    for entry in log:
        if entry["state"] == "paused":
            assert entry["delivered"] is False
            assert entry["error"] is None or "monthly" in entry["error"].lower()

    status = status_of(cli, "monthly")
    assert "PAUSED" in status and "monthly limit" in status, status
    # The quota belongs to the LINE account: every activation on that channel waits.
    neighbour = status_of(cli, "neighbour")
    assert "PAUSED" in neighbour and "monthly limit" in neighbour, neighbour

    sim.patch({"channels": {DEMO_CHANNEL_ID: {"quota": None}}})
    assert "resumed activation monthly" in cli.ok("activation", "resume", "monthly").stdout
    run_worker(cli)

    log = cli.log_json("monthly")
    assert all(e["state"] == "delivered" and e["delivered"] for e in log), log
    for event_id, key in paused_keys.items():
        assert next(e for e in log if e["event_id"] == event_id)["retry_key"] == key, "paused event lost its key"

    stats = sim.stats()
    assert stats["accepted_pushes"] == 6
    assert stats["max_accepted_per_recipient"] == 1
    assert stats["accepted_per_recipient"] == dict.fromkeys(users, 1)
    accepted_keys = {p["to"]: p["retry_key"] for p in sim.accepted()}
    assert accepted_keys == {e["recipient"]: e["retry_key"] for e in log}


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    result = cli("demo", timeout=60)
    assert result.returncode == 0, describe(result)
    assert "delivered" in result.stdout
    assert re.search(r"events delivered\s*│?\s*\d+", result.stdout), result.stdout[-2000:]
    # Audience care (issue 9): three users blocked the account, a cart page reloaded three times under
    # a 1/24h cap, a digest inside its quiet hours.
    assert re.search(r"suppressed: blocked the account\s*│\s*3\b", result.stdout), result.stdout[-2000:]
    assert re.search(r"suppressed: frequency cap 1/24h\s*│\s*2\b", result.stdout)
    assert re.search(r"pushes saved \(no quota used\)\s*│\s*5\b", result.stdout)
    assert re.search(r"pushes LINE accepted for blocked users\s*│\s*0\b", result.stdout)
    assert re.search(r"deferred: quiet hours \(due at\)\s*│\s*20\d\d-", result.stdout)
    # The demo keeps its state in a temporary database of its own.
    assert not (tmp_path / "db.sqlite").exists()
