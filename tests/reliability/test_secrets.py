"""Secrets: after a full run, no token or channel secret is anywhere in plaintext.

A full run against a real simulator process, through the real CLI on a SQLite file:

- an authentication with a long-lived token and one with a channel ID + secret (tokens minted);
  a refused one (wrong secret) and a malformed token (a line break) too;
- triggers on both, ``worker --until-idle`` with a 401 on the long-lived token (pause, resume),
  a 401 on the minted token (one re-mint), all minted tokens revoked (re-mint again);
- ``log`` in every format, ``auth show``/``list``/``test``, ``activation show``/``list``;
- the JSON API (``create_app`` in process, on the same database): every GET, the test call,
  creating an authentication with a third token, and refused creations.

Then the database file (with ``-wal`` and ``-shm``), every command's stdout and stderr and every
API response are searched for each secret string, its base64 forms (standard and URL-safe, at
every byte alignment) and its hex form.
"""

from __future__ import annotations

import base64
import json
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from cli_support import DEMO_CHANNEL_ID, Cli, Simulator, describe
from reliability_support import SECRET_KEY, report
from schemathesis.python.asgi import ASGIClient

from lineoa_export import apikeys
from lineoa_export.context import open_context
from lineoa_export.settings import Settings
from lineoa_export.testing import SIMULATOR_HOST, user_id
from lineoa_export.web.app import create_app

MINTED_CHANNEL = "2222222222"


