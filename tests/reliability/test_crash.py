"""Crash: ``kill -9`` a real worker process mid-send, again and again; nothing lost, nothing twice.

A real simulator process (5 ms latency per push, so kills land while pushes are in flight), a
real SQLite file, and real ``python -m lineoa_export worker`` processes. N events are triggered,
then K times: a worker starts, as soon as the simulator sees its first push a random delay
(0.05–0.5 s, from a seeded generator) passes, and the worker is killed with SIGKILL. Then
``worker --until-idle`` finishes the job (it waits out the dead workers' leases).

With ``LINEOA_EXPORT_TIMEOUT=0.5`` a lease is 3 × 0.5 + 5 = 6.5 s, which bounds the waits. The
workers' rate limit is set to N / K pushes per second so that every kill lands mid-stream.

At the end the simulator must hold exactly N accepted pushes, one per recipient (one distinct
recipient per event), none with a body differing from its key's first body, and the activation
table must show all N delivered, each with the retry key and request id the simulator accepted.

Sizes: default N = 3,000 and 5 kills; ``--full`` (or ``LINEOA_EXPORT_RELIABILITY=full``):
N = 20,000 and 10 kills.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cli_support import TEXT_MESSAGES, Cli, Setup, Simulator, describe
from reliability_support import SECRET_KEY, Sizes, report

from lineoa_export.testing import SIMULATOR_HOST, user_id

SEED = 20_240_601
LATENCY_MS = "5"
TIMEOUT = 0.5  # lease = 3 × TIMEOUT + 5 = 6.5 s
LEASE = 3 * TIMEOUT + 5
ACTIVATION = "crash"


def pushes_seen(stats: dict[str, Any]) -> int:
    """Every push request the simulator received: answered, dropped or hung."""
    answered = sum(stats["requests_by_endpoint"].get("push", {}).values())
    return int(answered + stats["dropped"] + stats["hung"])


def orphaned_leases(db_path: Path, pid: int) -> int:
    """Unfinished events still leased by the worker process ``pid`` right after it was killed."""
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE state IN ('queued', 'retrying') AND leased_until > ?"
            " AND leased_by LIKE ?",
            (time.time(), f"%:{pid}:%"),
        ).fetchone()
    return int(row[0])


def start_worker(cli: Cli, log_dir: Path, number: int) -> tuple[subprocess.Popen[bytes], Path]:
    log = log_dir / f"worker-{number}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lineoa_export", "worker"],
            env=cli.env,
            cwd=cli.directory,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def wait_for_first_push(sim: Simulator, proc: subprocess.Popen[bytes], before: int, limit: float) -> bool:
    """True once the simulator saw a push beyond ``before`` (the new worker is sending)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if pushes_seen(sim.request("GET", "/__sim/stats")) > before:
            return True
        time.sleep(0.02)
    return False


def table(db_path: Path) -> list[dict[str, Any]]:
    from lineoa_export import activation_table
    from lineoa_export.context import open_context
    from lineoa_export.settings import Settings

    ctx = open_context(
        Settings(database_url=f"sqlite:///{db_path}", secret_key=SECRET_KEY, allowed_api_hosts=(SIMULATOR_HOST,))
    )
    try:
        return list(activation_table.iterate(ctx.db, ACTIVATION))
    finally:
        ctx.close()


