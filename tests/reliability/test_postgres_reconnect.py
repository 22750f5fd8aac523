"""A dropped PostgreSQL connection (restart, failover, idle timeout): everything reconnects by itself.

A small TCP proxy stands between lineoa-export and the real PostgreSQL server. ``cut()`` closes
every connection through it and refuses new ones (what clients see when the server restarts or
a network path dies); ``restore()`` lets connections through again. Nothing is restarted by hand:
the store, then a real ``lineoa-export serve`` process (API, /readyz and its worker) must come
back on their own, and every event accepted is delivered exactly once.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_support import DEMO_TOKEN, Cli, Simulator, free_port, new_user

from lineoa_export import testing
from lineoa_export.errors import DatabaseUnavailable
from lineoa_export.store.database import open_database
from lineoa_export.testing import SIMULATOR_HOST

pytestmark = pytest.mark.postgres

POSTGRES = ("127.0.0.1", 5432)
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
WAIT = 30.0  # seconds: the most any recovery below may take (they take about one second)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL on threads; can cut and restore the path."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut:
                    client.close()  # the server is "down": connection refused, as it were
                    continue
                upstream = socket.create_connection(self._upstream)
                self._open |= {client, upstream}
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for sock in (source, target):
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            dropped = list(self._open)
        for sock in dropped:
            self._close(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def stop(self) -> None:
        self._stopped = True
        self.cut()
        self._listener.close()


@pytest.fixture
def schema() -> Iterator[str]:
    name = "test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    p = TcpProxy(POSTGRES)
    try:
        yield p
    finally:
        p.stop()


def url_through(proxy: TcpProxy, schema: str, password: str = "") -> str:
    user = f"postgres:{password}" if password else "postgres"
    return f"postgresql://{user}@127.0.0.1:{proxy.port}/test?options=-csearch_path%3D{schema}"


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> float:
    """:func:`lineoa_export.testing.wait_until` with this file's default patience."""
    return testing.wait_until(predicate, what, timeout)


# -- the store -----------------------------------------------------------------------------------


def test_the_store_replaces_connections_lost_on_every_thread(proxy: TcpProxy, schema: str) -> None:
    db = open_database(url_through(proxy, schema))
    try:
        worker_thread = _ThreadCaller()
        assert db.run("apikey_list") == [] and worker_thread.call(lambda: db.run("apikey_list")) == []

        proxy.cut()
        with pytest.raises(DatabaseUnavailable):
            db.run("apikey_list")
        assert db.ping() is False

        proxy.restore()
        assert db.ping() is True
        # The other thread's connection died too without knowing it: it is replaced before use.
        assert worker_thread.call(lambda: db.run("apikey_list")) == []
        with db.transaction() as tx:
            tx.run("apikey_insert", {"name": "k", "key_hash": "h", "now": 1.0, "role": "read"})
        assert [row["name"] for row in db.run("apikey_list")] == ["k"]
        worker_thread.stop()
    finally:
        db.close()


def test_a_connection_lost_while_idle_does_not_fail_the_readiness_check(proxy: TcpProxy, schema: str) -> None:
    db = open_database(url_through(proxy, schema))
    try:
        assert db.ping()
        proxy.cut()
        proxy.restore()  # a blip nobody saw: the connection is dead, the server is back
        assert db.ping() is True
    finally:
        db.close()


def test_messages_about_the_database_never_show_its_password(proxy: TcpProxy, schema: str) -> None:
    proxy.cut()
    with pytest.raises(DatabaseUnavailable) as refused:
        open_database(url_through(proxy, schema, password="S3cret-pw"))
    assert "S3cret-pw" not in str(refused.value)
    assert f"postgresql://postgres:***@127.0.0.1:{proxy.port}/test" in str(refused.value)
    assert "\n" not in str(refused.value)


class _ThreadCaller:
    """One long-lived thread (as the API's and the worker's database threads are)."""

    def __init__(self) -> None:
        self._calls: list[tuple[Callable[[], Any], list[Any], threading.Event]] = []
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: bool(self._calls))
                fn, result, done = self._calls.pop(0)
            if fn is None:
                return
            try:
                result.append(fn())
            except BaseException as exc:
                result.append(exc)
            done.set()

    def call(self, fn: Callable[[], Any]) -> Any:
        result: list[Any] = []
        done = threading.Event()
        with self._ready:
            self._calls.append((fn, result, done))
            self._ready.notify()
        assert done.wait(WAIT)
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    def stop(self) -> None:
        with self._ready:
            self._calls.append((None, [], threading.Event()))  # type: ignore[arg-type]
            self._ready.notify()
        self._thread.join(WAIT)


