"""Quota: the channel's monthly quota runs out mid-stream; nothing is dropped, nothing fails.

A real simulator process whose channel allows 40 % of N messages this month, the real CLI on a
SQLite file. ``worker --until-idle`` must deliver exactly the quota, pause the activation (the
rest waits in state ``paused`` with its retry key, none ``failed``) and return. Events triggered
while paused are held too. Then the quota is raised (``PATCH /__sim/options``), the activation
resumed (``activation resume``), and ``worker --until-idle`` delivers the rest: N accepted
pushes in all, one per recipient.

Sizes: default N = 1,000; ``--full`` (or ``LINEOA_EXPORT_RELIABILITY=full``): 10,000.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from cli_support import DEMO_CHANNEL_ID, TEXT_MESSAGES, Cli, Setup, Simulator, describe
from reliability_support import SECRET_KEY, Sizes, report

from lineoa_export.testing import user_id

ACTIVATION = "quota"
LATE = 10  # events triggered while the activation is paused


def ndjson(path: Path, numbers: range) -> Path:
    path.write_text(
        "".join(json.dumps({"event_id": f"e{i}", "uid": user_id(i), "name": "Q", "points": i}) + "\n" for i in numbers)
    )
    return path


@pytest.mark.timeout(1800)  # release sizes take minutes
def test_quota_runs_out_then_resume_delivers_every_event_once(tmp_path: Path, sizes: Sizes) -> None:
    n = sizes.quota_events
    quota = n * 40 // 100
    sim = Simulator("--quota", str(quota))
    try:
        cli = Cli(tmp_path)
        cli.env.update({"LINEOA_EXPORT_SECRET_KEY": SECRET_KEY, "LINEOA_EXPORT_TIMEOUT": "2"})
        Setup(cli, sim)
        cli.ok(
            "activation", "create", ACTIVATION, "--auth", "line", "--recipient", "{{uid}}",
            "--messages", TEXT_MESSAGES, "--max-retries", "5", "--initial-retry-delay", "0.05",
        )  # fmt: skip
        first = cli("trigger", ACTIVATION, "--events", str(ndjson(tmp_path / "a.ndjson", range(n - LATE))), timeout=300)
        assert first.returncode == 0, describe(first)

        run1 = cli("worker", "--until-idle", timeout=300)  # must return although events wait
        assert run1.returncode == 0, describe(run1)
        states1 = Counter(e["state"] for e in cli.log_json(ACTIVATION))
        stats1 = sim.stats()
        shown = cli.ok("activation", "show", ACTIVATION).stdout
        late = cli("trigger", ACTIVATION, "--events", str(ndjson(tmp_path / "b.ndjson", range(n - LATE, n))))
        assert late.returncode == 0, describe(late)
        late_status = Counter(line.split("\t")[1] for line in late.stdout.splitlines() if "\t" in line)
        message = report(
            "quota: exhausted",
            {
                "events": n - LATE,
                "quota": quota,
                "accepted_pushes": stats1["accepted_pushes"],
                "monthly_429s": stats1["requests_by_endpoint"]["push"].get("429", 0),
                "table_states": dict(states1),
                "late_trigger_statuses": dict(late_status),
            },
        )
        assert stats1["accepted_pushes"] == quota, message
        assert states1 == Counter({"delivered": quota, "paused": n - LATE - quota}), message
        assert "monthly" in shown, f"{message}\n{shown}"
        assert late_status == Counter({"paused": LATE}), f"{message}\n{late.stdout}"

        sim.patch({"channels": {DEMO_CHANNEL_ID: {"quota": n}}})
        cli.ok("activation", "resume", ACTIVATION)
        run2 = cli("worker", "--until-idle", timeout=300)
        assert run2.returncode == 0, describe(run2)
        entries = cli.log_json(ACTIVATION)
        stats = sim.stats()
        states = Counter(e["state"] for e in entries)
        statuses = Counter(a["status_code"] for e in entries for a in e["attempt_log"])
        per_recipient = Counter(stats["accepted_per_recipient"])
        duplicates = sum(c - 1 for c in per_recipient.values() if c > 1)
        message = report(
            "quota: resumed",
            {
                "events": n,
                "accepted_pushes": stats["accepted_pushes"],
                "delivered": states["delivered"],
                "lost": n - len(per_recipient),
                "duplicates": duplicates,
                "failed": states["failed"],
                "table_states": dict(states),
                "table_statuses": {str(k): v for k, v in statuses.items()},
                "sim_push_answers": stats["requests_by_endpoint"]["push"],
            },
        )
        assert stats["accepted_pushes"] == n and len(per_recipient) == n, message
        assert stats["max_accepted_per_recipient"] == 1 and duplicates == 0, message
        assert states == Counter({"delivered": n}), message
        assert stats["key_body_mismatches"] == 0, message
        # Each monthly-limit answer is one recorded attempt: nothing was retried hot while paused.
        assert statuses[429] == stats["requests_by_endpoint"]["push"].get("429", 0), message
        assert set(statuses) <= {200, 429}, message
    finally:
        sim.stop()
