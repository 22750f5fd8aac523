"""Issue 8, findings 2 and 3: ``api_url`` cannot send a channel's token anywhere but LINE (or a host
the operator allows), odd URLs are refused at input (never 500), and a connection test never echoes
what a server other than LINE answered."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import Api, make_api

from lineoa_export.testing import ThreadedSimulator

GREETING = b"J\x00\x00\x00\n5.5.5-10.6.12-MariaDB-1:10.6.12+maria~ubu2004\x00\x08\x00\x00\x00secret-salt"
HTML_401 = (
    b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/html\r\nContent-Length: 43\r\nConnection: close\r\n\r\n"
    b"<html>intranet wiki: payroll password</html>"
)
REDIRECT = (
    b"HTTP/1.1 302 Found\r\nLocation: https://attacker.example/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
)


@pytest.fixture
def api(tmp_path: Path, sim: ThreadedSimulator) -> Iterator[Api]:
    with make_api(tmp_path, sim) as a:
        yield a


class OneAnswerServer:
    """A TCP server on 127.0.0.1 that writes ``reply`` to every connection (after reading a little)."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    if not self.reply.startswith(b"J"):  # an HTTP server reads the request first
                        conn.recv(65536)
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize(
    ("api_url", "says"),
    [
        ("http://user:pw@127.0.0.1:19999", "user name or password"),
        ("http://a..b", "not a valid host name"),
        ("http://127.0.0.1:19999/#", "fragment"),
        ("http://127.0.0.1:19999/?x=1", "query"),
        ("https://attacker.example", "LINEOA_EXPORT_ALLOWED_API_HOSTS"),
        ("http://10.0.0.1:6379", "LINEOA_EXPORT_ALLOWED_API_HOSTS"),
    ],
)
@pytest.mark.parametrize("skip_test", [True, False])
def test_an_unusable_api_url_is_refused_with_422_naming_it(api: Api, api_url: str, says: str, skip_test: bool) -> None:
    response = api.post(
        "/v1/authentications", json={"name": "x", "access_token": "t", "api_url": api_url, "skip_test": skip_test}
    )

    assert response.status_code == 422, response.text
    assert [p["field"] for p in response.json()["problems"]] == ["api_url"]
    assert says in response.json()["message"]
    assert "user:pw@127" not in response.text
    assert api.get("/v1/authentications/x").status_code == 404


@pytest.mark.parametrize("reply", [GREETING, HTML_401, REDIRECT], ids=["mariadb", "html-401", "redirect"])
def test_a_connection_test_never_echoes_a_foreign_answer(api: Api, reply: bytes) -> None:
    server = OneAnswerServer(reply)
    try:
        response = api.post("/v1/authentications", json={"name": "x", "access_token": "t", "api_url": server.url})
    finally:
        server.close()

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "credentials_rejected"
    for leaked in (b"MariaDB", b"secret-salt", b"payroll", b"intranet", b"attacker.example"):
        assert leaked not in response.content


def test_the_test_endpoint_refuses_a_stored_url_no_longer_allowed(tmp_path: Path, sim: ThreadedSimulator) -> None:
    with make_api(tmp_path, sim) as api:
        policy_now = api.ctx.settings.model_copy(update={"allowed_api_hosts": ()})
        api.ctx.vault.api_hosts = policy_now.api_hosts  # the operator removed the host since

        response = api.post("/v1/authentications/line/test")

    assert response.status_code == 400, response.text
    assert "api_url" in response.json()["message"]
    assert "LINEOA_EXPORT_ALLOWED_API_HOSTS" in response.json()["message"]
    assert sim.stats()["requests_by_endpoint"] == {}


@pytest.mark.parametrize("reply", [GREETING, HTML_401], ids=["mariadb", "html-401"])
def test_validate_never_echoes_a_foreign_answer(tmp_path: Path, reply: bytes) -> None:
    server = OneAnswerServer(reply)
    try:
        with make_api(tmp_path, None, api_url=server.url) as api:
            api.create_activation()
            response = api.post(
                "/v1/activations/welcome/validate", json={"event": {"line_user_id": "U" + "0" * 32, "name": "Ann"}}
            )
    finally:
        server.close()

    assert response.status_code == 422, response.text
    for leaked in (b"MariaDB", b"secret-salt", b"payroll", b"intranet"):
        assert leaked not in response.content


def test_a_rotation_tested_against_a_stored_url_no_longer_allowed_says_so(
    tmp_path: Path, sim: ThreadedSimulator
) -> None:
    with make_api(tmp_path, sim) as api:
        api.ctx.vault.api_hosts = api.ctx.settings.model_copy(update={"allowed_api_hosts": ()}).api_hosts

        response = api.post("/v1/authentications/line/rotate", json={"access_token": "new-token"})

    assert response.status_code == 400, response.text
    assert "LINEOA_EXPORT_ALLOWED_API_HOSTS" in response.json()["message"]
    assert "line break" not in response.json()["message"]
    assert sim.stats()["requests_by_endpoint"] == {}
