"""Helpers for gateway tests: a raw WebSocket peer and a one-shot RPC call."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import trio
import trio_websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request


async def rpc(
    ws: trio_websocket.WebSocketConnection, method: str, params: Any = None, id: Any = 1
) -> Any:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        message["params"] = params
    await ws.send_message(orjson.dumps(message).decode())
    return orjson.loads(await ws.get_message())


class RawWsClient:
    """A WebSocket client that does only what it is told: it never answers pings
    unless asked, so it can play a peer that hangs."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)

    async def handshake(self, path: str = "/ws") -> None:
        await self.stream.send_all(self.ws.send(Request(host="localhost", target=path)))
        while True:
            self.ws.receive_data(await self.stream.receive_some())
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    return

    async def events_until_close(self) -> tuple[list[Any], CloseConnection | None]:
        seen: list[Any] = []
        while True:
            data = await self.stream.receive_some()
            if not data:
                return seen, None
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, CloseConnection):
                    return seen, event
                seen.append(event)


async def http_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes to 127.0.0.1:port; read until the server closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(request)
        data = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some():
                data += chunk
                if b"\r\n\r\n" in data and b" 101 " in data.split(b"\r\n", 1)[0]:
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def upgrade_request(path: str = "/ws", extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()
