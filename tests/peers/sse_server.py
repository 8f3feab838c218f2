"""A small scripted HTTP/1.1 server on 127.0.0.1 for the model-API peers.

:class:`ScriptedHttpServer` accepts connections (keep-alive included),
records every request (:class:`Recorded`: method, path, headers, JSON body)
and answers each with the next scripted :class:`Reply`, or with what its
`default` function makes of the request. A Reply can stream its body as many
separately written chunks (so SSE events split in awkward places), stop in
the middle and drop the connection (a cut stream), or never answer at all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import h11
import orjson
import trio
import trio.lowlevel

__all__ = ["Recorded", "Reply", "ScriptedHttpServer", "split_every"]


def split_every(data: bytes, sizes: tuple[int, ...] = (1, 3, 7, 2, 13, 5)) -> list[bytes]:
    """`data` cut into pieces of the given sizes, cycling: mid-line, mid-character."""
    pieces: list[bytes] = []
    index = position = 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        pieces.append(data[position : position + size])
        position += size
        index += 1
    return pieces


@attrs.frozen
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw bytes if it is not JSON


@attrs.define
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = attrs.Factory(list)
    pieces: list[bytes] = attrs.Factory(list)  # each written as its own chunk
    cut_after: int | None = None  # drop the connection after this many pieces
    hang: bool = False  # never send anything
    hang_after: int | None = None  # send this many pieces, then go silent

    @classmethod
    def json(cls, status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
        return cls(
            status, [("content-type", "application/json"), *(headers or [])], [orjson.dumps(body)]
        )

    @classmethod
    def sse(cls, body: bytes, *, awkward: bool = True, **kwargs: Any) -> Reply:
        pieces = split_every(body) if awkward else [body]
        return cls(200, [("content-type", "text/event-stream")], pieces, **kwargs)


@attrs.define(eq=False)
class ScriptedHttpServer:
    default: Callable[[Recorded], Reply]
    replies: deque[Reply] = attrs.Factory(deque)
    requests: list[Recorded] = attrs.Factory(list)
    port: int = 0
    fast: bool = False  # no checkpoint between pieces (the benchmark)
    pace: float = 0.0  # seconds between pieces (the benchmark's paced mode)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        async with stream:
            try:
                while await self._one_request(conn, stream):
                    conn.start_next_cycle()
            except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
                pass

    async def _one_request(self, conn: h11.Connection, stream: trio.SocketStream) -> bool:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return False
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                return False
        assert request is not None
        try:
            parsed: Any = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            parsed = bytes(body)
        recorded = Recorded(
            request.method.decode(),
            request.target.decode(),
            {k.decode().lower(): v.decode() for k, v in request.headers},
            parsed,
        )
        self.requests.append(recorded)
        reply = self.replies.popleft() if self.replies else self.default(recorded)
        return await self._send(conn, stream, reply)

    async def _send(self, conn: h11.Connection, stream: trio.SocketStream, reply: Reply) -> bool:
        if reply.hang:
            await trio.sleep_forever()
        headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers)))
        start = trio.current_time()
        for index, piece in enumerate(reply.pieces):
            if reply.cut_after is not None and index >= reply.cut_after:
                return False  # closing the stream without the last chunk: a cut
            if reply.hang_after is not None and index >= reply.hang_after:
                await trio.sleep_forever()
            await stream.send_all(conn.send(h11.Data(data=piece)))
            if self.pace:  # on a fixed schedule: a late wake-up does not slow the rest
                await trio.sleep_until(start + (index + 1) * self.pace)
            elif not self.fast:
                await trio.lowlevel.checkpoint()
        await stream.send_all(conn.send(h11.EndOfMessage()))
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE
