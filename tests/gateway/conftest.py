"""In-memory gateways: the real transport over trio.testing memory streams,
so timeouts run under the mock clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import trio
import trio.testing
import trio_websocket

from aleph.config import Config
from aleph.gateway import Gateway, register_gateway_methods
from aleph.gateway.transport import serve_connection
from aleph.security.tokens import TokenRecord, hash_token

OWNER_TOKEN = "owner-token-for-tests-0123456789"


def make_gateway(config: Config) -> Gateway:
    gateway = Gateway(config)
    register_gateway_methods(gateway.registry)
    gateway.tokens.add(TokenRecord("owner", "owner", "owner", hash_token(OWNER_TOKEN)))
    gateway.ready = True
    return gateway


@pytest.fixture
async def core(make_config: Callable[..., Config]) -> Gateway:
    return make_gateway(make_config())


OpenWs = Callable[..., Awaitable[trio_websocket.WebSocketConnection]]
ServeMemory = Callable[[Gateway], trio.abc.Stream]


@pytest.fixture
def serve_memory(nursery: trio.Nursery) -> ServeMemory:
    """Serve one connection of `gateway` over a memory stream; returns the client's end.

    Runs the gateway's heartbeat scheduler as serve_gateway would."""
    beating: set[int] = set()

    def serve(gateway: Gateway) -> trio.abc.Stream:
        if id(gateway) not in beating:
            beating.add(id(gateway))
            nursery.start_soon(gateway.heartbeats.run)
        server_stream, client_stream = trio.testing.memory_stream_pair()
        nursery.start_soon(serve_connection, gateway, server_stream)
        return client_stream

    return serve


@pytest.fixture
def open_ws(nursery: trio.Nursery, serve_memory: ServeMemory) -> Callable[..., Awaitable[Any]]:
    """Connect a trio-websocket client to `gateway` over a memory stream; hello is read."""

    async def open_ws(
        gateway: Gateway, headers: list[tuple[bytes, bytes]] | None = None, read_hello: bool = True
    ) -> trio_websocket.WebSocketConnection:
        client_stream = serve_memory(gateway)
        ws = await trio_websocket.wrap_client_stream(
            nursery, client_stream, "localhost", gateway.config.gateway.path, extra_headers=headers
        )
        if read_hello:
            hello = orjson.loads(await ws.get_message())
            assert hello["method"] == "gateway.hello"
        return ws

    return open_ws