def forms(secret: str) -> dict[str, bytes]:
    """The secret as it could leak: plain, hex, and base64 at every alignment inside a longer blob."""
    raw = secret.encode()
    out = {"plain": raw, "hex": raw.hex().encode()}
    for offset in range(3):
        for name, encode in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
            encoded = encode(b"\0" * offset + raw + b"\0" * 3)
            # Skip the characters that mix in the padding bytes before and after the secret.
            start = -(-offset * 4 // 3)
            end = (offset + len(raw)) * 4 // 3
            out[f"{name}@{offset}"] = encoded[start:end]
    return out


def leaks(haystacks: dict[str, bytes], secrets_: dict[str, str]) -> list[str]:
    found = []
    for where, data in haystacks.items():
        for label, secret in secrets_.items():
            for form, needle in forms(secret).items():
                if needle in data:
                    found.append(f"{label} ({form}) in {where}")
    return found


def wait_delivered(cli: Cli, activation: str, event_id: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if any(e["event_id"] == event_id and e["delivered"] for e in cli.log_json(activation)):
            return
        time.sleep(0.2)
    raise AssertionError(f"{event_id} not delivered within {limit} s: {cli.log_json(activation)}")


def test_no_token_or_secret_in_the_database_logs_or_api_answers(tmp_path: Path) -> None:
    token = "tok-" + secrets.token_hex(20)
    channel_secret = "sec-" + secrets.token_hex(16)
    wrong_secret = "wrong-" + secrets.token_hex(16)
    api_token = "apitok-" + secrets.token_hex(20)
    bad_token = "bad-" + secrets.token_hex(16)
    watched = {
        "access token": token, "channel secret": channel_secret, "refused channel secret": wrong_secret,
        "API-created token": api_token, "malformed token": bad_token,
    }  # fmt: skip
    outputs: dict[str, bytes] = {}
    sim = Simulator()
    try:
        sim.patch({"channels": {
            DEMO_CHANNEL_ID: {"access_tokens": [token, api_token]},
            MINTED_CHANNEL: {"channel_secret": channel_secret, "access_tokens": []},
        }})  # fmt: skip
        cli = Cli(tmp_path)
        cli.env["LINEOA_EXPORT_SECRET_KEY"] = SECRET_KEY

        def run(*args: str, ok: bool = True, **kwargs: Any) -> str:
            result = cli(*args, **kwargs)
            outputs[f"`{' '.join(args)[:70]}` ({len(outputs)})"] = (result.stdout + "\n" + result.stderr).encode()
            if ok:
                assert result.returncode == 0, describe(result)
            return result.stdout

        run("auth", "create", "tok", "--access-token", token, "--api-url", sim.url)
        run("auth", "create", "minted", "--channel-id", MINTED_CHANNEL, "--channel-secret", channel_secret,
            "--api-url", sim.url)  # fmt: skip
        run("auth", "create", "refused", "--channel-id", MINTED_CHANNEL, "--channel-secret", wrong_secret,
            "--api-url", sim.url, ok=False)  # fmt: skip
        run("auth", "create", "malformed", "--access-token", bad_token + "\nX-Evil: 1", "--api-url", sim.url, ok=False)
        messages = json.dumps([{"type": "text", "text": "Hi {{name}}"}])
        for name, auth in (("a_tok", "tok"), ("a_min", "minted")):
            run("activation", "create", name, "--auth", auth, "--recipient", "{{uid}}", "--messages", messages,
                "--initial-retry-delay", "0.05")  # fmt: skip
        paused_user, remint_user = user_id(900), user_id(901)
        sim.patch({"script": {paused_user: [401], remint_user: [401]}})
        for name, first in (("a_tok", 0), ("a_min", 100)):
            lines = [{"event_id": f"{name}-{i}", "uid": user_id(first + i), "name": "S"} for i in range(20)]
            lines.append({"event_id": f"{name}-401", "uid": paused_user if name == "a_tok" else remint_user,
                          "name": "S"})  # fmt: skip
            run("trigger", name, "--events", "-", input="".join(json.dumps(e) + "\n" for e in lines))
        run("worker", "--until-idle", timeout=120)
        run("activation", "show", "a_tok")
        run("activation", "resume", "a_tok")
        # A long-running worker: every minted token dies while it runs, so it must mint again.
        worker_log = tmp_path / "worker.log"
        with open(worker_log, "wb") as sink:
            worker = subprocess.Popen(
                [sys.executable, "-m", "lineoa_export", "worker"], env=cli.env, cwd=tmp_path,
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            run(
                "trigger",
                "a_min",
                "--event",
                json.dumps({"event_id": "before-revoke", "uid": user_id(949), "name": "R"}),
            )
            wait_delivered(cli, "a_min", "before-revoke")
            sim.request("POST", "/__sim/revoke")
            run(
                "trigger",
                "a_min",
                "--event",
                json.dumps({"event_id": "after-revoke", "uid": user_id(950), "name": "R"}),
            )
            wait_delivered(cli, "a_min", "after-revoke")
            # Snapshot the database files while the worker holds them open (the -wal is there now).
            files = {f"{p.name} (worker running)": p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
        finally:
            worker.send_signal(signal.SIGINT)  # Ctrl-C: drain and exit
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        outputs["`worker` (long-running, SIGINT)"] = worker_log.read_bytes()
        for name in ("a_tok", "a_min"):
            for fmt in ("table", "json", "csv"):
                run("log", name, "--format", fmt)
            run("activation", "show", name)
        run("activation", "list")
        run("auth", "list")
        for name in ("tok", "minted"):
            run("auth", "show", name)
            run("auth", "test", name)
        entries = {e["event_id"]: e for name in ("a_tok", "a_min") for e in cli.log_json(name)}
        stats = sim.stats()

        # The API, in process, on the same database.
        ctx = open_context(
            Settings(
                database_url=f"sqlite:///{cli.db_path}", secret_key=SECRET_KEY, allowed_api_hosts=(SIMULATOR_HOST,)
            )
        )
        responses: dict[str, bytes] = {}
        try:
            key = apikeys.create(ctx.db, "secrets-test", now=time.time())
            client = ASGIClient(create_app(ctx))
            client.trust_env = False
            client.headers["Authorization"] = f"Bearer {key}"

            def call(method: str, path: str, **kwargs: Any) -> requests.Response:
                response = client.request(method, path, **kwargs)
                responses[f"{method} {path} ({len(responses)})"] = response.content + repr(response.headers).encode()
                assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text}"
                return response

            call("POST", "/v1/authentications", json={"name": "api", "access_token": api_token, "api_url": sim.url})
            call(
                "POST",
                "/v1/authentications",
                json={
                    "name": "api-bad",
                    "channel_id": MINTED_CHANNEL,
                    "channel_secret": wrong_secret,
                    "api_url": sim.url,
                },
            )
            call("POST", "/v1/authentications", json={"name": "bad name!", "access_token": bad_token + "\n"})
            call(
                "POST",
                "/v1/authentications",
                json={"name": "x", "access_token": token, "channel_id": "1", "channel_secret": channel_secret},
            )
            for path in ("/v1/authentications", "/v1/activations", "/metrics", "/openapi.json", "/healthz"):
                call("GET", path)
            for name in ("tok", "minted", "api"):
                call("GET", f"/v1/authentications/{name}")
                call("POST", f"/v1/authentications/{name}/test")
            for name in ("a_tok", "a_min"):
                call("GET", f"/v1/activations/{name}")
                call("GET", f"/v1/activations/{name}/log", params={"limit": 1000})
                call("GET", f"/v1/activations/{name}/events/{name}-401")
            client.close()
        finally:
            ctx.close()

        files.update({p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()})
        db_files = sorted(n for n in files if n.startswith("db.sqlite"))
        found = leaks({**{f"file {n}": b for n, b in files.items()}, **outputs, **responses}, watched)
        counts = {
            "secrets_watched": len(watched),
            "forms_per_secret": len(forms(token)),
            "files_searched": len(files),
            "db_files": db_files,
            "db_bytes": sum(len(files[n]) for n in db_files),
            "cli_outputs_searched": len(outputs),
            "api_responses_searched": len(responses),
            "events": len(entries),
            "delivered": sum(1 for e in entries.values() if e["delivered"]),
            "token_requests": sum(stats["requests_by_endpoint"].get("token", {}).values()),
            "push_401s": stats["requests_by_endpoint"]["push"].get("401", 0),
            "leaks": len(found),
        }
        message = report("secrets", counts)
        # The run did what it claims: both kinds of credentials delivered, 401s seen, tokens re-minted.
        assert len(entries) == 44 and counts["delivered"] == 44, message
        assert counts["push_401s"] >= 3 and counts["token_requests"] >= 3, message
        assert "db.sqlite" in db_files and "db.sqlite-wal (worker running)" in db_files, message
        assert not found, f"{message}\n" + "\n".join(found)
    finally:
        sim.stop()
