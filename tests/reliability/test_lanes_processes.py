"""Lanes as users run them: real ``lineoa-export worker`` processes, a simulator process whose
channels can each hang, on SQLite and PostgreSQL (issue 7's process-level tests).

- Isolation: three healthy channels and one whose pushes never get an answer (LINE's incident on
  one OA). With ``LINEOA_EXPORT_TIMEOUT=10`` every healthy event must be accepted before the
  first hanging push could even time out; 0.1.0 delivered 0 of them in 90 s.
- Takeover: two workers share the outbox; one is killed with SIGKILL while it holds events. The
  survivor must push those events again after the 4 s that make a worker dead, long before the
  35-s lease ends, and LINE must hold each event exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_support import Cli, Simulator, describe
from reliability_support import SECRET_KEY

from lineoa_export.testing import channel, postgres_schema, token, user_id

HANG_TIMEOUT = 10.0  # LINEOA_EXPORT_TIMEOUT: a hanging push gives up after this


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator()
    try:
        yield simulator
    finally:
        simulator.stop()


def _cli(tmp_path: Path, store: str, **settings: Any) -> Cli:
    cli = Cli(tmp_path)
    cli.env["LINEOA_EXPORT_DATABASE_URL"] = store
    cli.env["LINEOA_EXPORT_SECRET_KEY"] = SECRET_KEY
    cli.env.update({f"LINEOA_EXPORT_{k.upper()}": str(v) for k, v in settings.items()})
    return cli


def _channels(sim: Simulator, *channels: dict[str, Any]) -> None:
    sim.patch({"channels": [{}, *channels], "hang_seconds": 60})


def _add(cli: Cli, sim: Simulator, name: str, n: int, events: int) -> None:
    cli.ok("auth", "create", name, "--access-token", token(n), "--api-url", sim.url, "--skip-test")
    cli.ok("activation", "create", name, "--auth", name, "--recipient", "{{u}}",
           "--messages", '[{"type": "text", "text": "hi"}]')  # fmt: skip
    lines = "\n".join(f'{{"u": "{user_id(i)}", "event_id": "{name}-{i}"}}' for i in range(events))
    cli.ok("trigger", name, "--events", "-", input=lines)


def _worker(cli: Cli, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lineoa_export", "worker"], env=cli.env, cwd=cli.directory, stdout=out, stderr=out
        )


def _wait_accepted(sim: Simulator, n: int, timeout: float) -> float:
    """Seconds until the simulator has accepted ``n`` pushes (fails after ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if sim.stats()["accepted_pushes"] >= n:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"only {sim.stats()['accepted_pushes']} of {n} pushes accepted in {timeout} s")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def test_a_hanging_channel_leaves_the_healthy_ones_their_speed(tmp_path: Path, store: str, sim: Simulator) -> None:
    cli = _cli(tmp_path, store, timeout=HANG_TIMEOUT, rate_limit=500)
    _channels(sim, *(channel(n).model_dump() for n in (1, 2, 3)), channel(4, hang=True).model_dump())
    _add(cli, sim, "sick", 4, 300)  # stored first: FIFO claims would send these first
    for n in (1, 2, 3):
        _add(cli, sim, f"ok{n}", n, 300)
    started = time.monotonic()
    worker = _worker(cli, tmp_path / "worker.log")
    try:
        seconds = _wait_accepted(sim, 900, timeout=60)
        hung = sim.stats()["hung"]
    finally:
        _kill(worker)
    # Every healthy event was accepted before the first hanging push could time out.
    assert seconds < HANG_TIMEOUT, f"healthy channels needed {seconds:.1f} s"
    assert time.monotonic() - started > 0 and hung > 0
    accepted = sim.accepted()
    assert len(accepted) == 900 and len({a["retry_key"] for a in accepted}) == 900


def _held_by(cli: Cli, store: str, pid: int) -> int:
    """Unfinished events the worker process ``pid`` holds right now."""
    sql = f"SELECT count(*) FROM events WHERE state IN ('queued', 'retrying') AND leased_by LIKE '%:{pid}:%'"
    if store.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(store.removeprefix("sqlite:///"), timeout=30) as conn:
            return int(conn.execute(sql).fetchone()[0])
    with psycopg.connect(store, autocommit=True) as conn:
        row = conn.execute(sql.replace("%", "%%")).fetchone()
        return int(row[0]) if row else 0


def test_a_killed_workers_events_move_in_seconds_and_arrive_once(tmp_path: Path, store: str, sim: Simulator) -> None:
    events = 2000
    cli = _cli(tmp_path, store, rate_limit=200)  # 10 s of work: the kill lands mid-stream
    _channels(sim, channel(1).model_dump())
    _add(cli, sim, "k", 1, events)
    first, second = _worker(cli, tmp_path / "w1.log"), _worker(cli, tmp_path / "w2.log")
    try:
        _wait_accepted(sim, 300, timeout=60)
        held = _held_by(cli, store, first.pid)
        _kill(first)
        killed_at = time.monotonic()
        assert held > 0, "the killed worker held nothing: the test proves nothing"
        _wait_accepted(sim, events, timeout=90)
        finished = time.monotonic() - killed_at
    finally:
        _kill(first)
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    accepted = sim.accepted()
    assert len(accepted) == events
    assert len({a["to"] for a in accepted}) == events  # each recipient exactly once
    # 0.1.0 waited out the 35-s lease (LINEOA_EXPORT_TIMEOUT 10 × 3 + 5): the survivor at 100/s
    # would then need > 35 s for what is left; with takeover after 4 s it needs about the rest.
    assert finished < 35, f"the rest took {finished:.1f} s after the kill: the dead worker's events waited"
    log = cli.log_json("k")
    assert {e["state"] for e in log} == {"delivered"}, describe(cli("log", "k"))
