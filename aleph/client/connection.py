"""One WebSocket connection to the gateway, speaking JSON-RPC 2.0.

:func:`connect` opens the socket, reads ``gateway.hello`` and, given a token,
logs in. :meth:`GatewayClient.call` sends a request and waits for its
response (matched by id); notifications (``session.event`` ...) arrive on
:attr:`GatewayClient.notifications`, a bounded channel. Requests that the
server sends to us (``agent.invoke``) go to `on_request`, whose return value
(or :class:`CallFailed`) is sent back.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio
import trio_websocket

__all__ = ["CallFailed", "GatewayClient", "connect"]

RequestHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class CallFailed(Exception):
    """The server answered a call with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        self.code, self.message, self.data = code, message, data
        super().__init__(f"{message} ({code})")


@attrs.define(eq=False)
class GatewayClient:
    ws: trio_websocket.WebSocketConnection
    nursery: trio.Nursery
    hello: dict[str, Any] = attrs.Factory(dict)
    principal: dict[str, Any] | None = None
    on_request: RequestHandler | None = None
    _ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))
    _waiting: dict[int, trio.MemorySendChannel[dict[str, Any]]] = attrs.Factory(dict)
    _notify_send: trio.MemorySendChannel[dict[str, Any]] = attrs.field(init=False)
    notifications: trio.MemoryReceiveChannel[dict[str, Any]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._notify_send, self.notifications = trio.open_memory_channel(10_000)

    @property
    def client_id(self) -> str:
        return str(self.hello.get("client_id", ""))

    async def call(self, method: str, params: dict[str, Any] | list[Any] | None = None) -> Any:
        """Call `method` and return its result; raises CallFailed for an error."""
        call_id = next(self._ids)
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._waiting[call_id] = send
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": call_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            await self.ws.send_message(orjson.dumps(message).decode())
            try:
                response = await receive.receive()
            except trio.EndOfChannel:
                raise trio_websocket.ConnectionClosed(self.ws.closed) from None
        finally:
            self._waiting.pop(call_id, None)
        if "error" in response:
            error = response["error"]
            raise CallFailed(error.get("code", 0), error.get("message", ""), error.get("data"))
        return response.get("result")

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self.ws.send_message(orjson.dumps(message).decode())

    async def login(self, token: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("auth.login", {"token": token})
        self.principal = result["principal"]
        return result

    async def _answer(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message.get("id")}
        try:
            if self.on_request is None:
                raise CallFailed(-32601, "method not found")
            reply["result"] = await self.on_request(message["method"], message.get("params") or {})
        except CallFailed as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
        with _suppress_closed():
            await self.ws.send_message(orjson.dumps(reply).decode())

    async def _read(self) -> None:
        try:
            while True:
                message = orjson.loads(await self.ws.get_message())
                for item in message if isinstance(message, list) else [message]:
                    if "method" in item and "id" in item:
                        self.nursery.start_soon(self._answer, item)
                    elif "method" in item:
                        # A full buffer makes the reader wait (backpressure up to the
                        # server, whose slow-consumer policy then applies) rather than
                        # dropping a notification or the connection.
                        await self._notify_send.send(item)
                    elif item.get("id") in self._waiting:
                        self._waiting[item["id"]].send_nowait(item)
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            for send in self._waiting.values():
                send.close()
            self._notify_send.close()


class _suppress_closed:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> bool:
        return kind is not None and issubclass(kind, trio_websocket.ConnectionClosed)


@asynccontextmanager
async def connect(
    url: str,
    token: str | None = None,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    max_message_size: int = 64 * 1024 * 1024,
) -> AsyncIterator[GatewayClient]:
    """Connect, read gateway.hello, log in if a token is given; close on exit."""
    async with trio.open_nursery() as nursery:
        ws = await trio_websocket.connect_websocket_url(
            nursery, url, extra_headers=headers, max_message_size=max_message_size
        )
        try:
            hello = orjson.loads(await ws.get_message())
            client = GatewayClient(ws, nursery, hello=hello.get("params", {}))
            nursery.start_soon(client._read)
            if token is not None:
                await client.login(token)
            yield client
        finally:
            with trio.move_on_after(2) as scope:
                scope.shield = True
                await ws.aclose()
            # trio-websocket's client leaves its socket to the GC after a close;
            # close it here so no ResourceWarning is raised.
            await ws._stream.aclose()
            nursery.cancel_scope.cancel()
