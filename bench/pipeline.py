"""Pushes/s of the full pipeline next to a bare aiohttp push loop, against one LINE simulator.

    .venv/bin/python bench/pipeline.py [--events N] [--json PATH] [--no-e2e]
                                       [--concurrency C] [--batch-size B] [--sweep]

One run, one simulator (its own process, so it does not share the client's GIL):

* ``bare aiohttp loop``: N pushes from 64 tasks over one ClientSession, nothing else;
  the floor of Python overhead on the client side.
* ``accept (durable)``: N events through ``triggers.accept`` in chunks of 1,000
  (rendered, given a retry key, committed to SQLite).
* ``full pipeline``: ``Worker.run(until_idle=True)`` delivering those N events (claim,
  rate limiter, push, outcome, decision, activation table writes), real clock, rate limit
  out of the way (1e6/s).
* ``end-to-end``: a worker in its own process while this process triggers; from the first
  trigger to the simulator having accepted all N pushes.

Settings come from ``LINEOA_EXPORT_*`` like the product (``--concurrency``/``--batch-size``
override them); ``--sweep`` repeats the full pipeline over a grid of both. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_JSON = HERE / "results" / "pipeline.json"
PUSH_PATH = "/v2/bot/message/push"
TOKEN = "demo-access-token"
SECRET_KEY = "bench-only-passphrase-not-a-real-secret"
BARE_TASKS = 64
CHUNK = 1000
TARGET_RATE = 2000.0
TARGET_RATIO = 0.7
ACTIVATION = "bench"
MESSAGES = [{"type": "text", "text": "Hello {{name}}, this is push {{n}}."}]


def user_id(n: int) -> str:
    return "U" + uuid.uuid5(uuid.NAMESPACE_OID, f"user-{n}").hex


def events(n: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {"event_id": f"{prefix}-{i}", "line_user_id": user_id(i), "name": f"Customer {i}", "n": i} for i in range(n)
    ]


# -- the simulator, in its own process ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used, from /proc; 0.0 if unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


class Simulator:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    @classmethod
    def start(cls, timeout: float = 30.0) -> Simulator:
        port = free_port()
        errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives as long as the simulator; a file, not a pipe
        proc = subprocess.Popen(
            [sys.executable, "-m", "lineoa_export", "simulator", "--port", str(port), "--rate-limit", "1000000"],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=ROOT,
        )
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline().strip()
            if line.startswith("http"):
                return cls(proc, line)
            if proc.poll() is not None:
                break
        proc.kill()
        errors.seek(0)
        err = errors.read()
        raise RuntimeError(f"the simulator did not start (last line {line!r}): {err[-2000:]}")

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def stats(self) -> dict[str, Any]:
        return asyncio.run(self._call("GET", "/__sim/stats"))

    def reset(self) -> None:
        asyncio.run(self._call("POST", "/__sim/reset"))

    async def _call(self, method: str, path: str) -> Any:
        async with aiohttp.ClientSession() as s, s.request(method, self.url + path) as r:
            r.raise_for_status()
            return await r.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    pushes: int
    seconds: float
    cpu_seconds: float  # CPU of the client side (this process, or the worker process)
    sim_cpu_seconds: float  # CPU the simulator used meanwhile (≈ seconds means it was the bottleneck)
    unit: str = "pushes"
    settings: dict[str, Any] = field(default_factory=dict)
    verified: str = ""

    @property
    def rate(self) -> float:
        return self.pushes / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_push(self) -> float:
        return self.cpu_seconds / self.pushes * 1e6 if self.pushes else 0.0

    def as_json(self, bare_rate: float | None) -> dict[str, Any]:
        out = asdict(self)
        out["per_second"] = round(self.rate, 1)
        out["cpu_us_per_push"] = round(self.cpu_us_per_push, 1)
        out["client_cpu_share"] = round(self.cpu_seconds / self.seconds, 3) if self.seconds else None
        out["sim_cpu_share"] = round(self.sim_cpu_seconds / self.seconds, 3) if self.seconds else None
        out["ratio_to_bare"] = round(self.rate / bare_rate, 3) if bare_rate and self.unit == "pushes" else None
        return out


class Clocks:
    """Wall, client CPU and simulator CPU, started together."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.cpu0 = time.process_time()
        self.sim0 = sim.cpu()
        self.t0 = time.perf_counter()

    def stop(self) -> tuple[float, float, float]:
        wall = time.perf_counter() - self.t0
        return wall, time.process_time() - self.cpu0, self.sim.cpu() - self.sim0


