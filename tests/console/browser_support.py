"""What every browser test of the console needs: Debian's Chromium, the app on a real socket, a worker.

Playwright drives ``/usr/bin/chromium`` (no browser download is possible here). ``served`` runs the
app under uvicorn on a free loopback port; ``deliver`` runs a worker until idle on its own thread
(Playwright owns the test thread's loop); ``logged_in_page`` opens a page and logs in with a key;
``screenshot`` writes a picture for the README into ``docs/screenshots/`` (committed: the README
shows what these tests saw) or, for a picture only a human debugging wants, ``tests/console/artifacts/``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn

from lineoa_export.context import Context
from lineoa_export.delivery.worker import Worker
from lineoa_export.settings import Settings
from lineoa_export.testing import SIMULATOR_HOST, TEST_SECRET_KEY
from lineoa_export.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def playwright_or_skip() -> ModuleType:
    """Playwright's sync API; called at a test module's top, it skips the module without a browser."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is missing: apt-get install -y chromium", allow_module_level=True)
    return sync_api


def browser_settings(tmp_path: Path, name: str) -> Settings:
    """A fresh SQLite database that may talk to the threaded simulator, with short LINE timeouts."""
    return Settings(
        database_url=f"sqlite:///{tmp_path / (name + '.db')}",
        secret_key=TEST_SECRET_KEY,
        allowed_api_hosts=(SIMULATOR_HOST,),
        timeout=2.0,
        connect_timeout=1.0,
    )


@contextmanager
def served(ctx: Context, **app_options: Any) -> Iterator[str]:
    """The app (API + console) on a free loopback port, uvicorn on a background thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(ctx, **app_options)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def deliver(ctx: Context) -> None:
    """Run a worker until nothing is left to do (on its own thread: Playwright owns this one's loop)."""
    worker = Worker(ctx.db, ctx.vault, ctx.settings, clock=ctx.clock)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run(until_idle=True)))
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the worker did not go idle"


def collect_console_errors(page: Any) -> list[str]:
    """Errors the page logs (a CSP violation, a script error), but not 4xx resource loads."""
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None
        ),
    )
    return errors


def log_in(page: Any, base: str, key: str, *, start: str = "/console/activations") -> None:
    """Open ``start``, get sent to the login form, log in with ``key`` and land back on ``start``."""
    page.goto(f"{base}{start}")
    assert page.url.startswith(f"{base}/console/login")
    page.fill("#api_key", key)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base}{start}")


def screenshot(page: Any, name: str, *, readme: bool = False) -> Path:
    """Save a full-page picture; ``readme=True`` puts it where the README links it."""
    folder = README_SCREENSHOTS if readme else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
