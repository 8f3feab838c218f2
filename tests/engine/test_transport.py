"""Http1Transport against a local server that writes its answers byte by byte.

The server reads requests with h11 and answers with raw bytes chosen by each
test, so the transport meets what real servers do: chunks split across
reads, bodies by length or by close, kept-alive connections closed under it,
1xx answers, garbage, silence.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import attrs
import h11
import httpx
import pytest
import trio
import trio.lowlevel
import trio.testing
import trustme

from aleph.engine.providers.transport import KEEPALIVE_EXPIRY, Http1Transport

Answer = Callable[[trio.abc.Stream, h11.Request, bytes], Awaitable[bool]]


@attrs.define(eq=False)
class RawServer:
    """One `answer` per request: it writes whatever it likes; False closes the connection."""

    answer: Answer
    connections: int = 0
    requests: list[tuple[int, h11.Request, bytes]] = attrs.Factory(list)
    closed: list[int] = attrs.Factory(list)  # connections whose client hung up
    changed: trio.Event = attrs.Factory(trio.Event)
    port: int = 0
    tls: ssl.SSLContext | None = None

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        if self.tls is not None:
            listeners = [trio.SSLListener(listener, self.tls) for listener in listeners]  # type: ignore[misc]
        task_status.started()
        await trio.serve_listeners(self._connection, listeners)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _hung_up(self, number: int) -> None:
        self.closed.append(number)
        self.changed.set()
        self.changed = trio.Event()

    async def wait_closed(self, number: int) -> None:
        with trio.fail_after(5):
            while number not in self.closed:
                await self.changed.wait()

    async def _connection(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        number = self.connections
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = None, b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await stream.receive_some(65536)
                        if not data:
                            self._hung_up(number)
                            return
                        conn.receive_data(data)
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                assert request is not None
                self.requests.append((number, request, body))
                if not await self.answer(stream, request, body):
                    return
                conn = h11.Connection(h11.SERVER)  # the answers bypass h11: a fresh one
        except trio.BrokenResourceError:
            self._hung_up(number)
        finally:
            await trio.aclose_forcefully(stream)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=Http1Transport(), timeout=5) as client:
        yield client


async def serve(nursery: trio.Nursery, answer: Answer, **kwargs: object) -> RawServer:
    server = RawServer(answer, **kwargs)  # type: ignore[arg-type]
    await nursery.start(server.serve)
    return server


async def read_all(client: httpx.AsyncClient, url: str, into: list[bytes] | None = None) -> None:
    async with client.stream("GET", url) as response:
        async for piece in response.aiter_bytes():
            if into is not None:
                into.append(piece)


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


async def test_chunked_stream_split_anywhere(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    events = [b'data: {"n": %d}\n\n' % i for i in range(50)]
    wire = STREAM_HEAD + chunked(*events)

    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        # Three bytes at a time: chunk sizes, CRLFs and data all split across reads.
        for start in range(0, len(wire), 3):
            await stream.send_all(wire[start : start + 3])
            await trio.lowlevel.checkpoint()
        return True

    server = await serve(nursery, answer)
    async with client.stream("POST", server.url + "/v1/chat", content=b'{"a": 1}') as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        pieces = [piece async for piece in response.aiter_bytes()]
    assert b"".join(pieces) == b"".join(events)
    _, request, body = server.requests[0]
    assert (request.method, request.target, body) == (b"POST", b"/v1/chat", b'{"a": 1}')
    assert dict(request.headers)[b"content-length"] == b"8"


async def test_one_piece_per_read_not_per_chunk(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    events = [b"data: %d\n\n" % i for i in range(200)]

    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(STREAM_HEAD + chunked(*events))  # one write, 200 chunks
        return True

    server = await serve(nursery, answer)
    async with client.stream("GET", server.url + "/") as response:
        pieces = [piece async for piece in response.aiter_raw()]
    assert b"".join(pieces) == b"".join(events)
    assert len(pieces) < 20  # far fewer than the 200 chunks


async def test_keep_alive_reuses_the_connection(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
        return True

    server = await serve(nursery, answer)
    for _ in range(3):
        response = await client.post(server.url + "/", content=b"x")
        assert (response.status_code, response.content) == (200, b"hello")
    assert server.connections == 1
    assert [number for number, _, _ in server.requests] == [1, 1, 1]


async def test_body_until_close_and_no_reuse(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npart one, ")
        await stream.send_all(b"part two")
        return False  # the end of the body is the end of the connection

    server = await serve(nursery, answer)
    for _ in range(2):
        response = await client.get(server.url + "/")
        assert response.text == "part one, part two"
    assert server.connections == 2


async def test_idle_connection_closed_by_the_server_is_not_used(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        return False  # closes without saying `connection: close`

    server = await serve(nursery, answer)
    assert (await client.get(server.url + "/")).text == "ok"
    await trio.testing.wait_all_tasks_blocked()
    assert (await client.get(server.url + "/")).text == "ok"
    assert server.connections == 2
    assert len(server.requests) == 2  # nothing was sent on the dead connection


async def test_kept_alive_connection_dropped_at_the_request_is_retried(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    calls = 0

    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            return False  # took the second request, then hung up without a byte
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        return True

    server = await serve(nursery, answer)
    assert (await client.post(server.url + "/", content=b"1")).text == "ok"
    assert (await client.post(server.url + "/", content=b"2")).text == "ok"
    assert [(n, body) for n, _, body in server.requests] == [(1, b"1"), (1, b"2"), (2, b"2")]


async def test_fresh_connection_dropped_without_an_answer_fails(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        return False

    server = await serve(nursery, answer)
    with pytest.raises(httpx.RemoteProtocolError, match="without answering"):
        await client.post(server.url + "/", content=b"1")
    assert server.connections == 1  # a new connection is not retried


async def test_cut_in_the_middle_of_a_chunked_body(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(STREAM_HEAD + chunked(b"data: 1\n\n")[:-5] + b"10\r\ndata: ")
        return False

    server = await serve(nursery, answer)
    received: list[bytes] = []
    with pytest.raises(httpx.RemoteProtocolError, match="middle of the response body"):
        await read_all(client, server.url + "/", received)
    assert b"".join(received) == b"data: 1\n\ndata: "


async def test_short_content_length_body(nursery: trio.Nursery, client: httpx.AsyncClient) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        return False

    server = await serve(nursery, answer)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(server.url + "/")


async def test_garbage_instead_of_http(nursery: trio.Nursery, client: httpx.AsyncClient) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        return False

    server = await serve(nursery, answer)
    with pytest.raises(httpx.RemoteProtocolError, match="malformed HTTP response"):
        await client.get(server.url + "/")


async def test_garbage_after_a_response_only_stops_reuse(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok\x00\x01garbage")
        return True

    server = await serve(nursery, answer)
    assert (await client.get(server.url + "/")).text == "ok"
    assert (await client.get(server.url + "/")).text == "ok"
    assert server.connections == 2


async def test_informational_answer_before_the_real_one(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n")
        await stream.send_all(
            b"HTTP/1.1 201 Created\r\nx-real: yes\r\ncontent-length: 4\r\n\r\ndone"
        )
        return True

    server = await serve(nursery, answer)
    response = await client.post(server.url + "/", content=b"")
    assert (response.status_code, response.text) == (201, "done")
    assert response.reason_phrase == "Created"
    assert "link" not in response.headers
    assert response.headers["x-real"] == "yes"
    assert (await client.get(server.url + "/")).status_code == 201
    assert server.connections == 1


async def test_no_body_answers_and_head(nursery: trio.Nursery, client: httpx.AsyncClient) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        if request.method == b"HEAD":
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        else:
            await stream.send_all(b"HTTP/1.1 204 No Content\r\n\r\n")
        return True

    server = await serve(nursery, answer)
    assert (await client.delete(server.url + "/x")).status_code == 204
    assert (await client.delete(server.url + "/y")).status_code == 204
    head = await client.head(server.url + "/")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "1000")
    assert server.connections == 1


async def test_silent_server_is_a_read_timeout(nursery: trio.Nursery) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(STREAM_HEAD + chunked(b"data: 1\n\n")[:-5])
        await trio.sleep_forever()
        return False  # pragma: no cover

    server = await serve(nursery, answer)
    async with httpx.AsyncClient(transport=Http1Transport(), timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await read_all(client, server.url + "/")


async def test_cancelled_stream_closes_its_connection(
    nursery: trio.Nursery, client: httpx.AsyncClient
) -> None:
    hung_up = trio.Event()

    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(STREAM_HEAD + b"5\r\nfirst\r\n")
        while await stream.receive_some(100):  # until the client hangs up
            pass
        hung_up.set()
        return False

    server = await serve(nursery, answer)
    received: list[bytes] = []
    with trio.move_on_after(0.5):
        await read_all(client, server.url + "/", received)
    assert received == [b"first"]
    with trio.fail_after(5):
        await hung_up.wait()


async def test_chunked_request_body(nursery: trio.Nursery, client: httpx.AsyncClient) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )
        return True

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"", b"two ", b"three"):
            yield part

    server = await serve(nursery, answer)
    response = await client.post(server.url + "/", content=parts())
    assert response.content == b"one two three"
    assert dict(server.requests[0][1].headers)[b"transfer-encoding"] == b"chunked"


async def test_header_injection_is_refused(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.LocalProtocolError):
        await client.get("http://127.0.0.1:9/", headers={"x-a": "b\r\nx-evil: 1"})


async def test_refused_connection(client: httpx.AsyncClient) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with pytest.raises(httpx.ConnectError, match="cannot connect"):
        await client.get(f"http://127.0.0.1:{port}/")


async def test_idle_connections_expire(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, client: httpx.AsyncClient
) -> None:
    autojump_clock.autojump_threshold = 0.05  # real sockets: let them move first

    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        return True

    server = await serve(nursery, answer)
    await client.get(server.url + "/")
    await trio.sleep(KEEPALIVE_EXPIRY + 1)
    await client.get(server.url + "/")
    assert server.connections == 2


async def test_https_verified_against_the_ca(nursery: trio.Nursery) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)

    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecure")
        return True

    server = await serve(nursery, answer, tls=server_context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with httpx.AsyncClient(transport=Http1Transport(trusting)) as client:
        assert (await client.get(server.url + "/")).text == "secure"
        assert (await client.get(server.url + "/")).text == "secure"
    assert server.connections == 1
    async with httpx.AsyncClient(transport=Http1Transport()) as client:
        with pytest.raises(httpx.ConnectError, match="TLS handshake"):
            await client.get(server.url + "/")


async def test_closing_the_transport_closes_its_connections(nursery: trio.Nursery) -> None:
    async def answer(stream: trio.abc.Stream, request: h11.Request, body: bytes) -> bool:
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        return True

    server = await serve(nursery, answer)
    client = httpx.AsyncClient(transport=Http1Transport())
    await client.get(server.url + "/")
    await client.aclose()
    await server.wait_closed(1)
    with pytest.raises(RuntimeError):
        await client.get(server.url + "/")