# -- serve: API, /readyz and worker ----------------------------------------------------------------


class Serve:
    def __init__(self, directory: Path, env: dict[str, str], key: str) -> None:
        self.key, self.port = key, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "serve.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lineoa_export", "serve", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=directory,
            )  # fmt: skip
        wait_until(lambda: self._answers("/healthz"), "serve answers /healthz")

    def _answers(self, path: str) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"serve exited {self.process.returncode}:\n{self.log_path.read_text()}")
        with contextlib.suppress(OSError):
            return self.call("GET", path)[0] == 200
        return False

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def trigger(self, users: list[str], first: int) -> tuple[int, Any]:
        events = [{"uid": u, "name": "Ann", "points": 1, "event_id": f"e{first + i}"} for i, u in enumerate(users)]
        return self.call("POST", "/v1/activations/welcome/triggers", {"events": events})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=WAIT)


def test_serve_recovers_api_readiness_and_worker_after_the_database_connection_drops(
    tmp_path: Path, proxy: TcpProxy, schema: str
) -> None:
    cli = Cli(tmp_path)
    cli.env |= {
        "LINEOA_EXPORT_DATABASE_URL": f"{ADMIN_URL}?options=-csearch_path%3D{schema}",  # setup goes around the proxy
        "LINEOA_EXPORT_SECRET_KEY": "reconnect-test-secret-key, long enough to be a passphrase",
        "LINEOA_EXPORT_ALLOWED_API_HOSTS": SIMULATOR_HOST,
        "LINEOA_EXPORT_TIMEOUT": "0.5",  # short leases (3 x timeout + 5 s) if outcomes cannot be recorded
    }
    sim = Simulator("--latency-ms", "20")
    serve = None
    try:
        cli.ok("auth", "create", "line", "--access-token", DEMO_TOKEN, "--api-url", sim.url)
        cli.ok("activation", "create", "welcome", "--auth", "line", "--recipient", "{{uid}}",
               "--messages", '[{"type": "text", "text": "Hi {{name}}"}]', "--initial-retry-delay", "0.05")  # fmt: skip
        key = cli.ok("apikey", "create", "reconnect").stdout.strip()
        serve = Serve(tmp_path, {**cli.env, "LINEOA_EXPORT_DATABASE_URL": url_through(proxy, schema)}, key)
        users = [new_user() for _ in range(60)]

        assert serve.trigger(users[:20], 0)[0] == 202
        wait_until(lambda: sim.stats()["accepted_pushes"] == 20, "the first 20 delivered")
        assert serve.trigger(users[20:40], 20)[0] == 202  # these are in flight when the database goes away
        proxy.cut()

        status, body = serve.call("GET", "/readyz")
        assert status == 503, body
        status, body = serve.trigger(users[40:41], 999)
        assert (status, body["error"]) == (503, "database_unavailable"), body

        proxy.restore()
        recovered = wait_until(lambda: serve.call("GET", "/readyz")[0] == 200, "/readyz ready again")
        assert serve.call("GET", "/v1/activations/welcome")[0] == 200
        status, body = serve.trigger(users[40:], 40)
        assert status == 202 and body["counts"] == {"accepted": 20}, body
        wait_until(lambda: sim.stats()["accepted_pushes"] == 60, "all 60 accepted events delivered", timeout=60)

        accepted = [push["to"] for push in sim.accepted()]
        assert sorted(accepted) == sorted(users)  # each accepted event once; none lost, none twice
        states = [e["state"] for e in serve.call("GET", "/v1/activations/welcome/log?limit=100")[1]["events"]]
        wait_until(
            lambda: (
                [e["state"] for e in serve.call("GET", "/v1/activations/welcome/log?limit=100")[1]["events"]]
                == ["delivered"] * 60
            ),
            f"the activation table shows 60 delivered (now {states})",
        )
        print(f"\n[reconnect] /readyz ready {recovered:.2f} s after the database came back; 60/60 delivered once")
    finally:
        if serve is not None:
            serve.stop()
        sim.stop()
