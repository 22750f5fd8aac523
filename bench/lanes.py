"""Delivery lanes, measured (issue 7): every figure is a ratio, side by side in one run.

    .venv/bin/python bench/lanes.py [--quick] [--only far hang takeover throughput] [--json PATH]

One LINE simulator in its own process; real ``lineoa-export worker`` processes (the CLI) deliver.
Rows:

(a) ``far``: one channel limited to R pushes/s, LINE answering 1 / 100 / 300 ms after each push:
    pushes/s in the steady middle of the run ÷ R (target >= 0.9; the limiter aims at 0.95 R).
(b) ``hang``: three healthy channels alone, then beside a fourth whose pushes never get an answer:
    the healthy channels' pace beside the hang ÷ their pace alone (target >= 0.8).
(c) ``takeover``: three workers on PostgreSQL + Redis, one killed with SIGKILL mid-run: seconds
    from the kill until the first of the events it held is pushed again (target <= 5), the longest
    stretch with no push at all, and duplicates (target 0).
(d) ``throughput``: the full pipeline ÷ the bare aiohttp loop, taken as bench/pipeline.py takes it (a
    warm-up, then 3 interleaved rounds; the median round; target >= 0.7).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pipeline  # bench/pipeline.py
from pipeline import ROOT, SECRET_KEY, Simulator, measure_bare, measure_pipeline, user_id
from rich.console import Console
from rich.table import Table

from lineoa_export.testing import channel, token

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
console = Console()


@dataclass(frozen=True)
class Sizes:
    far_rate: float
    far_seconds: float
    hang_rate: float
    hang_events: int
    takeover_rate: float
    takeover_events: int
    pushes: int


FULL = Sizes(far_rate=1000, far_seconds=6, hang_rate=300, hang_events=900, takeover_rate=600,
             takeover_events=6000, pushes=10_000)  # fmt: skip
QUICK = Sizes(far_rate=500, far_seconds=2, hang_rate=200, hang_events=400, takeover_rate=400,
              takeover_events=3000, pushes=4000)  # fmt: skip


# -- the simulator and the store --------------------------------------------------------------------


async def _sim_call(sim: Simulator, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as s, s.request(method, sim.url + path, json=body) as r:
        r.raise_for_status()
        return await r.json()


def sim_channels(sim: Simulator, channels: list[dict[str, Any]]) -> None:
    """Channel 0 is the default one (bench/pipeline.py's token); the others are testing.channel(n)."""
    asyncio.run(_sim_call(sim, "POST", "/__sim/reset"))
    asyncio.run(_sim_call(sim, "PATCH", "/__sim/options", {"channels": [{"rate_limit_per_second": 1e6}, *channels]}))


def sim_accepted(sim: Simulator) -> list[dict[str, Any]]:
    return list(asyncio.run(_sim_call(sim, "GET", "/__sim/accepted")))


def new_store(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'lanes.db'}"
    import psycopg

    schema = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{POSTGRES}?options=-csearch_path%3D{schema}"


def setup(db_url: str, sim: Simulator, channels: dict[str, int]) -> Any:
    """An authentication + activation per name (on simulator channel n); returns the context."""
    from lineoa_export import activations, authentications
    from lineoa_export.context import open_context
    from lineoa_export.settings import Settings

    ctx = open_context(Settings.from_env(database_url=db_url, secret_key=SECRET_KEY))
    now = time.time()
    for name, n in channels.items():
        creds = authentications.Credentials.from_options(token(n), None, None)
        authentications.create(ctx.db, ctx.vault, name=name, credentials=creds, api_url=sim.url, now=now)
        spec = {
            "name": name,
            "authentication": name,
            "recipient": "{{u}}",
            "messages": [{"type": "text", "text": "hi"}],
        }
        activations.create(ctx.db, activations.parse_spec(spec), now=now)
    return ctx


def trigger(ctx: Any, activation: str, n: int) -> None:
    from lineoa_export.delivery import triggers

    for lo in range(0, n, 1000):
        evs = [{"event_id": f"{activation}-{i}", "u": user_id(i)} for i in range(lo, min(n, lo + 1000))]
        triggers.accept(ctx.db, activation, evs, now=time.time())


def worker(db_url: str, log: Path, **settings: Any) -> subprocess.Popen[bytes]:
    """A real ``lineoa-export worker`` process."""
    env = {**os.environ, "LINEOA_EXPORT_DATABASE_URL": db_url, "LINEOA_EXPORT_SECRET_KEY": SECRET_KEY}
    env.update({f"LINEOA_EXPORT_{k.upper()}": str(v) for k, v in settings.items()})
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lineoa_export", "worker"], env=env, cwd=ROOT, stdout=out, stderr=out
        )