async def bare_loop(url: str, n: int, tasks: int = BARE_TASKS) -> int:
    """n pushes, ``tasks`` at a time, over one session; returns how many got a 200."""
    push_url = url + PUSH_PATH
    ok = 0
    next_i = 0
    connector = aiohttp.TCPConnector(limit=tasks)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_task() -> None:
            nonlocal ok, next_i
            while next_i < n:
                i = next_i
                next_i += 1
                body = orjson.dumps({"to": user_id(i), "messages": [{"type": "text", "text": f"Hello {i}"}]})
                headers = {
                    "Authorization": "Bearer " + TOKEN,
                    "Content-Type": "application/json",
                    "X-Line-Retry-Key": str(uuid.uuid4()),
                }
                async with session.post(push_url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok += resp.status == 200

        await asyncio.gather(*(one_task() for _ in range(tasks)))
    return ok


def measure_push_loop(sim: Simulator, n: int, scenario: str, loop: Any, settings: dict[str, Any]) -> Row:
    """Time ``loop(url, n)`` (a plain client loop that returns its 200s) and check the simulator agrees."""
    sim.reset()
    clocks = Clocks(sim)
    ok = asyncio.run(loop(sim.url, n))
    wall, cpu, sim_cpu = clocks.stop()
    accepted = sim.stats()["accepted_pushes"]
    check = "ok" if ok == n and accepted == n else "MISMATCH"
    return Row(
        scenario,
        n,
        wall,
        cpu,
        sim_cpu,
        settings=settings,
        verified=f"{check}: {ok} answered 200, simulator accepted {accepted}",
    )


def measure_bare(sim: Simulator, n: int) -> Row:
    return measure_push_loop(sim, n, "bare aiohttp loop", bare_loop, {"tasks": BARE_TASKS})


def bench_settings(db_url: str, concurrency: int | None, batch_size: int | None) -> Any:
    from lineoa_export.settings import Settings

    if concurrency is None and "LINEOA_EXPORT_CONCURRENCY" not in os.environ:
        # Like with like: as many pushes in flight as the bare loop has tasks. (The product's
        # default, 128, is sized for LINE's real round trips, not for a loopback simulator.)
        concurrency = BARE_TASKS
    return Settings.from_env(
        database_url=db_url, secret_key=SECRET_KEY, rate_limit=1e6, concurrency=concurrency, batch_size=batch_size
    )


def setup_db(settings: Any, api_url: str) -> Any:
    from lineoa_export import activations, authentications
    from lineoa_export.context import open_context

    ctx = open_context(settings)
    now = time.time()
    creds = authentications.Credentials.from_options(TOKEN, None, None)
    authentications.create(ctx.db, ctx.vault, name="bench-line", credentials=creds, api_url=api_url, now=now)
    spec = activations.parse_spec(
        {"name": ACTIVATION, "authentication": "bench-line", "recipient": "{{line_user_id}}", "messages": MESSAGES}
    )
    activations.create(ctx.db, spec, now=now)
    return ctx


def accept_all(ctx: Any, evs: list[dict[str, Any]]) -> int:
    from lineoa_export.delivery import triggers

    accepted = 0
    for i in range(0, len(evs), CHUNK):
        results = triggers.accept(ctx.db, ACTIVATION, evs[i : i + CHUNK], now=time.time())
        accepted += sum(r.status == "accepted" for r in results)
    return accepted


def verify_table(ctx: Any, sim: Simulator, n: int) -> str:
    """All n delivered in the activation table, one 200 attempt each, and n accepted at the simulator."""
    from lineoa_export import activations

    counts = activations.counts(ctx.db, ACTIVATION)
    path = ctx.settings.sqlite_path()
    with sqlite3.connect(path) as conn:
        attempts_200 = conn.execute(
            "SELECT COUNT(*) FROM attempts a JOIN events e ON e.id = a.event "
            "WHERE e.activation = ? AND a.status_code = 200",
            (ACTIVATION,),
        ).fetchone()[0]
    stats = sim.stats()
    good = (
        counts.get("delivered") == n
        and len(counts) == 1
        and attempts_200 == n
        and stats["accepted_pushes"] == n
        and stats["duplicates_suppressed"] == 0
    )
    return (
        f"{'ok' if good else 'MISMATCH'}: table {dict(counts)}, {attempts_200} attempts with 200; "
        f"simulator accepted {stats['accepted_pushes']}, duplicates {stats['duplicates_suppressed']}"
    )


def measure_pipeline(
    sim: Simulator, n: int, concurrency: int | None, batch_size: int | None, *, profile: str | None = None
) -> tuple[Row, Row]:
    from lineoa_export.delivery.worker import Worker

    sim.reset()
    with tempfile.TemporaryDirectory(prefix="lineoa-bench-") as tmp:
        settings = bench_settings(f"sqlite:///{Path(tmp) / 'bench.db'}", concurrency, batch_size)
        knobs = {
            "concurrency": settings.concurrency,
            "batch_size": settings.batch_size,
            "rate_limit": settings.rate_limit,
        }
        ctx = setup_db(settings, sim.url)
        try:
            evs = events(n, "p")
            clocks = Clocks(sim)
            accepted = accept_all(ctx, evs)
            wall, cpu, sim_cpu = clocks.stop()
            accept_row = Row(
                "accept (durable)",
                n,
                wall,
                cpu,
                sim_cpu,
                unit="events",
                settings={"chunk": CHUNK},
                verified=f"{'ok' if accepted == n else 'MISMATCH'}: {accepted} accepted",
            )

            async def deliver() -> Any:
                return await Worker(ctx.db, ctx.vault, settings).run(until_idle=True)

            clocks = Clocks(sim)
            if profile:
                import cProfile

                prof = cProfile.Profile()
                stats = prof.runcall(asyncio.run, deliver())
                prof.dump_stats(profile)
            else:
                stats = asyncio.run(deliver())
            wall, cpu, sim_cpu = clocks.stop()
            verified = verify_table(ctx, sim, n) + f"; worker attempts {stats.attempts}"
            row = Row("full pipeline (outbox + table)", n, wall, cpu, sim_cpu, settings=knobs, verified=verified)
        finally:
            ctx.close()
    return accept_row, row


def measure_e2e(sim: Simulator, n: int, concurrency: int | None, batch_size: int | None) -> Row:
    """A worker process runs while this process triggers; until the simulator has all n."""
    sim.reset()
    with tempfile.TemporaryDirectory(prefix="lineoa-bench-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = bench_settings(db_url, concurrency, batch_size)
        ctx = setup_db(settings, sim.url)
        try:
            env = {
                **os.environ,
                "LINEOA_EXPORT_DATABASE_URL": db_url,
                "LINEOA_EXPORT_SECRET_KEY": SECRET_KEY,
                "LINEOA_EXPORT_RATE_LIMIT": "1000000",
                "LINEOA_EXPORT_CONCURRENCY": str(settings.concurrency),
                "LINEOA_EXPORT_BATCH_SIZE": str(settings.batch_size),
            }
            worker = subprocess.Popen(
                [sys.executable, __file__, "--worker-child"], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
            )
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError("the worker process did not start")
            evs = events(n, "e")
            sim0, worker0, t0 = sim.cpu(), proc_cpu(worker.pid), time.perf_counter()
            cpu0 = time.process_time()
            accept_all(ctx, evs)
            trigger_cpu = time.process_time() - cpu0
            deadline = time.monotonic() + 300
            while sim.stats()["accepted_pushes"] < n and time.monotonic() < deadline:
                time.sleep(0.02)
            wall = time.perf_counter() - t0
            worker_cpu, sim_cpu = proc_cpu(worker.pid) - worker0, sim.cpu() - sim0
            # Let the last outcomes reach the table, then drain the worker.
            deadline = time.monotonic() + 30
            from lineoa_export import activations

            while activations.counts(ctx.db, ACTIVATION).get("delivered", 0) < n and time.monotonic() < deadline:
                time.sleep(0.02)
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            verified = verify_table(ctx, sim, n) + f"; trigger CPU {trigger_cpu:.2f} s in this process"
            return Row(
                "end-to-end (trigger ∥ worker process)",
                n,
                wall,
                worker_cpu,
                sim_cpu,
                settings={"concurrency": settings.concurrency, "batch_size": settings.batch_size},
                verified=verified,
            )
        finally:
            ctx.close()


def worker_child() -> None:
    """``--worker-child``: a plain Worker on LINEOA_EXPORT_* settings until SIGTERM."""
    from lineoa_export.context import open_context
    from lineoa_export.delivery.worker import Worker

    ctx = open_context()

    async def run() -> None:
        worker = Worker(ctx.db, ctx.vault, ctx.settings)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.stop)
        print("ready", flush=True)
        await worker.run(until_idle=False)

    try:
        asyncio.run(run())
    finally:
        ctx.close()


# -- report -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "aiohttp": aiohttp.__version__,
    }


