"""``lineoa-export serve`` and the simulator as real processes, driven over HTTP (issue 3, "Done when").

create auth → create activation → validate → preview → trigger a batch → read the log → replay,
then what the simulator received; then SIGTERM while pushes are in flight: serve exits 0, and
every accepted event is either recorded as delivered or failed, or back in the queue with its
retry key and no lease, so a later worker delivers it exactly once.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
from cli_support import DEMO_TOKEN, Cli, Simulator, describe, free_port, new_user

SERVE_START_TIMEOUT = 20.0
SETTLE_TIMEOUT = 15.0


class Serve:
    """A ``lineoa-export serve`` process on a free port, with an API key made by the CLI."""

    def __init__(self, cli: Cli, *args: str) -> None:
        created = cli.ok("apikey", "create", "e2e")
        self.key = created.stdout.strip()
        assert self.key.startswith("lxk_"), describe(created)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cli.directory / "serve.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lineoa_export", "serve", "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=cli.env,
            cwd=cli.directory,
        )
        deadline = time.monotonic() + SERVE_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited {self.process.returncode}:\n{self.output()}")
            try:
                if self.call("GET", "/healthz", auth=False)[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"serve did not start:\n{self.output()}")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        return status, (json.loads(raw) if raw and "json" in kind else raw.decode())

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, answer = self.call(method, path, body)
        assert got == status, f"{method} {path}: {got} {answer}"
        return answer

    def terminate(self, timeout: float) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log.close()


@pytest.fixture
def serve(cli: Cli) -> Iterator[Serve]:
    # Short LINE timeouts keep leases short (3 x timeout + 5 s), so a lease left behind ends soon.
    cli.env["LINEOA_EXPORT_TIMEOUT"] = "1"
    server = Serve(cli)
    try:
        yield server
    finally:
        server.stop()


def wait_until_settled(serve: Serve, activation: str) -> list[dict[str, Any]]:
    """Poll the log until nothing is queued or retrying; returns the whole log."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        pending = [
            serve.ok("GET", f"/v1/activations/{activation}/log?state={state}&limit=1")["events"]
            for state in ("queued", "retrying")
        ]
        if not any(pending):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"events still pending after {SETTLE_TIMEOUT} s")
    entries: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = serve.ok("GET", f"/v1/activations/{activation}/log?limit=1000{cursor}")
        entries += page["events"]
        if page["next_cursor"] is None:
            return entries
        cursor = f"&cursor={page['next_cursor']}"


