"""Schemathesis against our own ``/openapi.json``, in process: no input, from a key of any role,
may make the API answer 5xx.

The database holds one authentication (``line``, stored untested, pointing at an unused loopback
port so nothing real is ever called) and one activation (``welcome``). Each generated case is
sent twice: as generated (mostly unknown names), and with its path names replaced by the ones
that exist, so the generated bodies and queries reach the code behind the 404. Whatever a case
deletes is put back before the next one.

An app exception surfaces here as an exception from the in-process client (a real server would
answer 500), so it fails the test like a 5xx does.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_support import SECRET_KEY, START
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from lineoa_export import activations, apikeys, authentications
from lineoa_export.clock import FakeClock
from lineoa_export.context import Context, open_context
from lineoa_export.delivery import triggers
from lineoa_export.settings import Settings
from lineoa_export.testing import SIMULATOR_HOST
from lineoa_export.web.app import create_app


def unused_loopback_url() -> str:
    """A loopback URL nothing listens on (the port is bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


WELCOME = {
    "name": "welcome",
    "authentication": "line",
    "recipient": "{{line_user_id}}",
    "messages": [{"type": "text", "text": "Hello {{name}}"}],
}


class State:
    def __init__(self, ctx: Context, key: str, api_url: str, directory: Path) -> None:
        self.directory = directory
        self.ctx = ctx
        self.key = key  # an admin's
        self.api_url = api_url
        self.others = {
            role: apikeys.create(ctx.db, role, now=START, role=role) for role in ("operator", "trigger", "read")
        }

    def restore(self) -> None:
        """Put back ``line`` and ``welcome`` (a case may have deleted, paused or changed them)."""
        db = self.ctx.db
        try:
            authentications.get(db, "line")
        except LookupError:
            authentications.create(
                db,
                self.ctx.vault,
                name="line",
                credentials=authentications.Credentials.from_options("token-never-sent", None, None),
                api_url=self.api_url,
                now=START,
            )
        try:
            activations.get(db, "welcome")
        except LookupError:
            activations.create(db, activations.parse_spec(WELCOME), now=START)
        else:
            activations.update(db, activations.parse_spec(WELCOME), now=START)
            activations.resume(db, "welcome", now=START)
        triggers.accept(db, "welcome", [{"event_id": "e1", "line_user_id": "U" + "0" * 32, "name": "Ann"}], now=START)


def _open_state() -> State:
    """Built at import: schemathesis' lazy ``from_fixture`` does not work with pytest 9 (``_nodeid``)."""
    directory = Path(tempfile.mkdtemp(prefix="lineoa-schemathesis-"))
    settings_ = Settings(
        database_url=f"sqlite:///{directory / 'api.db'}",
        secret_key=SECRET_KEY,
        allowed_api_hosts=(SIMULATOR_HOST,),
        timeout=1.0,
        connect_timeout=0.5,
    )
    ctx = open_context(settings_, clock=FakeClock(START))
    key = apikeys.create(ctx.db, "schemathesis", now=START)
    s = State(ctx, key, unused_loopback_url(), directory)
    s.restore()
    return s


STATE = _open_state()
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(STATE.ctx))


@pytest.fixture(scope="module")
def state() -> Iterator[State]:
    yield STATE
    STATE.ctx.close()
    shutil.rmtree(STATE.directory, ignore_errors=True)


def existing_names(case: Any) -> dict[str, Any] | None:
    params = dict(case.path_parameters or {})
    if "name" not in params:
        return None
    params["name"] = "line" if case.path.startswith("/v1/authentications") else "welcome"
    if "event_id" in params:
        params["event_id"] = "e1"
    return params


def keep_line_local(case: Any, api_url: str) -> None:
    """Never let a generated authentication reach a real LINE: its API URL is our dead port."""
    if case.path == "/v1/authentications" and case.method.upper() == "POST" and isinstance(case.body, dict):
        case.body["api_url"] = api_url


@schema.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_api_answer_5xx(case: Any, state: State) -> None:
    headers = {"Authorization": f"Bearer {state.key}"}
    keep_line_local(case, state.api_url)
    case.call_and_validate(headers=headers, checks=[not_a_server_error])
    params = existing_names(case)
    if params is not None:
        case.path_parameters = params
        case.call_and_validate(headers=headers, checks=[not_a_server_error])
        state.restore()
    # Every other role, on the names that exist: allowed or refused, never a server error.
    for key in state.others.values():
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=[not_a_server_error])
        state.restore()
