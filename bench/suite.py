"""The benchmark suite of issue 4: every figure, side by side, in one run.

    .venv/bin/python bench/suite.py [--quick] [--json PATH] [--only SECTION ...]

One LINE simulator in its own process on loopback (bench/pipeline.py's ``Simulator``), then:

1. ``throughput``: pushes/s of the full pipeline (1 worker process) next to the bare aiohttp
   loop and the official ``line-bot-sdk`` async client in a plain 64-task loop.
2. ``rate``: 5,000 events/s offered on one channel limited to 2,000/s; the largest number of
   pushes the simulator accepted in any 1-second window, and the achieved rate.
3. ``latency``: 1,000 events/s offered; trigger accepted → push accepted at the simulator,
   p50/p99/max, for a worker process (default and short poll interval) and for ``serve``.
4. ``memory``: peak RSS of the process enqueuing 1,000,000 events, the enqueue rate, and the
   peak RSS of a worker started against that deep outbox.
5. ``startup``: ``lineoa-export --help`` next to ``python -c "import linebot.v3.messaging"``.
6. ``http``: triggers posted over HTTP to ``lineoa-export serve`` (batches of 1,000 and of 100, a
   few connections) while the worker inside serve delivers them: accepted events/s, request
   latency, pushes/s meanwhile, the backlog, and that every event is delivered exactly once.

Each section prints its table when it finishes; a summary lists every target with PASS/MISS;
``bench/results/suite.json`` holds rates, ratios, every raw figure and the machine.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pipeline  # bench/pipeline.py: simulator process, bare loop, full pipeline, helpers
from pipeline import (
    ACTIVATION,
    ROOT,
    SECRET_KEY,
    TOKEN,
    Row,
    Simulator,
    free_port,
    machine,
    measure_bare,
    measure_pipeline,
    median,
    proc_cpu,
    setup_db,
    user_id,
    verify_table,
)
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "suite.json"
SDK_TASKS = 64
SECTIONS = ("throughput", "rate", "latency", "memory", "startup", "http")

# Targets (issue 4).
T_RATE, T_BARE, T_SDK = 2000.0, 0.7, 2.0
T_WINDOW = 2000
T_P99_MS = 20.0
T_RSS_MB = 150.0
T_HTTP = 2000.0  # issue 3: accepted events/s over HTTP while the worker delivers
HTTP_BATCH = 1000  # events per request of the headline run (the endpoint's maximum)
HTTP_OTHER_BATCHES = (100,)  # shown next to it
HTTP_CONNECTIONS = 4
HTTP_PACED_BATCH = 100  # the paced run: T_HTTP events/s offered, one request of 100 every 50 ms

console = Console(width=max(Console().width, 140))


@dataclass
class Profile:
    """Sizes of one suite run (default or --quick)."""

    pushes: int  # section 1, per scenario run
    rounds: int  # section 1, interleaved rounds
    rate_seconds: float  # section 2, how long 5,000/s is offered
    latency_seconds: float
    memory_events: int
    worker_seconds: float  # section 4, worker against the deep outbox
    startup_runs: int
    http_seconds: float  # section 6, per batch size


DEFAULT = Profile(
    pushes=10_000,
    rounds=3,
    rate_seconds=4.0,
    latency_seconds=5.0,
    memory_events=1_000_000,
    worker_seconds=2.0,
    startup_runs=5,
    http_seconds=8.0,
)
QUICK = Profile(
    pushes=4_000,
    rounds=1,
    rate_seconds=2.0,
    latency_seconds=2.0,
    memory_events=100_000,
    worker_seconds=2.0,
    startup_runs=5,
    http_seconds=4.0,
)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} on {os.cpu_count()} CPUs"


def busy() -> bool:
    return os.getloadavg()[0] > 0.75 * (os.cpu_count() or 1)


def new_table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    return table


def event_chunks(n: int, prefix: str, size: int, start: int = 0) -> Iterator[list[dict[str, Any]]]:
    """Events ``start..n-1`` in chunks, built lazily (a million dicts at once would be the RSS)."""
    for lo in range(start, n, size):
        yield [
            {"event_id": f"{prefix}-{i}", "line_user_id": user_id(i), "name": f"Customer {i}", "n": i}
            for i in range(lo, min(n, lo + size))
        ]


def worker_env(db_url: str, **settings: Any) -> dict[str, str]:
    env = {**os.environ, "LINEOA_EXPORT_DATABASE_URL": db_url, "LINEOA_EXPORT_SECRET_KEY": SECRET_KEY}
    env.update({f"LINEOA_EXPORT_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    """bench/pipeline.py's ``--worker-child``: a plain Worker on LINEOA_EXPORT_* until SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, pipeline.__file__, "--worker-child"], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the worker process did not start")
    return proc