def verdict(ok: bool) -> str:
    return "[green]PASS[/green]" if ok else "[red]MISS[/red]"


SHORT = {"concurrency": "c", "batch_size": "b", "tasks": "tasks", "chunk": "chunk"}


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass
class Scenario:
    """One scenario's runs: one per round, each paired with the bare loop of its round."""

    runs: list[tuple[Row, Row]] = field(default_factory=list)  # (row, bare row of the same round)

    @property
    def typical(self) -> Row:
        """The run with the median rate (the lower middle one for an even count)."""
        ordered = sorted((r for r, _ in self.runs), key=lambda r: r.rate)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def rate(self) -> float:
        return median([r.rate for r, _ in self.runs])

    @property
    def ratio(self) -> float:
        """Median over rounds of rate / that round's bare-loop rate (pairs runs close in time)."""
        return median([r.rate / b.rate for r, b in self.runs])

    @property
    def cpu_us(self) -> float:
        return median([r.cpu_us_per_push for r, _ in self.runs])

    @property
    def cpu_ratio(self) -> float:
        """Bare-loop CPU per push / this CPU per push: the ratio if both were CPU-bound."""
        return median([b.cpu_us_per_push / r.cpu_us_per_push for r, b in self.runs])

    def share(self, attr: str) -> float:
        return median([getattr(r, attr) / r.seconds for r, _ in self.runs])


