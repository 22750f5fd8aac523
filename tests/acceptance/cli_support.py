"""Helpers for the acceptance tests: run the real CLI, run and drive a real simulator process.

Every command runs as a subprocess (``python -m lineoa_export ...``) against a SQLite database in
the test's own directory, with no ``LINEOA_EXPORT_SECRET_KEY`` (so the key file is created beside
the database). The simulator runs as ``python -m lineoa_export simulator`` on a free port and is
driven over HTTP through its ``/__sim/*`` control endpoints.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

CLI_TIMEOUT = 60.0
SIMULATOR_HOST = "127.0.0.1"  # where the simulator listens; the CLI runs allow it as an API host
SIM_START_TIMEOUT = 15.0

DEMO_TOKEN = "demo-access-token"
DEMO_CHANNEL_ID = "1234567890"
DEMO_CHANNEL_SECRET = "demo-channel-secret-0123456789ab"


def _base_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # Nothing from the developer's shell may leak into a run: no settings, no credentials.
        if not k.startswith("LINEOA_EXPORT_") and k not in ("LINE_CHANNEL_ACCESS_TOKEN", "LINE_CHANNEL_SECRET")
    }
    # Wide, plain output: rich must not wrap error messages or squeeze table cells.
    env["COLUMNS"] = "250"
    env["NO_COLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Cli:
    """Runs ``lineoa-export`` with the database ``<directory>/db.sqlite``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.db_path = directory / "db.sqlite"
        self.env = _base_env()
        self.env["LINEOA_EXPORT_DATABASE_URL"] = f"sqlite:///{self.db_path}"
        self.env["LINEOA_EXPORT_ALLOWED_API_HOSTS"] = SIMULATOR_HOST  # where the simulator listens

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = CLI_TIMEOUT, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lineoa_export", *args],
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env={**self.env, **(env or {})},
            cwd=self.directory,
            timeout=timeout,
            # stdin is closed unless the test pipes something in: nothing may wait for a terminal.
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def ok(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run and insist on exit status 0 (the failure message shows both streams)."""
        result = self(*args, input=input)
        assert result.returncode == 0, describe(result)
        return result

    def log_json(self, activation: str, *extra: str) -> list[dict[str, Any]]:
        result = self.ok("log", activation, "--format", "json", *extra)
        entries = json.loads(result.stdout)
        assert isinstance(entries, list)
        return entries


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Simulator:
    """A ``lineoa-export simulator`` process, controlled over HTTP."""

    def __init__(self, *extra_args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lineoa_export", "simulator", "--port", str(self.port), *extra_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=_base_env(),
        )
        self.url = self._read_url()

    def _read_url(self) -> str:
        """The simulator prints its URL as its first stdout line once it listens."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + SIM_START_TIMEOUT
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=0.1):
                    line = self.process.stdout.readline().strip()
                    if line:
                        assert line == f"http://127.0.0.1:{self.port}", line
                        return line
                if self.process.poll() is not None:
                    break
        self.stop()
        stderr = self.process.stderr.read() if self.process.stderr else ""
        raise RuntimeError(f"the simulator did not start (exit {self.process.returncode}): {stderr}")

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read())

    def patch(self, patch: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /__sim/options`` with a JSON merge patch; returns the new options."""
        result: dict[str, Any] = self.request("PATCH", "/__sim/options", patch)
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/__sim/stats?recipients=1")
        return result

    def accepted(self, *, bodies: bool = False) -> list[dict[str, Any]]:
        """What LINE accepted, oldest first (``bodies``: with each request body, parsed)."""
        result: list[dict[str, Any]] = self.request("GET", "/__sim/accepted" + ("?bodies=1" if bodies else ""))
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def new_user() -> str:
    """A fresh LINE user id (U + 32 lowercase hex digits)."""
    return "U" + uuid.uuid4().hex


TEXT_MESSAGES = json.dumps([{"type": "text", "text": "Hello {{ name }}, you have {{points}} points."}])


class Setup:
    """Creates the usual authentication (``line``, tested against the simulator) and activations."""

    def __init__(self, cli: Cli, sim: Simulator) -> None:
        self.cli = cli
        self.sim = sim
        cli.ok("auth", "create", "line", "--access-token", DEMO_TOKEN, "--api-url", sim.url)

    def activation(self, name: str, *extra: str) -> str:
        """An activation sending a templated text to ``{{uid}}``, with fast retries (0.05 s, ×2)."""
        self.cli.ok(
            "activation", "create", name,
            "--auth", "line",
            "--recipient", "{{uid}}",
            "--messages", TEXT_MESSAGES,
            "--initial-retry-delay", "0.05",
            *extra,
        )  # fmt: skip
        return name

    @staticmethod
    def event(uid: str, event_id: str | None = None, **fields: Any) -> str:
        body: dict[str, Any] = {"uid": uid, "name": "Ann", "points": 12, **fields}
        if event_id is not None:
            body["event_id"] = event_id
        return json.dumps(body)