def db_events(cli: Cli) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(cli.db_path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT event_id, state, retry_key, leased_by, recipient FROM events")]


def test_full_flow_over_http_then_graceful_shutdown(cli: Cli, sim: Simulator, serve: Serve) -> None:
    started = time.monotonic()

    # Authentication, tested against the simulator; the token never comes back.
    auth = serve.ok(
        "POST", "/v1/authentications", {"name": "line", "access_token": DEMO_TOKEN, "api_url": sim.url}, status=201
    )
    assert auth["bot_user_id"]
    assert DEMO_TOKEN not in json.dumps(auth)

    activation = serve.ok(
        "POST",
        "/v1/activations",
        {
            "name": "welcome",
            "authentication": "line",
            "recipient": "{{line_user_id}}",
            "messages": [{"type": "text", "text": "Hello {{name}}"}],
            "initial_retry_delay": 0.2,
            "retry_delay_multiple": 2,
        },
        status=201,
    )
    assert activation["max_retries"] == 3

    sample = {"line_user_id": new_user(), "name": "Ann"}
    assert serve.ok("POST", "/v1/activations/welcome/validate", {"event": sample}) == {
        "valid": True,
        "checked": ["local", "line"],
    }
    preview = serve.ok("POST", "/v1/activations/welcome/preview", {"event": sample})
    assert preview["request"]["url"] == sim.url + "/v2/bot/message/push"
    assert preview["request"]["body"] == {
        "to": sample["line_user_id"],
        "messages": [{"type": "text", "text": "Hello Ann"}],
        "customAggregationUnits": ["welcome"],
    }
    assert sim.stats()["accepted_pushes"] == 0  # validate and preview send nothing

    # A batch of 200: one recipient refused (400), one answered 503 twice before LINE takes it.
    users = [new_user() for _ in range(200)]
    refused, flaky = users[0], users[1]
    sim.patch({"script": {refused: [400], flaky: [503, 503]}})
    events = [{"line_user_id": u, "name": f"n{i}", "event_id": f"e{i}"} for i, u in enumerate(users)]
    accepted = serve.ok("POST", "/v1/activations/welcome/triggers", {"events": events}, status=202)
    assert accepted["counts"] == {"accepted": 200}
    again = serve.ok("POST", "/v1/activations/welcome/triggers", {"events": events[:10]}, status=202)
    assert again["counts"] == {"duplicate": 10}

    entries = wait_until_settled(serve, "welcome")
    assert len(entries) == 200
    by_id = {e["event_id"]: e for e in entries}
    assert (by_id["e0"]["state"], by_id["e0"]["status_code"]) == ("failed", 400)
    assert by_id["e1"]["state"] == "delivered"
    assert [a["status_code"] for a in serve.ok("GET", "/v1/activations/welcome/events/e1")["attempt_log"]] == [
        503,
        503,
        200,
    ]
    assert sum(e["state"] == "delivered" for e in entries) == 199
    csv_text = serve.call("GET", "/v1/activations/welcome/log?format=csv&state=failed")[1]
    assert csv_text.splitlines()[1].startswith("e0,")

    # LINE would now take the refused push: replay it, same retry key.
    sim.patch({"script": {refused: None}})
    assert serve.ok("POST", "/v1/activations/welcome/replay", {"event_ids": ["e0"]}) == {
        "replayed": ["e0"],
        "not_replayable": [],
    }
    entries = wait_until_settled(serve, "welcome")
    replayed = serve.ok("GET", "/v1/activations/welcome/events/e0")
    assert replayed["state"] == "delivered"
    assert replayed["retry_key"] == by_id["e0"]["retry_key"]
    assert all(e["state"] == "delivered" for e in entries)

    stats = sim.stats()
    assert stats["accepted_pushes"] == 200
    assert stats["max_accepted_per_recipient"] == 1
    assert set(stats["accepted_per_recipient"]) == set(users)
    metrics = serve.call("GET", "/metrics")[1]
    assert 'lineoa_export_events_delivered_total{activation="welcome"} 200.0' in metrics
    assert 'lineoa_export_events_accepted_total{activation="welcome",status="accepted"} 200.0' in metrics

    # SIGTERM with pushes in flight: serve drains and exits 0.
    sim.patch({"latency_ms": 150})
    late_users = [new_user() for _ in range(300)]
    late = [{"line_user_id": u, "name": "x", "event_id": f"late{i}"} for i, u in enumerate(late_users)]
    assert serve.ok("POST", "/v1/activations/welcome/triggers", {"events": late}, status=202)["counts"] == {
        "accepted": 300
    }
    time.sleep(0.1)
    assert serve.terminate(timeout=10) == 0, serve.output()
    assert "stopped: worker drained" in serve.output()

    # Nothing accepted is lost: every event is settled or back in line, key intact, and nothing is
    # recorded as delivered that LINE did not accept.
    stored = db_events(cli)
    assert len(stored) == 500
    assert {e["state"] for e in stored} <= {"delivered", "queued", "retrying"}
    accepted_keys = {p["retry_key"] for p in sim.accepted()}
    delivered_keys = {e["retry_key"] for e in stored if e["state"] == "delivered"}
    assert delivered_keys <= accepted_keys
    # The drain also guarantees: no lease left behind, and every push LINE accepted recorded.
    leases_left = [e["event_id"] for e in stored if e["state"] != "delivered" and e["leased_by"] is not None]
    unrecorded = accepted_keys - delivered_keys

    # A worker run afterwards delivers the rest, each exactly once (the retry key makes LINE answer
    # 409 to a push it had already accepted, which counts as delivered).
    cli.ok("worker", "--until-idle")
    stored = db_events(cli)
    assert all(e["state"] == "delivered" for e in stored)
    stats = sim.stats()
    assert stats["accepted_pushes"] == 500
    assert stats["max_accepted_per_recipient"] == 1
    assert time.monotonic() - started < 30
    assert not leases_left, f"{len(leases_left)} events still leased by the stopped worker"
    assert not unrecorded, f"{len(unrecorded)} pushes LINE accepted were not recorded before exit"
    assert stats["duplicates_suppressed"] == 0


def test_an_api_only_node_stores_triggers_and_a_worker_elsewhere_delivers_them(cli: Cli, sim: Simulator) -> None:
    """serve --no-worker (API nodes) beside `worker --concurrency N` processes, as on several machines."""
    server = Serve(cli, "--no-worker")
    try:
        server.ok(
            "POST", "/v1/authentications", {"name": "line", "access_token": DEMO_TOKEN, "api_url": sim.url}, status=201
        )
        server.ok(
            "POST",
            "/v1/activations",
            {"name": "w", "authentication": "line", "recipient": "{{u}}", "messages": [{"type": "text", "text": "hi"}]},
            status=201,
        )
        events = [{"u": new_user(), "event_id": f"e{i}"} for i in range(30)]
        assert server.ok("POST", "/v1/activations/w/triggers", {"events": events}, status=202)["counts"] == {
            "accepted": 30
        }
        metrics = server.call("GET", "/metrics")[1]
        assert "lineoa_export_lane_in_flight" not in metrics  # no worker in this process
        assert {e["state"] for e in db_events(cli)} == {"queued"}
        assert sim.stats()["accepted_pushes"] == 0
    finally:
        assert server.terminate(timeout=10) == 0
        server.stop()
    refused = cli("worker", "--until-idle", "--concurrency", "0")
    assert refused.returncode != 0 and "concurrency" in refused.stderr.lower(), describe(refused)
    cli.ok("worker", "--until-idle", "--concurrency", "4")
    assert {e["state"] for e in db_events(cli)} == {"delivered"}
    assert sim.stats()["accepted_pushes"] == 30


def test_metrics_show_each_lane_of_the_worker(cli: Cli, sim: Simulator, serve: Serve) -> None:
    serve.ok(
        "POST", "/v1/authentications", {"name": "line", "access_token": DEMO_TOKEN, "api_url": sim.url}, status=201
    )
    serve.ok(
        "POST",
        "/v1/activations",
        {"name": "m", "authentication": "line", "recipient": "{{u}}", "messages": [{"type": "text", "text": "hi"}]},
        status=201,
    )
    serve.ok("POST", "/v1/activations/m/triggers", {"events": [{"u": new_user()}]}, status=202)
    wait_until_settled(serve, "m")
    metrics = serve.call("GET", "/metrics")[1]
    channel = db_channel_key(cli)
    for name in ("lane_in_flight", "lane_budget", "lane_latency_seconds", "channel_tripped"):
        assert f'lineoa_export_{name}{{channel="{channel}"}}' in metrics, name
    assert f'lineoa_export_channel_tripped{{channel="{channel}"}} 0.0' in metrics


def db_channel_key(cli: Cli) -> str:
    with closing(sqlite3.connect(cli.db_path)) as conn:
        return str(conn.execute("SELECT channel_key FROM authentications").fetchone()[0])