def report(scenarios: dict[str, Scenario], n: int, rounds: int, json_path: Path) -> bool:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 140))
    table = Table(
        title=f"lineoa-export pipeline benchmark: {n} events per run, median of {rounds} round(s), "
        "simulator in its own process"
    )
    for col, justify in (
        ("scenario", "left"),
        ("settings", "left"),
        ("pushes", "right"),
        ("seconds", "right"),
        ("per second", "right"),
        ("ratio to bare", "right"),
        ("CPU µs/push", "right"),
        ("CPU ratio", "right"),
        ("client CPU", "right"),
        ("sim CPU", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for sc in scenarios.values():
        r = sc.typical
        pushes = r.unit == "pushes"
        table.add_row(
            r.scenario,
            " ".join(f"{SHORT.get(k, k)}={v:g}" for k, v in r.settings.items() if k != "rate_limit"),
            f"{r.pushes}" + ("" if pushes else " events"),
            f"{r.seconds:.2f}",
            f"{sc.rate:,.0f} {r.unit}/s",
            f"{sc.ratio:.2f}" if pushes else "",
            f"{sc.cpu_us:.0f}",
            f"{sc.cpu_ratio:.2f}" if pushes else "",
            f"{sc.share('cpu_seconds'):.0%}",
            f"{sc.share('sim_cpu_seconds'):.0%}",
        )
    console.print(table)
    bare, pipe = scenarios["bare"], scenarios["pipeline"]
    rate_ok, ratio_ok = pipe.rate >= TARGET_RATE, pipe.ratio >= TARGET_RATIO
    console.print(
        f"target ≥ {TARGET_RATE:,.0f} pushes/s (full pipeline, 1 process): {pipe.rate:,.0f} {verdict(rate_ok)}"
    )
    console.print(
        f"target ≥ {TARGET_RATIO} × bare loop (full pipeline): {pipe.ratio:.2f} {verdict(ratio_ok)}"
        f"  (CPU ratio {pipe.cpu_ratio:.2f})"
    )
    if bare.share("cpu_seconds") < 0.85:
        console.print(
            f"[yellow]warning:[/yellow] the bare loop used only {bare.share('cpu_seconds'):.0%} of a core: "
            "the machine is busy with something else, absolute rates are unreliable; trust the CPU ratio"
        )
    all_ok = True
    for key, sc in scenarios.items():
        for i, (r, _) in enumerate(sc.runs):
            good = r.verified.startswith("ok")
            all_ok &= good
            if not good or i == 0:
                console.print(f"  check {key} (round {i + 1}): {r.verified}")
    console.print("all checks ok" if all_ok else "[red]SOME CHECKS FAILED[/red]")
    out = {
        "events": n,
        "rounds": rounds,
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "scenarios": {
            key: {
                "scenario": sc.typical.scenario,
                "settings": sc.typical.settings,
                "per_second": round(sc.rate, 1),
                "ratio_to_bare": round(sc.ratio, 3) if sc.typical.unit == "pushes" else None,
                "cpu_us_per_push": round(sc.cpu_us, 1),
                "cpu_ratio_to_bare": round(sc.cpu_ratio, 3) if sc.typical.unit == "pushes" else None,
                "runs": [r.as_json(b.rate) for r, b in sc.runs],
            }
            for key, sc in scenarios.items()
        },
        "targets": {
            "pushes_per_second": {"target": TARGET_RATE, "value": round(pipe.rate, 1), "pass": rate_ok},
            "ratio_to_bare": {"target": TARGET_RATIO, "value": round(pipe.ratio, 3), "pass": ratio_ok},
        },
        "checks_ok": all_ok,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    console.print(f"JSON report: {json_path}")
    return all_ok


def main() -> None:
    # The simulator listens on loopback: allow its host as an API host (children inherit it).
    os.environ.setdefault("LINEOA_EXPORT_ALLOWED_API_HOSTS", "127.0.0.1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000, help="pushes per scenario run (default 20000)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"report path (default {DEFAULT_JSON})")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of bare loop, pipeline (and end-to-end), interleaved; medians (default 3)",
    )
    parser.add_argument("--concurrency", type=int, help="worker concurrency (default: LINEOA_EXPORT_CONCURRENCY)")
    parser.add_argument("--batch-size", type=int, help="worker batch size (default: LINEOA_EXPORT_BATCH_SIZE)")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end scenario")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also run the full pipeline for concurrency 32/64/128 × batch size 100/200/500 "
        "(each paired with a bare-loop run)",
    )
    parser.add_argument("--profile", metavar="PATH", help="cProfile the full pipeline's worker run into PATH")
    parser.add_argument("--worker-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_child:
        worker_child()
        return

    n, c, b = args.events, args.concurrency, args.batch_size
    scenarios: dict[str, Scenario] = {k: Scenario() for k in ("bare", "accept", "pipeline")}
    if not args.no_e2e:
        scenarios["e2e"] = Scenario()
    sim = Simulator.start()
    try:
        asyncio.run(bare_loop(sim.url, min(n, 2000)))  # warm-up: connections, simulator code paths
        for i in range(args.rounds):
            bare = measure_bare(sim, n)
            scenarios["bare"].runs.append((bare, bare))
            accept_row, pipe = measure_pipeline(sim, n, c, b, profile=args.profile if i == 0 else None)
            scenarios["accept"].runs.append((accept_row, bare))
            scenarios["pipeline"].runs.append((pipe, bare))
            if not args.no_e2e:
                scenarios["e2e"].runs.append((measure_e2e(sim, n, c, b), bare))
        if args.sweep:
            for sc in (32, 64, 128):
                for sb in (100, 200, 500):
                    bare = measure_bare(sim, n)
                    scenarios[f"sweep c={sc} b={sb}"] = Scenario([(measure_pipeline(sim, n, sc, sb)[1], bare)])
        ok = report(scenarios, n, args.rounds, args.json)
    finally:
        sim.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS of this process: {rss / 1024:.0f} MB")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