def stop(proc: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(sim: Simulator, n: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(_sim_call(sim, "GET", "/__sim/stats"))["accepted_pushes"] >= n:
            return True
        time.sleep(0.05)
    return False


def middle_rate(times: list[float]) -> float:
    """Pushes/s between the 10th and the 90th percentile of acceptance times (no start-up, no tail)."""
    times = sorted(times)
    lo, hi = len(times) // 10, len(times) * 9 // 10
    return (hi - lo) / (times[hi] - times[lo]) if hi > lo and times[hi] > times[lo] else 0.0


# -- (a) LINE far away --------------------------------------------------------------------------------


def row_far(sim: Simulator, s: Sizes, latency_ms: float, tmp: Path) -> dict[str, Any]:
    sim_channels(sim, [channel(1, rate_limit_per_second=s.far_rate * 2, latency_ms=latency_ms).model_dump()])
    db_url = new_store("sqlite", tmp / f"far{latency_ms:g}")
    n = int(s.far_rate * s.far_seconds)
    ctx = setup(db_url, sim, {"far": 1})
    trigger(ctx, "far", n)
    ctx.close()
    proc = worker(db_url, tmp / "far.log", rate_limit=s.far_rate)
    try:
        done = wait_for(sim, n, timeout=s.far_seconds * 4 + 20)
    finally:
        stop(proc)
    rate = middle_rate([a["monotonic"] for a in sim_accepted(sim)])
    return {"latency_ms": latency_ms, "limit": s.far_rate, "pushes_per_s": round(rate, 1),
            "ratio": round(rate / s.far_rate, 3), "complete": done}  # fmt: skip


# -- (b) a hanging channel beside healthy ones ----------------------------------------------------------


def _healthy_pace(sim: Simulator, s: Sizes, tmp: Path, with_hang: bool) -> float:
    healthy = {f"ok{n}": n for n in (1, 2, 3)}
    chans = [channel(n, rate_limit_per_second=s.hang_rate * 2).model_dump() for n in (1, 2, 3)]
    if with_hang:
        chans.append(channel(4, hang=True).model_dump())
    sim_channels(sim, chans)
    db_url = new_store("sqlite", tmp / f"hang{with_hang}")
    ctx = setup(db_url, sim, {**healthy, **({"sick": 4} if with_hang else {})})
    if with_hang:
        trigger(ctx, "sick", s.hang_events)
    for name in healthy:
        trigger(ctx, name, s.hang_events)
    ctx.close()
    proc = worker(db_url, tmp / "hang.log", rate_limit=s.hang_rate)
    try:
        wait_for(sim, 3 * s.hang_events, timeout=60)
    finally:
        stop(proc, kill=with_hang)  # a drain would wait out the hanging pushes' timeouts
    times = [a["monotonic"] for a in sim_accepted(sim)]
    return len(times) / (max(times) - min(times)) if len(times) > 1 else 0.0


def row_hang(sim: Simulator, s: Sizes, tmp: Path) -> dict[str, Any]:
    alone = _healthy_pace(sim, s, tmp, with_hang=False)
    beside = _healthy_pace(sim, s, tmp, with_hang=True)
    return {"alone_per_s": round(alone, 1), "beside_hang_per_s": round(beside, 1),
            "ratio": round(beside / alone, 3) if alone else 0.0}  # fmt: skip


# -- (c) a worker killed ------------------------------------------------------------------------------------


def _held_by(db_url: str, pid: int) -> set[int]:
    """Events the worker with ``pid`` had leased and not finished (its id is host:pid:uuid)."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id FROM events WHERE leased_by LIKE %s AND state IN ('queued', 'retrying')", (f"%:{pid}:%",)
        ).fetchall()
    return {r[0] for r in rows}


def _pushed_again_at(db_url: str, events: set[int], after: float) -> float | None:
    """When the first of ``events`` was pushed by another worker (its attempt's start)."""
    import psycopg

    if not events:
        return None
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT MIN(started_at) FROM attempts WHERE event = ANY(%s) AND started_at > %s", (list(events), after)
        ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def row_takeover(sim: Simulator, s: Sizes, tmp: Path) -> dict[str, Any]:
    sim_channels(sim, [channel(1, rate_limit_per_second=s.takeover_rate * 2).model_dump()])
    db_url = new_store("postgres", tmp)
    name = "t" + uuid.uuid4().hex[:8]  # its own channel key: its own Redis bucket
    ctx = setup(db_url, sim, {name: 1})
    trigger(ctx, name, s.takeover_events)
    ctx.close()
    procs = [worker(db_url, tmp / f"w{i}.log", rate_limit=s.takeover_rate, redis_url=REDIS) for i in range(3)]
    try:
        wait_for(sim, s.takeover_events // 4, timeout=60)
        victim = procs[0]
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        victim.wait()
        held = _held_by(db_url, victim.pid)
        wait_for(sim, s.takeover_events, timeout=120)
    finally:
        for p in procs:
            stop(p)
    accepted = sim_accepted(sim)
    again = _pushed_again_at(db_url, held, killed_at)
    after = sorted(a["wall"] for a in accepted if a["wall"] >= killed_at)
    gaps = [b - a for a, b in zip([killed_at, *after], after, strict=False)]
    keys = Counter(a["retry_key"] for a in accepted)
    return {
        "held_by_killed": len(held),
        "seconds_until_moving": round(again - killed_at, 2) if again is not None else None,
        "longest_silence_s": round(max(gaps, default=0.0), 2),
        "delivered": len(keys),
        "duplicates": sum(c - 1 for c in keys.values()),
        "events": s.takeover_events,
    }


# -- (d) throughput ------------------------------------------------------------------------------------------


def row_throughput(sim: Simulator, s: Sizes, rounds: int = 3) -> dict[str, Any]:
    """As bench/pipeline.py takes it: a warm-up, then bare loop and pipeline in turn, ``rounds`` times;
    the median of each round's ratio (a single run moves by ±30 % on a shared machine)."""
    sim_channels(sim, [])
    asyncio.run(pipeline.bare_loop(sim.url, min(s.pushes, 2000)))  # connections and simulator warm
    runs = []
    for _ in range(rounds):
        bare = measure_bare(sim, s.pushes)
        _, full = measure_pipeline(sim, s.pushes, None, None)
        runs.append({"bare_per_s": round(bare.rate, 1), "pipeline_per_s": round(full.rate, 1),
                     "ratio": round(full.rate / bare.rate, 3), "bare_cpu_us": round(bare.cpu_us_per_push, 1),
                     "pipeline_cpu_us": round(full.cpu_us_per_push, 1), "verified": full.verified})  # fmt: skip
    middle = sorted(runs, key=lambda r: r["ratio"])[(len(runs) - 1) // 2]
    return {**middle, "rounds": runs}


# -- report ----------------------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> Table:
    t = Table(title="Delivery lanes (ratios; bench/lanes.py)", title_justify="left")
    for col in ("row", "figure", "target", "verdict"):
        t.add_column(col, justify="left" if col == "row" else "right")

    def add(row: str, value: float | None, target: str, ok: bool) -> None:
        t.add_row(row, "-" if value is None else f"{value:g}", target, "PASS" if ok else "MISS")

    for far in results.get("far", []):
        add(f"(a) 1 channel, LINE {far['latency_ms']:g} ms away: pushes/s ÷ limit", far["ratio"], ">= 0.9",
            far["ratio"] >= 0.9)  # fmt: skip
    if "hang" in results:
        h = results["hang"]
        add("(b) 3 healthy beside 1 hanging: pace ÷ pace alone", h["ratio"], ">= 0.8", h["ratio"] >= 0.8)
    if "takeover" in results:
        k = results["takeover"]
        moving = k["seconds_until_moving"]
        add("(c) 3 workers (PG + Redis), 1 killed: s until its events move", moving, "<= 5",
            moving is not None and moving <= 5)  # fmt: skip
        add("(c) … duplicates", k["duplicates"], "0", k["duplicates"] == 0 and k["delivered"] == k["events"])
    if "throughput" in results:
        r = results["throughput"]["ratio"]
        add("(d) full pipeline ÷ bare aiohttp loop", r, ">= 0.7", r >= 0.7)
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=["far", "hang", "takeover", "throughput"])
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "lanes.json")
    args = parser.parse_args()
    os.environ.setdefault("LINEOA_EXPORT_ALLOWED_API_HOSTS", "127.0.0.1")  # the simulator's host
    sizes = QUICK if args.quick else FULL
    wanted = args.only or ["far", "hang", "takeover", "throughput"]
    results: dict[str, Any] = {"machine": pipeline.machine(), "sizes": sizes.__dict__}
    sim = Simulator.start()
    try:
        with tempfile.TemporaryDirectory(prefix="lineoa-lanes-") as d:
            tmp = Path(d)
            if "far" in wanted:
                results["far"] = [row_far(sim, sizes, ms, tmp) for ms in (1.0, 100.0, 300.0)]
            if "hang" in wanted:
                results["hang"] = row_hang(sim, sizes, tmp)
            if "takeover" in wanted:
                results["takeover"] = row_takeover(sim, sizes, tmp)
            if "throughput" in wanted:
                results["throughput"] = row_throughput(sim, sizes)
    finally:
        sim.stop()
    console.print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"raw figures: {args.json}")


if __name__ == "__main__":
    main()