def stop(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_accepted(sim: Simulator, n: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        got = sim.stats()["accepted_pushes"]
        if got >= n:
            break
        time.sleep(0.05)
    return got


def sim_accepted(sim: Simulator) -> list[dict[str, Any]]:
    return asyncio.run(sim._call("GET", "/__sim/accepted"))


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


@dataclass
class Offer:
    """What a paced trigger loop did: events, seconds, and how long each trigger call took."""

    events: int
    seconds: float
    call_ms: list[float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def calls(self) -> dict[str, float]:
        """Trigger call durations. Slow calls waited for the database lock the worker held."""
        c = self.call_ms or [0.0]
        return {
            "calls": len(self.call_ms),
            "p50_ms": round(pct(c, 50), 2),
            "p99_ms": round(pct(c, 99), 2),
            "max_ms": round(max(c), 2),
            "over_50ms": sum(x > 50 for x in c),
        }

    def calls_text(self) -> str:
        c = self.calls()
        return f"p50 {c['p50_ms']:.1f} / p99 {c['p99_ms']:.1f} / max {c['max_ms']:.0f} ms ({c['over_50ms']} over 50 ms)"


def paced_trigger(ctx: Any, prefix: str, rate: float, seconds: float, tick: float = 0.01) -> Offer:
    """Trigger ``rate`` events/s for ``seconds`` via ``triggers.accept``, one chunk per ``tick``.

    Behind schedule (a slow commit), the next chunk carries what is due, so the offered total
    stays right."""
    from lineoa_export.delivery import triggers

    total = int(rate * seconds)
    sent = 0
    calls = []
    t0 = time.monotonic()
    while sent < total:
        due = min(total, int((time.monotonic() - t0 + tick) * rate))
        if due > sent:
            chunk = next(event_chunks(due, prefix, due - sent, start=sent))
            c0 = time.perf_counter()
            triggers.accept(ctx.db, ACTIVATION, chunk, now=time.time())
            calls.append((time.perf_counter() - c0) * 1000)
            sent = due
        wake = t0 + sent / rate
        delay = wake - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return Offer(sent, time.monotonic() - t0, calls)


# -- 1. throughput ----------------------------------------------------------------------------


async def sdk_loop(url: str, n: int, tasks: int = SDK_TASKS) -> int:
    """What users write today: the official async client, ``tasks`` coroutines in a loop."""
    from linebot.v3.messaging import (
        AsyncApiClient,
        AsyncMessagingApi,
        Configuration,
        PushMessageRequest,
        TextMessage,
    )

    config = Configuration(host=url, access_token=TOKEN)
    # The SDK's pool defaults to 5 × CPUs connections; give it one per task, as the bare loop has.
    config.connection_pool_maxsize = tasks
    ok = 0
    next_i = 0
    async with AsyncApiClient(config) as client:
        api = AsyncMessagingApi(client)

        async def one_task() -> None:
            nonlocal ok, next_i
            while next_i < n:
                i = next_i
                next_i += 1
                request = PushMessageRequest(to=user_id(i), messages=[TextMessage(text=f"Hello {i}")])
                await api.push_message(request, x_line_retry_key=str(uuid.uuid4()))
                ok += 1

        await asyncio.gather(*(one_task() for _ in range(tasks)))
    return ok


def measure_sdk(sim: Simulator, n: int) -> Row:
    return pipeline.measure_push_loop(
        sim, n, "line-bot-sdk async loop", sdk_loop, {"tasks": SDK_TASKS, "pool": SDK_TASKS}
    )


def section_throughput(sim: Simulator, p: Profile) -> dict[str, Any]:
    asyncio.run(pipeline.bare_loop(sim.url, 1000))  # warm-up: connections, simulator code paths
    asyncio.run(sdk_loop(sim.url, 500))
    runs: dict[str, list[Row]] = {"bare": [], "sdk": [], "pipeline": []}
    loads = []
    for _ in range(p.rounds):
        runs["bare"].append(measure_bare(sim, p.pushes))
        runs["sdk"].append(measure_sdk(sim, p.pushes))
        runs["pipeline"].append(measure_pipeline(sim, p.pushes, None, None)[1])
        loads.append(os.getloadavg()[0])
    # Ratios are paired within a round (runs close in time), then the median over rounds.
    vs_bare = median([pl.rate / b.rate for pl, b in zip(runs["pipeline"], runs["bare"], strict=True)])
    vs_sdk = median([pl.rate / s.rate for pl, s in zip(runs["pipeline"], runs["sdk"], strict=True)])
    cpu_vs_bare = median(
        [b.cpu_us_per_push / pl.cpu_us_per_push for pl, b in zip(runs["pipeline"], runs["bare"], strict=True)]
    )
    cpu_vs_sdk = median(
        [s.cpu_us_per_push / pl.cpu_us_per_push for pl, s in zip(runs["pipeline"], runs["sdk"], strict=True)]
    )
    out: dict[str, Any] = {"pushes_per_run": p.pushes, "rounds": p.rounds, "load_1min": loads, "scenarios": {}}
    table = new_table(
        f"1. pushes/s, {p.pushes:,} pushes per run, median of {p.rounds} round(s) ({load()})",
        "scenario",
        "settings",
        "pushes/s",
        "× bare",
        "pipeline ÷ this",
        "CPU µs/push",
        "client CPU",
        "sim CPU",
        "check",
    )
    pipe_rate = median([r.rate for r in runs["pipeline"]])
    for key, rows in runs.items():
        rate = median([r.rate for r in rows])
        cpu_us = median([r.cpu_us_per_push for r in rows])
        share = median([r.cpu_seconds / r.seconds for r in rows])
        sim_share = median([r.sim_cpu_seconds / r.seconds for r in rows])
        paired_bare = median([r.rate / b.rate for r, b in zip(rows, runs["bare"], strict=True)])
        over = median([pl.rate / r.rate for pl, r in zip(runs["pipeline"], rows, strict=True)])
        good = all(r.verified.startswith("ok") for r in rows)
        settings = " ".join(f"{k}={v:g}" for k, v in rows[0].settings.items() if k != "rate_limit")
        table.add_row(
            rows[0].scenario,
            settings,
            f"{rate:,.0f}",
            f"{paired_bare:.2f}",
            "" if key == "pipeline" else f"{over:.2f}",
            f"{cpu_us:.0f}",
            f"{share:.0%}",
            f"{sim_share:.0%}",
            "ok" if good else "[red]MISMATCH[/red]",
        )
        out["scenarios"][key] = {
            "scenario": rows[0].scenario,
            "per_second": round(rate, 1),
            "ratio_to_bare": round(paired_bare, 3),
            "cpu_us_per_push": round(cpu_us, 1),
            "client_cpu_share": round(share, 3),
            "sim_cpu_share": round(sim_share, 3),
            "checks_ok": good,
            "runs": [r.as_json(b.rate) for r, b in zip(rows, runs["bare"], strict=True)],
        }
    console.print(table)
    console.print(
        f"  pipeline ÷ bare {vs_bare:.2f} (CPU ratio {cpu_vs_bare:.2f}); pipeline ÷ SDK loop {vs_sdk:.2f} "
        f"(CPU ratio {cpu_vs_sdk:.2f})"
    )
    for key, rows in runs.items():
        if not rows[0].verified.startswith("ok"):
            console.print(f"  [red]check {key}:[/red] {rows[0].verified}")
    if median([r.cpu_seconds / r.seconds for r in runs["bare"]]) < 0.85:
        console.print(
            "  [yellow]warning:[/yellow] the bare loop used < 85 % of a core: the machine is busy, "
            "read the ratios and CPU µs/push, not the absolute rates"
        )
    # Unrounded, so the summary prints exactly what this table printed.
    out.update(
        pipeline_per_second=pipe_rate,
        ratio_to_bare=vs_bare,
        ratio_to_sdk=vs_sdk,
        cpu_ratio_to_bare=cpu_vs_bare,
        cpu_ratio_to_sdk=cpu_vs_sdk,
    )
    return out


# -- 2. rate fidelity -------------------------------------------------------------------------


def _offered_run(sim: Simulator, p: Profile, offered: float, limit: float, prefix: str) -> dict[str, Any]:
    """Offer ``offered`` events/s for ``p.rate_seconds`` to a worker process limited to ``limit``/s;
    wait until all are delivered; the simulator's acceptance times tell the rest."""
    from lineoa_export import activations
    from lineoa_export.simulator.record import max_in_window

    sim.reset()
    with tempfile.TemporaryDirectory(prefix="lineoa-bench-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'rate.db'}"
        ctx = setup_db(pipeline.bench_settings(db_url, None, None), sim.url)
        try:
            worker = start_worker(worker_env(db_url, rate_limit=limit))
            try:
                cpu0, sim0 = proc_cpu(worker.pid), sim.cpu()
                offer = paced_trigger(ctx, prefix, offered, p.rate_seconds)
                got = wait_accepted(sim, offer.events, timeout=offer.events / min(limit, 500) + 30)
                worker_cpu, sim_cpu = proc_cpu(worker.pid) - cpu0, sim.cpu() - sim0
                deadline = time.monotonic() + 30
                while (
                    activations.counts(ctx.db, ACTIVATION).get("delivered", 0) < offer.events
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
            finally:
                stop(worker)
            stats = sim.stats()
            accepted = sim_accepted(sim)
            check = verify_table(ctx, sim, offer.events)
        finally:
            ctx.close()
    mono = sorted(float(a["monotonic"]) for a in accepted)
    span = mono[-1] - mono[0] if len(mono) > 1 else 0.0
    achieved = (len(mono) - 1) / span if span else 0.0
    # The steady part: from 1 s after the first push to 1 s before the last.
    steady = [t for t in mono if mono[0] + 1 <= t <= mono[-1] - 1]
    steady_rate = len(steady) / (span - 2) if span > 2 else achieved
    return {
        "limit": limit,
        "offered_per_second": round(offer.rate, 1),
        "offered_events": offer.events,
        "offer_seconds": round(offer.seconds, 3),
        "accepted": got,
        "max_in_any_1s_window": stats["max_accepted_in_any_1s_window"],
        "max_in_any_1s_window_recomputed": max_in_window(mono, 1.0),
        "max_in_any_100ms_window": max_in_window(mono, 0.1),
        "achieved_per_second": round(achieved, 1),
        "steady_per_second": round(steady_rate, 1),
        "delivery_seconds": round(span, 3),
        "worker_cpu_share": round(worker_cpu / span, 3) if span else None,
        "sim_cpu_share": round(sim_cpu / span, 3) if span else None,
        "trigger_calls": offer.calls(),
        "trigger_calls_text": offer.calls_text(),
        "requests_by_status": stats["requests_by_status"],
        "check": check,
        "load_1min": os.getloadavg()[0],
    }


def section_rate(sim: Simulator, p: Profile, offered: float = 5000.0, limit: float = 2000.0) -> dict[str, Any]:
    limited = _offered_run(sim, p, offered, limit, "r")
    # The same offer with the limiter out of the way: what this worker can do here and now,
    # so a shortfall below the limit can be told apart from a slow (or busy) machine.
    free = _offered_run(sim, p, offered, 1_000_000, "f")
    capacity = min(limit, free["achieved_per_second"])
    use = limited["achieved_per_second"] / capacity if capacity else 0.0
    window = limited["max_in_any_1s_window"]
    table = new_table(
        f"2. rate fidelity: {limited['offered_per_second']:,.0f} events/s offered for "
        f"{limited['offer_seconds']:.1f} s to a worker process ({load()})",
        "figure",
        f"limit {limit:,.0f}/s",
        "limit off (reference)",
        "target",
    )
    table.add_row("events offered", f"{limited['offered_events']:,}", f"{free['offered_events']:,}", "")
    table.add_row(
        "max pushes in any 1 s window (simulator)",
        f"{window:,}",
        f"{free['max_in_any_1s_window']:,}",
        f"≤ {T_WINDOW:,} {pipeline.verdict(window <= T_WINDOW)}",
    )
    table.add_row(
        "  same, recomputed from /__sim/accepted",
        f"{limited['max_in_any_1s_window_recomputed']:,}",
        f"{free['max_in_any_1s_window_recomputed']:,}",
        "",
    )
    table.add_row(
        "max pushes in any 100 ms window",
        f"{limited['max_in_any_100ms_window']:,}",
        f"{free['max_in_any_100ms_window']:,}",
        f"(even pace: {limit / 10:,.0f})",
    )
    table.add_row(
        "achieved rate, first → last push",
        f"{limited['achieved_per_second']:,.0f}/s",
        f"{free['achieved_per_second']:,.0f}/s",
        "",
    )
    table.add_row(
        "steady rate (1 s trimmed each end)",
        f"{limited['steady_per_second']:,.0f}/s",
        f"{free['steady_per_second']:,.0f}/s",
        "",
    )
    table.add_row("achieved ÷ min(limit, limit-off rate)", f"{use:.2f}", "", "")
    table.add_row(
        "worker CPU / simulator CPU (share of a core)",
        f"{limited['worker_cpu_share']:.0%} / {limited['sim_cpu_share']:.0%}",
        f"{free['worker_cpu_share']:.0%} / {free['sim_cpu_share']:.0%}",
        "",
    )
    table.add_row(
        "trigger call (accept, 1 chunk per 10 ms)", limited["trigger_calls_text"], free["trigger_calls_text"], ""
    )
    table.add_row(
        "answers by status", json.dumps(limited["requests_by_status"]), json.dumps(free["requests_by_status"]), ""
    )
    for label, run in (("check", limited), ("check (limit off)", free)):
        c = run["check"]
        table.add_row(label, c if c.startswith("ok") else f"[red]{c}[/red]", "", "")
    console.print(table)
    if use < 0.9:
        console.print(
            f"  [yellow]note:[/yellow] with the limit at {limit:,.0f}/s the worker delivered "
            f"{limited['achieved_per_second']:,.0f}/s, {use:.0%} of what it could "
            f"(min of the limit and its {free['achieved_per_second']:,.0f}/s with the limit off)"
        )
    return {**limited, "limit_off": free, "limit_utilisation": round(use, 3)}


# -- 3. latency -------------------------------------------------------------------------------


def latencies(sim: Simulator, db_path: Path, prefix: str) -> list[float]:
    """Per event of ``prefix``: simulator acceptance wall time − the event's accepted_at, in ms."""
    wall = {a["retry_key"]: float(a["wall"]) for a in sim_accepted(sim)}
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT retry_key, accepted_at FROM events WHERE activation = ? AND event_id LIKE ?",
            (ACTIVATION, prefix + "-%"),
        ).fetchall()
    return [(wall[key] - at) * 1000 for key, at in rows if key in wall]


def _latency_worker(sim: Simulator, p: Profile, rate: float, poll: float | None) -> tuple[list[float], Offer]:
    from lineoa_export.delivery import triggers

    sim.reset()
    with tempfile.TemporaryDirectory(prefix="lineoa-bench-") as tmp:
        path = Path(tmp) / "latency.db"
        db_url = f"sqlite:///{path}"
        ctx = setup_db(pipeline.bench_settings(db_url, None, None), sim.url)
        try:
            extra = {} if poll is None else {"poll_interval": poll}
            worker = start_worker(worker_env(db_url, rate_limit=2000, **extra))
            try:
                # Warm-up: channel lookup, connection pool; then forget it at the simulator.
                triggers.accept(ctx.db, ACTIVATION, next(event_chunks(20, "warm", 20)), now=time.time())
                wait_accepted(sim, 20, 30)
                sim.reset()
                offer = paced_trigger(ctx, "lat", rate, p.latency_seconds)
                wait_accepted(sim, offer.events, 60)
            finally:
                stop(worker)
            return latencies(sim, path, "lat"), offer
        finally:
            ctx.close()


@dataclass
class Serve:
    """``lineoa-export serve`` in its own process on a free port; its log goes to a temporary file."""

    proc: subprocess.Popen[str]
    base: str
    log: Any

    def log_tail(self) -> str:
        self.log.seek(0)
        return str(self.log.read()[-2000:])

    async def wait_ready(self, session: aiohttp.ClientSession, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while True:
            try:
                async with session.get(self.base + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {self.log_tail()}")
            await asyncio.sleep(0.1)


def start_serve(db_url: str, **settings: Any) -> Serve:
    port = free_port()
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - uvicorn's log, read on failure only
    proc = subprocess.Popen(
        [sys.executable, "-m", "lineoa_export", "serve", "--port", str(port)],
        env=worker_env(db_url, **settings),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Serve(proc, f"http://127.0.0.1:{port}", log)


async def _wait_sim(sim: Simulator, n: int, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (await sim._call("GET", "/__sim/stats"))["accepted_pushes"] >= n:
            return
        await asyncio.sleep(0.05)


def _latency_serve(sim: Simulator, p: Profile, rate: float, tick: float = 0.01) -> tuple[list[float], Offer]:
    from lineoa_export import apikeys

    sim.reset()
    with tempfile.TemporaryDirectory(prefix="lineoa-bench-") as tmp:
        path = Path(tmp) / "serve.db"
        db_url = f"sqlite:///{path}"
        ctx = setup_db(pipeline.bench_settings(db_url, None, None), sim.url)
        key = apikeys.create(ctx.db, "bench", now=time.time())
        serve = start_serve(db_url, rate_limit=2000)
        try:

            async def drive() -> Offer:
                headers = {"Authorization": f"Bearer {key}"}
                async with aiohttp.ClientSession(headers=headers) as s:
                    await serve.wait_ready(s)
                    trigger_url = f"{serve.base}/v1/activations/{ACTIVATION}/triggers"

                    async def post(evs: list[dict[str, Any]]) -> None:
                        async with s.post(trigger_url, json={"events": evs}) as r:
                            if r.status != 202:
                                raise RuntimeError(f"trigger answered {r.status}: {await r.text()}")

                    await post(next(event_chunks(20, "warm", 20)))
                    await _wait_sim(sim, 20)
                    await sim._call("POST", "/__sim/reset")
                    total = int(rate * p.latency_seconds)
                    sent = 0
                    calls = []
                    t0 = time.monotonic()
                    while sent < total:
                        due = min(total, int((time.monotonic() - t0 + tick) * rate))
                        if due > sent:
                            c0 = time.perf_counter()
                            await post(next(event_chunks(due, "lat", due - sent, start=sent)))
                            calls.append((time.perf_counter() - c0) * 1000)
                            sent = due
                        delay = t0 + sent / rate - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    return Offer(sent, time.monotonic() - t0, calls)

            offer = asyncio.run(drive())
            wait_accepted(sim, offer.events, 60)
        finally:
            stop(serve.proc)
            ctx.close()
        return latencies(sim, path, "lat"), offer


def section_latency(sim: Simulator, p: Profile, rate: float = 1000.0) -> dict[str, Any]:
    variants = [
        ("worker process, poll 0.05 s (default)", "worker_poll_default", lambda: _latency_worker(sim, p, rate, None)),
        ("worker process, poll 0.005 s", "worker_poll_0.005", lambda: _latency_worker(sim, p, rate, 0.005)),
        ("serve: HTTP trigger wakes the worker", "serve", lambda: _latency_serve(sim, p, rate)),
    ]
    out: dict[str, Any] = {"offered_per_second": rate, "target_p99_ms": T_P99_MS, "variants": {}}
    table = new_table(
        f"3. latency, trigger accepted → push accepted at the simulator, {rate:,.0f} events/s for "
        f"{p.latency_seconds:g} s ({load()})",
        "path",
        "events",
        "offered/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "p99 ≤ 20 ms",
        "trigger call p50 / p99 / max",
    )
    for label, key, run in variants:
        try:
            lat, offer = run()
            n = offer.events
        except Exception as exc:  # one path failing must not lose the others
            console.print(f"  [red]{label}: failed:[/red] {exc}")
            out["variants"][key] = {"label": label, "error": str(exc)}
            continue
        if not lat:
            out["variants"][key] = {"label": label, "error": "no event delivered"}
            continue
        fig = {
            "label": label,
            "events": n,
            "measured": len(lat),
            "offered_per_second": round(offer.rate, 1),
            "trigger_calls": offer.calls(),
            "p50_ms": round(pct(lat, 50), 2),
            "p90_ms": round(pct(lat, 90), 2),
            "p99_ms": round(pct(lat, 99), 2),
            "max_ms": round(max(lat), 2),
            "mean_ms": round(statistics.fmean(lat), 2),
            "pass": pct(lat, 99) <= T_P99_MS,
            "load_1min": os.getloadavg()[0],
        }
        out["variants"][key] = fig
        missing = "" if len(lat) == n else f" [red]({n - len(lat)} not delivered)[/red]"
        table.add_row(
            label,
            f"{len(lat):,}{missing}",
            f"{fig['offered_per_second']:,.0f}",
            f"{fig['p50_ms']:.1f}",
            f"{fig['p90_ms']:.1f}",
            f"{fig['p99_ms']:.1f}",
            f"{fig['max_ms']:.1f}",
            pipeline.verdict(fig["pass"]),
            "{p50_ms:.1f} / {p99_ms:.1f} / {max_ms:.0f} ms".format(**offer.calls()),
        )
    console.print(table)
    return out


# -- 4. memory --------------------------------------------------------------------------------


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def memory_child(db_url: str, api_url: str, n: int, chunk: int = 5000) -> None:
    """``--memory-child``: enqueue n events into a fresh database; print one JSON line."""
    from lineoa_export.delivery import triggers

    ctx = setup_db(pipeline.bench_settings(db_url, None, None), api_url)
    base = _rss_mb()
    curve = []
    highest = base
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    accepted = 0
    for i, evs in enumerate(event_chunks(n, "m", chunk)):
        accepted += sum(r.status == "accepted" for r in triggers.accept(ctx.db, ACTIVATION, evs, now=time.time()))
        done = (i + 1) * chunk
        highest = max(highest, _rss_mb())
        if done % max(chunk, n // 10) == 0 or done >= n:
            curve.append([min(done, n), round(_rss_mb(), 1)])
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    ctx.close()
    # VmHWM, not ru_maxrss: on Linux ru_maxrss keeps the high-water mark of the process image
    # before exec, i.e. of the suite that started this child.
    peak = _proc_status_mb(os.getpid(), "VmHWM")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "events": n,
                "accepted": accepted,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "rss_before_mb": round(base, 1),
                "rss_curve_mb": curve,
                "peak_rss_mb": round(peak, 1),
                "highest_sampled_rss_mb": round(highest, 1),
                "ru_maxrss_mb": round(maxrss, 1),
            }
        )
    )


def _proc_status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def section_memory(sim: Simulator, p: Profile) -> dict[str, Any]:
    n = p.memory_events
    with tempfile.TemporaryDirectory(prefix="lineoa-bench-") as tmp:
        path = Path(tmp) / "deep.db"
        db_url = f"sqlite:///{path}"
        done = subprocess.run(
            [sys.executable, __file__, "--memory-child", db_url, sim.url, str(n)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the enqueue process failed: {done.stderr[-2000:]}")
        enq = json.loads(done.stdout.strip().splitlines()[-1])
        db_mb = sum(f.stat().st_size for f in Path(tmp).iterdir() if f.name.startswith("deep.db")) / 2**20
        # A worker against the deep outbox: claims from a million due events, pushes flat out.
        sim.reset()
        t0 = time.perf_counter()
        worker = start_worker(worker_env(db_url, rate_limit=1_000_000))
        ready = time.perf_counter() - t0
        samples = []
        try:
            t1 = time.perf_counter()
            while time.perf_counter() - t1 < p.worker_seconds:
                samples.append(_proc_status_mb(worker.pid, "VmRSS"))
                time.sleep(0.05)
            hwm = _proc_status_mb(worker.pid, "VmHWM")
            delivered = sim.stats()["accepted_pushes"]
            worker_seconds = time.perf_counter() - t1
        finally:
            stop(worker)
    out = {
        "events": n,
        "enqueue_seconds": round(enq["seconds"], 2),
        "enqueue_per_second": round(n / enq["seconds"], 1),
        "enqueue_cpu_us_per_event": round(enq["cpu_seconds"] / n * 1e6, 1),
        "enqueue_rss_before_mb": enq["rss_before_mb"],
        "enqueue_peak_rss_mb": enq["peak_rss_mb"],
        "enqueue_rss_curve_mb": enq["rss_curve_mb"],
        "enqueue_highest_sampled_rss_mb": enq["highest_sampled_rss_mb"],
        "enqueue_ru_maxrss_mb": enq["ru_maxrss_mb"],
        "suite_rss_mb": round(_rss_mb(), 1),
        "database_mb": round(db_mb, 1),
        "worker_start_seconds": round(ready, 2),
        "worker_peak_rss_mb": round(hwm, 1),
        "worker_rss_samples_mb": [round(s, 1) for s in samples[:: max(1, len(samples) // 20)]],
        "worker_seconds": round(worker_seconds, 2),
        "worker_pushes": delivered,
        "worker_pushes_per_second": round(delivered / worker_seconds, 1) if worker_seconds else 0,
        "load_1min": os.getloadavg()[0],
    }
    curve = enq["rss_curve_mb"]
    table = new_table(
        f"4. memory: {n:,} events queued in SQLite (chunks of 5,000) ({load()})", "figure", "value", "target"
    )
    table.add_row(
        "peak RSS of the enqueuing process",
        f"{enq['peak_rss_mb']:.0f} MB",
        f"≤ {T_RSS_MB:.0f} MB {pipeline.verdict(enq['peak_rss_mb'] <= T_RSS_MB)}",
    )
    table.add_row(
        "  RSS before the first event / highest after a chunk / after the last",
        f"{enq['rss_before_mb']:.0f} / {enq['highest_sampled_rss_mb']:.0f} / {curve[-1][1]:.0f} MB",
        "",
    )
    table.add_row("  RSS by events queued", "  ".join(f"{k // 1000:,}k:{v:.0f}" for k, v in curve[1::2]), "MB")
    table.add_row("enqueue time", f"{enq['seconds']:.1f} s", "")
    table.add_row(
        "enqueue rate",
        f"{out['enqueue_per_second']:,.0f} events/s",
        f"({out['enqueue_cpu_us_per_event']:.0f} CPU µs/event)",
    )
    table.add_row("database on disk (+ WAL)", f"{db_mb:,.0f} MB", "")
    table.add_row(
        f"worker against the deep outbox, {worker_seconds:.1f} s: peak RSS",
        f"{hwm:.0f} MB",
        f"≤ {T_RSS_MB:.0f} MB {pipeline.verdict(hwm <= T_RSS_MB)}",
    )
    table.add_row(
        "  worker start-up to ready / pushes meanwhile",
        f"{ready:.2f} s / {delivered:,} ({out['worker_pushes_per_second']:,.0f}/s)",
        "",
    )
    console.print(table)
    return out


# -- 5. start-up ------------------------------------------------------------------------------


def section_startup(p: Profile) -> dict[str, Any]:
    cli = str(Path(sys.executable).with_name("lineoa-export"))
    commands = {
        "lineoa-export --help": [cli, "--help"],
        "python -c 'import linebot.v3.messaging'": [sys.executable, "-c", "import linebot.v3.messaging"],
        "python -c 'pass' (interpreter alone)": [sys.executable, "-c", "pass"],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(p.startup_runs):  # interleaved, so a busy moment hits all three alike
        for label, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
            times[label].append(time.perf_counter() - t0)
    meds = {k: median(v) for k, v in times.items()}
    cli_s, sdk_s = meds["lineoa-export --help"], meds["python -c 'import linebot.v3.messaging'"]
    table = new_table(
        f"5. start-up, median of {p.startup_runs} runs ({load()})", "command", "median s", "min s", "÷ SDK import"
    )
    for label, values in times.items():
        table.add_row(label, f"{meds[label]:.3f}", f"{min(values):.3f}", f"{meds[label] / sdk_s:.2f}")
    console.print(table)
    return {
        "runs": p.startup_runs,
        "median_seconds": {k: round(v, 4) for k, v in meds.items()},
        "all_seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "cli_help_over_sdk_import": round(cli_s / sdk_s, 3),
        "load_1min": os.getloadavg()[0],
    }


# -- 6. HTTP triggers -------------------------------------------------------------------------


@dataclass
class HttpRun:
    """One load run against ``serve``: what the client saw, what the simulator saw, the checks."""

    batch: int
    connections: int
    offered: float | None  # events/s the client paces itself to; None = flat out
    seconds: float  # first request sent → last answer read
    requests: int
    accepted: int  # events answered 202 with status "accepted"
    other: dict[str, int]  # events answered with another status (duplicate, ...)
    errors: list[str]  # non-202 answers / exceptions (first few)
    request_ms: list[float]
    pushes_in_window: int  # simulator acceptances between the first request and the last answer
    backlog_end: int  # queued + retrying + paused in the activation table at the window's end
    backlog_samples: list[tuple[float, int, int]]  # (s since start, events accepted so far, backlog)
    client_cpu: float
    serve_cpu: float
    sim_cpu: float
    drain_seconds: float  # window end → everything delivered (or the bound)
    drained: bool
    table_counts: dict[str, int]
    sim_stats: dict[str, Any]
    check: str

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    @property
    def push_rate(self) -> float:
        return self.pushes_in_window / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        return self.check.startswith("ok")

    def as_json(self) -> dict[str, Any]:
        ms = self.request_ms or [0.0]

        def share(cpu: float) -> float | None:
            return round(cpu / self.seconds, 3) if self.seconds else None

        return {
            "batch": self.batch,
            "connections": self.connections,
            "offered_per_second": self.offered,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "accepted_events": self.accepted,
            "other_statuses": self.other,
            "errors": self.errors,
            "accepted_per_second": round(self.rate, 1),
            "request_p50_ms": round(pct(ms, 50), 2),
            "request_p99_ms": round(pct(ms, 99), 2),
            "request_max_ms": round(max(ms), 2),
            "pushes_in_window": self.pushes_in_window,
            "pushes_per_second": round(self.push_rate, 1),
            "backlog_end": self.backlog_end,
            "backlog_samples": [[round(t, 2), a, b] for t, a, b in self.backlog_samples],
            "client_cpu_share": share(self.client_cpu),
            "serve_cpu_share": share(self.serve_cpu),
            "sim_cpu_share": share(self.sim_cpu),
            "drain_seconds": round(self.drain_seconds, 2),
            "drained": self.drained,
            "table_counts": self.table_counts,
            "sim_accepted_pushes": self.sim_stats.get("accepted_pushes"),
            "sim_max_accepted_per_recipient": self.sim_stats.get("max_accepted_per_recipient"),
            "sim_duplicates_suppressed": self.sim_stats.get("duplicates_suppressed"),
            "check": self.check,
            "pass": self.ok and self.rate >= T_HTTP,
            "load_1min": os.getloadavg()[0],
        }


HTTP_WARM = 20
FINAL = ("delivered", "failed")


def _http_run(
    sim: Simulator, seconds: float, batch: int, connections: int, prefix: str, offered: float | None = None
) -> HttpRun:
    """``connections`` clients post ``batch`` events per request to ``serve`` for ``seconds`` (flat
    out, or paced to ``offered`` events/s), while the worker inside serve delivers them; then wait
    (bounded) until everything is delivered."""
    from lineoa_export import apikeys

    sim.reset()
    with tempfile.TemporaryDirectory(prefix="lineoa-bench-") as tmp:
        path = Path(tmp) / "http.db"
        db_url = f"sqlite:///{path}"
        ctx = setup_db(pipeline.bench_settings(db_url, None, None), sim.url)
        key = apikeys.create(ctx.db, "bench", now=time.time())
        ctx.close()
        # Rate limit out of the way, as many pushes in flight as the other sections' pipeline.
        serve = start_serve(db_url, rate_limit=1_000_000, concurrency=pipeline.BARE_TASKS)
        try:
            return asyncio.run(_http_drive(sim, serve, key, path, seconds, batch, connections, prefix, offered))
        finally:
            stop(serve.proc)


async def _http_drive(
    sim: Simulator,
    serve: Serve,
    key: str,
    db_path: Path,
    seconds: float,
    batch: int,
    connections: int,
    prefix: str,
    offered: float | None,
) -> HttpRun:
    headers = {"Authorization": f"Bearer {key}"}
    post_headers = {**headers, "Content-Type": "application/json"}
    activation_url = f"{serve.base}/v1/activations/{ACTIVATION}"
    trigger_url = activation_url + "/triggers"
    connector = aiohttp.TCPConnector(limit=connections + 1)  # + 1 for the backlog probe
    async with aiohttp.ClientSession(headers=headers, connector=connector) as s:
        await serve.wait_ready(s)

        async def counts() -> dict[str, int]:
            async with s.get(activation_url) as r:
                r.raise_for_status()
                return dict((await r.json())["counts"])

        # Warm-up: channel lookup, connections, serve's code paths; then forgotten at the simulator.
        async with s.post(
            trigger_url,
            data=orjson.dumps({"events": next(event_chunks(HTTP_WARM, "warm", HTTP_WARM))}),
            headers=post_headers,
        ) as r:
            if r.status != 202:
                raise RuntimeError(f"trigger answered {r.status}: {await r.text()}")
        await _wait_sim(sim, HTTP_WARM)
        for _ in range(200):
            if (await counts()).get("delivered", 0) >= HTTP_WARM:
                break
            await asyncio.sleep(0.05)
        await sim._call("POST", "/__sim/reset")

        next_i = 0
        accepted = 0
        requests = 0
        other: dict[str, int] = {}
        errors: list[str] = []
        request_ms: list[float] = []
        samples: list[tuple[float, int, int]] = []

        async def client(t0: float, deadline: float) -> None:
            nonlocal next_i, accepted, requests
            while time.monotonic() < deadline and len(errors) < 5:
                lo = next_i
                next_i += batch
                if offered:  # request k is due at t0 + k × batch / offered; late ones go at once
                    due = t0 + lo / offered
                    if due >= deadline:
                        break
                    if due > time.monotonic():
                        await asyncio.sleep(due - time.monotonic())
                body = orjson.dumps({"events": next(event_chunks(lo + batch, prefix, batch, start=lo))})
                c0 = time.perf_counter()
                try:
                    async with s.post(trigger_url, data=body, headers=post_headers) as r:
                        payload = await r.read()
                        status = r.status
                except aiohttp.ClientError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                request_ms.append((time.perf_counter() - c0) * 1000)
                requests += 1
                if status != 202:
                    errors.append(f"{status}: {payload[:300]!r}")
                    continue
                for state, n in orjson.loads(payload)["counts"].items():
                    if state == "accepted":
                        accepted += n
                    else:
                        other[state] = other.get(state, 0) + n

        async def probe(t0: float, done: asyncio.Event) -> None:
            """Backlog once a second during the window (one cheap GET on serve)."""
            while not done.is_set():
                try:
                    await asyncio.wait_for(done.wait(), 1.0)
                except TimeoutError:
                    c = await counts()
                    samples.append(
                        (time.monotonic() - t0, accepted, sum(n for state, n in c.items() if state not in FINAL))
                    )

        cpu0, serve0, sim0 = time.process_time(), proc_cpu(serve.proc.pid), sim.cpu()
        t0 = time.monotonic()
        done = asyncio.Event()
        prober = asyncio.create_task(probe(t0, done))
        await asyncio.gather(*(client(t0, t0 + seconds) for _ in range(connections)))
        window = time.monotonic() - t0
        pushes = (await sim._call("GET", "/__sim/stats"))["accepted_pushes"]
        client_cpu = time.process_time() - cpu0
        serve_cpu, sim_cpu = proc_cpu(serve.proc.pid) - serve0, sim.cpu() - sim0
        done.set()
        await prober
        end_counts = await counts()
        backlog = sum(n for state, n in end_counts.items() if state not in FINAL)

        # Bounded wait: until every event is final, or no progress for 30 s (or 10 minutes overall).
        t1 = time.monotonic()
        last, last_change = -1, t1
        while True:
            c = await counts()
            final = sum(c.get(state, 0) for state in FINAL)
            if final >= HTTP_WARM + accepted:
                break
            now = time.monotonic()
            if final != last:
                last, last_change = final, now
            if now - last_change > 30 or now - t1 > 600:
                break
            await asyncio.sleep(0.1)
        drain = time.monotonic() - t1
        await _wait_sim(sim, accepted, within=10)  # the simulator may see a push just before the table
        table = await counts()
        stats = await sim._call("GET", "/__sim/stats")

    drained = table.get("delivered", 0) == HTTP_WARM + accepted
    with sqlite3.connect(db_path) as conn:
        attempts_200 = conn.execute(
            "SELECT COUNT(*) FROM attempts a JOIN events e ON e.id = a.event "
            "WHERE e.activation = ? AND a.status_code = 200 AND e.event_id LIKE ?",
            (ACTIVATION, prefix + "-%"),
        ).fetchone()[0]
    good = (
        not errors
        and drained
        and set(table) == {"delivered"}
        and attempts_200 == accepted
        and stats["accepted_pushes"] == accepted
        and stats["max_accepted_per_recipient"] == 1
        and stats["duplicates_suppressed"] == 0
    )
    check = (
        f"{'ok' if good else 'MISMATCH'}: {accepted:,} accepted over HTTP; table {table} "
        f"(incl. {HTTP_WARM} warm-up), {attempts_200:,} attempts with 200; simulator accepted "
        f"{stats['accepted_pushes']:,}, max per recipient {stats['max_accepted_per_recipient']}, "
        f"duplicates {stats['duplicates_suppressed']}" + (f"; errors: {errors[:3]}" if errors else "")
    )
    return HttpRun(
        batch,
        connections,
        offered,
        window,
        requests,
        accepted,
        other,
        errors,
        request_ms,
        pushes,
        backlog,
        samples,
        client_cpu,
        serve_cpu,
        sim_cpu,
        drain,
        drained,
        table,
        stats,
        check,
    )


def section_http(sim: Simulator, p: Profile) -> dict[str, Any]:
    plan = [
        ("flat", HTTP_BATCH, None),
        *(("flat", b, None) for b in HTTP_OTHER_BATCHES),
        ("paced", HTTP_PACED_BATCH, T_HTTP),
    ]
    runs = []
    for mode, batch, offered in plan:
        prefix = f"h{mode[0]}{batch}"
        runs.append(
            (
                f"{batch:,}/request, " + ("flat out" if offered is None else f"paced {offered:,.0f}/s"),
                f"{mode}_{batch}",
                _http_run(sim, p.http_seconds, batch, HTTP_CONNECTIONS, prefix, offered),
            )
        )
    table = new_table(
        f"6. HTTP triggers: POST /v1/activations/{ACTIVATION}/triggers to `lineoa-export serve` "
        f"(worker inside serve delivering, limit off), {HTTP_CONNECTIONS} connections, "
        f"{p.http_seconds:g} s per run ({load()})",
        "run",
        "accepted/s (202)",
        "events",
        "request p50 / p99 / max ms",
        "pushes/s meanwhile",
        "backlog at end",
        "drain",
        "serve / sim / client CPU",
        f"≥ {T_HTTP:,.0f}/s",
        "check",
    )
    out: dict[str, Any] = {"seconds": p.http_seconds, "connections": HTTP_CONNECTIONS, "target": T_HTTP, "runs": {}}
    for label, key, run in runs:
        fig = {"label": label, **run.as_json()}
        out["runs"][key] = fig
        table.add_row(
            label,
            f"{run.rate:,.0f}",
            f"{run.accepted:,}",
            f"{fig['request_p50_ms']:.0f} / {fig['request_p99_ms']:.0f} / {fig['request_max_ms']:.0f}",
            f"{run.push_rate:,.0f}",
            f"{run.backlog_end:,}",
            f"{run.drain_seconds:.1f} s" + ("" if run.drained else " [red](not drained)[/red]"),
            f"{fig['serve_cpu_share']:.0%} / {fig['sim_cpu_share']:.0%} / {fig['client_cpu_share']:.0%}",
            pipeline.verdict(fig["pass"]) if run.offered is None else "(paced)",
            "ok" if run.ok else "[red]MISMATCH[/red]",
        )
    console.print(table)
    for label, _, run in runs:
        trend = "  ".join(f"{t:.0f}s:{a / 1000:,.0f}k/{b:,}" for t, a, b in run.backlog_samples)
        console.print(f"  {label}: accepted so far / backlog, once a second: {trend or '(none)'}")
        console.print(f"  {label}: {run.check if run.ok else '[red]' + run.check + '[/red]'}")
    head = out["runs"][f"flat_{HTTP_BATCH}"]
    paced = out["runs"][f"paced_{HTTP_PACED_BATCH}"]
    out.update(
        accepted_per_second=head["accepted_per_second"],
        pushes_per_second=head["pushes_per_second"],
        backlog_end=head["backlog_end"],
        checks_ok=all(r.ok for _, _, r in runs),
        paced=paced,
    )
    out["pass"] = head["pass"]
    return out


# -- summary ----------------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, target: str, value: float | None, shown: str, ok: bool | None) -> None:
        out.append({"target": name, "goal": target, "value": value, "shown": shown, "pass": ok})

    if t := results.get("throughput"):
        add(
            "full pipeline pushes/s (1 process)",
            f"≥ {T_RATE:,.0f}",
            t["pipeline_per_second"],
            f"{t['pipeline_per_second']:,.0f}",
            t["pipeline_per_second"] >= T_RATE,
        )
        add(
            "full pipeline ÷ bare aiohttp loop",
            f"≥ {T_BARE}",
            t["ratio_to_bare"],
            f"{t['ratio_to_bare']:.3f}",
            t["ratio_to_bare"] >= T_BARE,
        )
        add(
            "full pipeline ÷ line-bot-sdk loop",
            f"≥ {T_SDK}",
            t["ratio_to_sdk"],
            f"{t['ratio_to_sdk']:.3f}",
            t["ratio_to_sdk"] >= T_SDK,
        )
    if r := results.get("rate"):
        add(
            "max pushes in any 1 s window (limit 2,000/s)",
            f"≤ {T_WINDOW:,}",
            r["max_in_any_1s_window"],
            f"{r['max_in_any_1s_window']:,} (achieved {r['achieved_per_second']:,.0f}/s)",
            r["max_in_any_1s_window"] <= T_WINDOW,
        )
    if lat := results.get("latency"):
        for v in lat["variants"].values():
            if "error" in v:
                add(f"latency p99, {v['label']}", f"≤ {T_P99_MS:g} ms", None, v["error"], False)
            else:
                add(
                    f"latency p99, {v['label']}",
                    f"≤ {T_P99_MS:g} ms",
                    v["p99_ms"],
                    f"{v['p99_ms']:.1f} ms (p50 {v['p50_ms']:.1f})",
                    v["pass"],
                )
    if m := results.get("memory"):
        add(
            f"peak RSS, {m['events']:,} events enqueued",
            f"≤ {T_RSS_MB:.0f} MB",
            m["enqueue_peak_rss_mb"],
            f"{m['enqueue_peak_rss_mb']:.0f} MB ({m['enqueue_per_second']:,.0f} events/s)",
            m["enqueue_peak_rss_mb"] <= T_RSS_MB,
        )
        add(
            "peak RSS, worker on that deep outbox",
            f"≤ {T_RSS_MB:.0f} MB",
            m["worker_peak_rss_mb"],
            f"{m['worker_peak_rss_mb']:.0f} MB",
            m["worker_peak_rss_mb"] <= T_RSS_MB,
        )
    if s := results.get("startup"):
        med = s["median_seconds"]
        add(
            "lineoa-export --help vs import linebot.v3.messaging",
            "(no target)",
            s["cli_help_over_sdk_import"],
            f"{med['lineoa-export --help']:.2f} s vs {med[next(k for k in med if 'linebot' in k)]:.2f} s "
            f"(× {s['cli_help_over_sdk_import']:.2f})",
            None,
        )
    if h := results.get("http"):
        add(
            "HTTP triggers accepted/s while delivering",
            f"≥ {T_HTTP:,.0f}",
            h["accepted_per_second"],
            f"{h['accepted_per_second']:,.0f} ({HTTP_BATCH:,}/request, {h['connections']} connections; "
            f"delivered {h['pushes_per_second']:,.0f}/s meanwhile, backlog {h['backlog_end']:,}"
            f"{'' if h['checks_ok'] else '; CHECK FAILED'})",
            h["pass"],
        )
        pc = h["paced"]
        add(
            f"HTTP triggers paced at {T_HTTP:,.0f}/s: delivered meanwhile",
            "(no target)",
            pc["pushes_per_second"],
            f"{pc['pushes_per_second']:,.0f} pushes/s (accepted {pc['accepted_per_second']:,.0f}/s, "
            f"backlog at end {pc['backlog_end']:,}, request p99 {pc['request_p99_ms']:.0f} ms)",
            None,
        )
    return out


def summary(rows: list[dict[str, Any]], quick: bool) -> None:
    table = new_table(f"summary{' (--quick)' if quick else ''} ({load()})", "target", "goal", "measured", "")
    for row in rows:
        mark = "" if row["pass"] is None else pipeline.verdict(row["pass"])
        table.add_row(row["target"], row["goal"], row["shown"], mark)
    console.print(table)


def main() -> None:
    # The simulator listens on loopback: allow its host as an API host (children inherit it).
    os.environ.setdefault("LINEOA_EXPORT_ALLOWED_API_HOSTS", "127.0.0.1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: ~90 s (100,000 queued events)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"report path (default {DEFAULT_JSON})")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--memory-child", nargs=3, metavar=("DB_URL", "API_URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        db_url, api_url, n = args.memory_child
        memory_child(db_url, api_url, int(n))
        return

    prof = QUICK if args.quick else DEFAULT
    wanted = args.only or list(SECTIONS)
    started = time.perf_counter()
    load_start = os.getloadavg()
    console.print(f"lineoa-export benchmark suite{' --quick' if args.quick else ''}: {', '.join(wanted)}; {load()}")
    if busy():
        console.print(
            "[yellow]the machine is busy (1-minute load above 0.75 per CPU): read ratios, not absolute rates[/yellow]"
        )
    results: dict[str, Any] = {}
    section_seconds: dict[str, float] = {}
    sim = Simulator.start()
    try:
        for name in wanted:
            t0 = time.perf_counter()
            if name == "throughput":
                results[name] = section_throughput(sim, prof)
            elif name == "rate":
                results[name] = section_rate(sim, prof)
            elif name == "latency":
                results[name] = section_latency(sim, prof)
            elif name == "memory":
                results[name] = section_memory(sim, prof)
            elif name == "startup":
                results[name] = section_startup(prof)
            elif name == "http":
                results[name] = section_http(sim, prof)
            section_seconds[name] = round(time.perf_counter() - t0, 1)
            console.print(f"  ({name}: {section_seconds[name]:.0f} s)\n")
    finally:
        sim.stop()
    rows = targets(results)
    summary(rows, args.quick)
    total = time.perf_counter() - started
    console.print(
        f"suite took {total:.0f} s; load at start {load_start[0]:.2f}, at end {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    report = {
        "quick": args.quick,
        "profile": prof.__dict__,
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(total, 1),
        "section_seconds": section_seconds,
        "load_at_start": load_start,
        "load_at_end": os.getloadavg(),
        "sections": results,
        "targets": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    console.print(f"JSON report: {args.json}")


if __name__ == "__main__":
    main()