@pytest.mark.timeout(1800)  # release sizes take minutes
def test_kill_9_at_random_moments_loses_nothing_and_sends_nothing_twice(tmp_path: Path, sizes: Sizes) -> None:
    n, kills = sizes.crash_events, sizes.crash_kills
    rng = random.Random(SEED)
    rate = max(200, n // kills)
    sim = Simulator("--latency-ms", LATENCY_MS)
    try:
        cli = Cli(tmp_path)
        cli.env.update(
            {
                "LINEOA_EXPORT_SECRET_KEY": SECRET_KEY,
                "LINEOA_EXPORT_TIMEOUT": str(TIMEOUT),
                "LINEOA_EXPORT_CONNECT_TIMEOUT": "0.5",
                "LINEOA_EXPORT_RATE_LIMIT": str(rate),
            }
        )
        Setup(cli, sim)
        cli.ok(
            "activation", "create", ACTIVATION, "--auth", "line", "--recipient", "{{uid}}",
            "--messages", TEXT_MESSAGES,
            "--max-retries", "50", "--initial-retry-delay", "0.05", "--retry-delay-multiple", "1",
        )  # fmt: skip
        events = tmp_path / "events.ndjson"
        recipients = [user_id(i) for i in range(n)]
        events.write_text(
            "".join(
                json.dumps({"event_id": f"e{i}", "uid": u, "name": f"N{i}", "points": i}) + "\n"
                for i, u in enumerate(recipients)
            )
        )
        t0 = time.monotonic()
        triggered = cli("trigger", ACTIVATION, "--events", str(events), timeout=300)
        assert triggered.returncode == 0, describe(triggered)
        accepted_lines = sum(1 for line in triggered.stdout.splitlines() if line.endswith("\taccepted"))
        assert accepted_lines == n, report("crash: trigger", {"n": n, "accepted": accepted_lines})
        print(f"[reliability] crash: {n} events triggered in {time.monotonic() - t0:.1f} s")

        kill_log: list[dict[str, Any]] = []
        logs: list[Path] = []
        for k in range(kills):
            before = pushes_seen(sim.stats())
            proc, log = start_worker(cli, tmp_path, k)
            logs.append(log)
            sending = wait_for_first_push(sim, proc, before, limit=LEASE + 5)
            delay = rng.uniform(0.05, 0.5)
            time.sleep(delay)
            alive = proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            after = pushes_seen(sim.stats())
            kill_log.append(
                {
                    "kill": k + 1,
                    "sending": sending,
                    "alive_at_kill": alive,
                    "delay_s": round(delay, 3),
                    "pushes_by_this_worker": after - before,
                    "orphaned_leases": orphaned_leases(cli.db_path, proc.pid),
                }
            )
            print(f"[reliability] crash: {kill_log[-1]}")
            assert alive, f"worker {k} exited on its own before the kill:\n{log.read_text()}"

        t1 = time.monotonic()
        final = cli("worker", "--until-idle", timeout=600)
        final_seconds = time.monotonic() - t1
        assert final.returncode == 0, describe(final)

        stats = sim.stats()
        accepted = sim.accepted()
        entries = table(cli.db_path)
        states = Counter(e["state"] for e in entries)
        delivered = [e for e in entries if e["delivered"]]
        per_recipient = Counter(p["to"] for p in accepted)
        duplicates = sum(c - 1 for c in per_recipient.values() if c > 1)
        accepted_by_recipient = {p["to"]: p for p in accepted}
        wrong_key = [
            e["event_id"] for e in delivered
            if accepted_by_recipient.get(e["recipient"], {}).get("retry_key") != e["retry_key"]
        ]  # fmt: skip
        wrong_request_id = [
            e["event_id"] for e in delivered
            if accepted_by_recipient.get(e["recipient"], {}).get("request_id") != e["line_request_id"]
        ]  # fmt: skip
        never_accepted = set(recipients) - set(per_recipient)
        counts = {
            "events": n,
            "kills": kills,
            "kills_mid_send": sum(1 for k in kill_log if k["sending"] and k["orphaned_leases"]),
            "orphaned_leases_total": sum(k["orphaned_leases"] for k in kill_log),
            "accepted_pushes": stats["accepted_pushes"],
            "distinct_recipients": stats["distinct_recipients"],
            "max_accepted_per_recipient": stats["max_accepted_per_recipient"],
            "duplicates": duplicates,
            "lost_at_line": len(never_accepted),
            "key_body_mismatches": stats["key_body_mismatches"],
            "409_suppressed": stats["duplicates_suppressed"],
            "push_requests_seen": pushes_seen(stats),
            "table_rows": len(entries),
            "table_delivered": len(delivered),
            "table_states": dict(states),
            "table_attempts": sum(e["attempts"] for e in entries),
            "wrong_retry_key": len(wrong_key),
            "wrong_request_id": len(wrong_request_id),
            "final_worker_s": round(final_seconds, 1),
            "total_s": round(time.monotonic() - t0, 1),
        }
        message = report("crash", counts)
        assert stats["accepted_pushes"] == n, message
        assert stats["distinct_recipients"] == n and not never_accepted, message
        assert stats["max_accepted_per_recipient"] == 1 and duplicates == 0, message
        assert stats["key_body_mismatches"] == 0, message
        assert len(entries) == n and len(delivered) == n and states == Counter({"delivered": n}), message
        assert not wrong_key and not wrong_request_id, f"{message}; e.g. {wrong_key[:5]} {wrong_request_id[:5]}"
        assert counts["kills_mid_send"] >= 1, message  # the test did what it claims
        for log in logs:
            text = log.read_text(errors="replace")
            assert "Traceback" not in text, f"{log.name}:\n{text}"
        assert "Traceback" not in final.stderr, describe(final)
    finally:
        sim.stop()
