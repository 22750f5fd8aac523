"""Issue 8, findings 3 and 4, at the transport: whatever answers at ``api_url``, the worker gets an
outcome, never an exception; an answer is read up to 1 MiB and no further; redirects are not
followed (the bearer token stays with the host it was meant for).

Real aiohttp against small asyncio servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from lineoa_export.delivery.line_client import MAX_ANSWER_BYTES, AiohttpTransport, Timeouts
from lineoa_export.delivery.outcomes import Answer, NoAnswer

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serving(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def test_an_endless_answer_is_read_to_1_mib_and_no_further(run) -> None:
    sent = 0

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            while sent < 1 << 30:  # a 1 GiB answer, if anyone read it all
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                sent += len(chunk)
        except ConnectionError:
            pass  # the client hung up: what we want
        finally:
            writer.close()

    async def scenario() -> None:
        server, url = await serving(endless)
        transport = AiohttpTransport(Timeouts(connect=1, total=10))
        try:
            answer = await transport.request("GET", url + "/v2/bot/info", {}, None)
        finally:
            await transport.close()
            server.close()
        assert isinstance(answer, NoAnswer)
        assert "larger than" in answer.error
        # The client stopped at 1 MiB; what the server got out is that plus socket buffers.
        assert sent < 64 * MAX_ANSWER_BYTES

    run(scenario())


def test_a_redirect_is_not_followed(run) -> None:
    reached: list[bytes] = []

    async def elsewhere(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        target, target_url = await serving(elsewhere)

        async def redirecting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(
                f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {target_url}/steal\r\nContent-Length: 0\r\n\r\n".encode()
            )
            await writer.drain()
            writer.close()

        server, url = await serving(redirecting)
        transport = AiohttpTransport(Timeouts(connect=1, total=5))
        try:
            answer = await transport.request(
                "POST", url + "/v2/bot/message/push", {"Authorization": "Bearer secret-token"}, b"{}"
            )
        finally:
            await transport.close()
            server.close()
            target.close()
        assert isinstance(answer, Answer) and answer.status == 307
        assert reached == []  # the token never went to the other host

    run(scenario())


@pytest.mark.parametrize(
    "url", ["http://user:pw@127.0.0.1:9/x", "http://a..b/x", "http://[::1/x", "http://127.0.0.1:99999/x"]
)
def test_a_url_the_transport_cannot_use_is_an_outcome_not_an_exception(run, url: str) -> None:
    async def scenario() -> None:
        transport = AiohttpTransport(Timeouts(connect=0.5, total=1))
        try:
            answer = await transport.request("GET", url, {"Authorization": "Bearer t"}, None)
        finally:
            await transport.close()
        assert isinstance(answer, NoAnswer)

    run(scenario())
