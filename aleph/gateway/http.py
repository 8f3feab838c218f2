"""Plain HTTP on the WebSocket port: read a request head, answer small responses.

trio-websocket only speaks WebSocket, so the transport reads the request head
itself (with h11, bounded in size and time), answers plain HTTP here
(``/healthz``, ``/readyz``, refusals), and hands upgrades to trio-websocket
through :class:`ReplayStream`, which gives back the bytes already read.
"""

from __future__ import annotations

from http import HTTPStatus

import attrs
import h11
import orjson
import trio

__all__ = ["HttpError", "ReplayStream", "RequestHead", "read_head", "response_bytes"]

MAX_HEAD = 16 * 1024


class HttpError(Exception):
    """The request could not be read; answer with `status` and close."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@attrs.frozen
class RequestHead:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]  # lower-case names, in order
    raw: bytes = attrs.field(repr=False)  # every byte read so far, head and beyond

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    def header(self, name: str) -> str | None:
        """The value of a header; repeated headers are joined with ", "."""
        values = [value for key, value in self.headers if key == name]
        return ", ".join(values) if values else None

    def _tokens(self, name: str) -> set[str]:
        return {token.strip().lower() for token in (self.header(name) or "").split(",")}

    @property
    def is_websocket_upgrade(self) -> bool:
        return "websocket" in self._tokens("upgrade") and "upgrade" in self._tokens("connection")


async def read_head(stream: trio.abc.ReceiveStream) -> RequestHead | None:
    """Read up to the end of the request head. None if the peer sent nothing.

    Raises HttpError(400) for a malformed head and HttpError(431) for one
    larger than MAX_HEAD. The caller bounds the time.
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    received = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint if exc.error_status_hint in (400, 431) else 400
            raise HttpError(status, str(exc)) from None
        if isinstance(event, h11.Request):
            if received.find(b"\r\n\r\n") + 4 > MAX_HEAD:
                raise HttpError(431, "request head too large")
            headers = tuple(
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in event.headers
            )
            return RequestHead(
                event.method.decode("latin-1"),
                event.target.decode("latin-1"),
                headers,
                bytes(received),
            )
        if event is h11.NEED_DATA:
            if len(received) >= MAX_HEAD:
                raise HttpError(431, "request head too large")
            data = bytes(await stream.receive_some(4096))
            if not data:
                if not received:
                    return None
                raise HttpError(400, "connection closed inside the request head")
            received += data
            conn.receive_data(data)
        else:  # pragma: no cover - h11 yields only the two above before a Request
            raise HttpError(400, "unexpected HTTP event")


def response_bytes(
    status: int,
    body: dict[str, object] | None = None,
    *,
    head_only: bool = False,
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A complete HTTP/1.1 response with a JSON body, closing the connection."""
    payload = orjson.dumps(body if body is not None else {"error": HTTPStatus(status).phrase})
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Cache-Control: no-store",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + payload


@attrs.define(eq=False)
class ReplayStream(trio.abc.Stream):
    """A stream that first gives back `replay`, then reads from `stream`."""

    stream: trio.abc.Stream
    replay: bytes

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self.replay:
            size = len(self.replay) if max_bytes is None else max_bytes
            data, self.replay = self.replay[:size], self.replay[size:]
            return data
        return bytes(await self.stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()
