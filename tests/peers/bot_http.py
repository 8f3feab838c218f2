"""A minimal async HTTP/1.1 server on 127.0.0.1 for the bot API peers.

Unlike :mod:`tests.peers.sse_server` (scripted replies), every request here
goes to an async handler, so a fake can hold a long poll open (Telegram's
getUpdates) or answer from its state. Bodies are parsed as JSON,
form-urlencoded or left as bytes; keep-alive works; a handler's response is
``(status, headers, body bytes)``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import h11
import orjson
import trio

__all__ = ["Changes", "HttpRequest", "HttpResponse", "json_response", "serve_http"]


@attrs.frozen
class HttpRequest:
    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # dict for JSON objects and forms, else bytes


HttpResponse = tuple[int, list[tuple[str, str]], bytes]
Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


def json_response(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Any:
    return status, [("content-type", "application/json"), *(headers or [])], orjson.dumps(body)


def _parse(request: h11.Request, raw: bytes) -> HttpRequest:
    target = request.target.decode()
    path, _, query = target.partition("?")
    headers = {k.decode().lower(): v.decode() for k, v in request.headers}
    kind = headers.get("content-type", "")
    body: Any = bytes(raw)
    if raw and "json" in kind:
        body = orjson.loads(raw)
    elif "x-www-form-urlencoded" in kind:
        body = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
    elif not raw:
        body = {}
    return HttpRequest(
        request.method.decode(), path, dict(urllib.parse.parse_qsl(query)), headers, body
    )


async def _connection(handler: Handler, stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    async with stream:
        try:
            while True:
                request: h11.Request | None = None
                raw = bytearray()
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        conn.receive_data(data)
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        raw += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        return
                assert request is not None
                status, headers, body = await handler(_parse(request, bytes(raw)))
                headers = [*headers, ("content-length", str(len(body)))]
                encoded = [(k.encode(), v.encode()) for k, v in headers]
                await stream.send_all(conn.send(h11.Response(status_code=status, headers=encoded)))
                if body:
                    await stream.send_all(conn.send(h11.Data(data=body)))
                await stream.send_all(conn.send(h11.EndOfMessage()))
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass


async def serve_http(
    handler: Handler, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve `handler` on 127.0.0.1 on a free port; started() with the port."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])

    async def connection(stream: trio.SocketStream) -> None:
        await _connection(handler, stream)

    await trio.serve_listeners(connection, listeners)


@attrs.define(eq=False)
class Changes:
    """Lets a test wait until a peer has seen what it expects, without polling:
    the peer calls notify() after every change, tests await wait_for()."""

    _event: trio.Event = attrs.Factory(trio.Event)

    def notify(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait(self) -> None:
        """Until the next change."""
        await self._event.wait()

    async def wait_for(self, predicate: Callable[[], Any], limit: float = 10.0) -> Any:
        """Wait (bounded) until predicate() is truthy; returns its value."""
        with trio.fail_after(limit):
            while not (value := predicate()):
                await self._event.wait()
        return value
