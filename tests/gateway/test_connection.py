"""What a connected client sees: login, errors, limits, closes. Real sockets."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import trio
import trio.lowlevel
import trio_websocket
from wsproto.events import TextMessage

from aleph.client import CallFailed
from aleph.gateway import CallContext, Gateway
from tests.conftest import LiveDaemon
from tests.gateway.wsutil import RawWsClient


@contextlib.asynccontextmanager
async def raw_ws(
    live: LiveDaemon, **kwargs: Any
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A bare trio-websocket client with the hello already read."""
    async with trio.open_nursery() as nursery:
        ws = await trio_websocket.connect_websocket_url(nursery, live.url, **kwargs)
        try:
            hello = orjson.loads(await ws.get_message())
            assert hello["method"] == "gateway.hello"
            yield ws
        finally:
            with trio.move_on_after(2):
                await ws.aclose()
            await ws._stream.aclose()  # trio-websocket's client leaks it otherwise
            nursery.cancel_scope.cancel()


async def call(ws: trio_websocket.WebSocketConnection, method: str, params: Any = None) -> Any:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        message["params"] = params
    await ws.send_message(orjson.dumps(message).decode())
    return orjson.loads(await ws.get_message())


async def closed_code(ws: trio_websocket.WebSocketConnection) -> int | None:
    with trio.fail_after(10):
        while True:
            try:
                await ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                return exc.reason.code


async def test_hello_says_what_the_client_needs(live: LiveDaemon) -> None:
    async with live.connect(token=None) as client:
        hello = client.hello
    assert hello["protocol"] == 1
    assert hello["client_id"].startswith("c_")
    assert hello["server"]["name"] == "aleph"
    assert hello["authenticated"] is False
    assert hello["heartbeat_interval_ms"] == 30000
    assert hello["max_payload"] == 1048576
    assert hello["auth_timeout_ms"] == 10000


async def test_before_login_only_public_methods(live: LiveDaemon) -> None:
    async with live.connect(token=None) as client:
        assert "time" in await client.call("system.ping")
        info = await client.call("system.info")
        assert (info["name"], info["protocol"]) == ("aleph", 1)
        with pytest.raises(CallFailed) as denied:
            await client.call("system.health")
        assert denied.value.code == -32001
        with pytest.raises(CallFailed) as unknown:
            await client.call("no.such.method")
        assert unknown.value.code == -32601


async def test_login_result_and_bad_params(live: LiveDaemon) -> None:
    async with live.connect(token=None) as client:
        with pytest.raises(CallFailed) as wrong_type:
            await client.call("auth.login", {"token": 123})
        assert wrong_type.value.code == -32602
        assert wrong_type.value.data == {"errors": ["token: expected str, got int 123"]}
        with pytest.raises(CallFailed) as extra:
            await client.call("auth.login", {"token": "x", "nope": 1})
        assert extra.value.code == -32602
        with pytest.raises(CallFailed) as bad:
            await client.call("auth.login", {"token": "not-the-token"})
        assert (bad.value.code, bad.value.message) == (-32001, "bad token")
        result = await client.login(live.token)
        assert result == {
            "principal": {"id": "owner", "role": "owner"},
            "client_id": client.client_id,
        }
        health = await client.call("system.health")
        assert health["clients"]["authenticated"] == 1


async def test_five_failed_logins_lock_the_address_even_for_the_right_token(
    live: LiveDaemon,
) -> None:
    async with live.connect(token=None) as client:
        for _ in range(5):
            with pytest.raises(CallFailed):
                await client.call("auth.login", {"token": "wrong"})
        with pytest.raises(CallFailed) as locked:
            await client.login(live.token)
        assert locked.value.code == -32004
        assert 299_000 <= locked.value.data["retry_after_ms"] <= 300_000
    async with live.connect(token=None) as other_connection:
        with pytest.raises(CallFailed) as still:
            await other_connection.login(live.token)
        assert still.value.code == -32004


async def test_guests(start_daemon: Any) -> None:
    closed = await start_daemon()
    async with closed.connect(token=None) as client:
        with pytest.raises(CallFailed) as refused:
            await client.call("auth.login", {"guest": True})
        assert refused.value.code == -32002
    open_ = await start_daemon(gateway={"allow_guests": True})
    async with open_.connect(token=None) as client:
        result = await client.call("auth.login", {"guest": True})
        assert result["principal"]["role"] == "guest"
        assert result["principal"]["id"] == f"guest:{client.client_id}"
        with pytest.raises(CallFailed) as owner_only:
            await client.call("system.health")
        assert owner_only.value.code == -32002
        with pytest.raises(CallFailed) as switch:
            await client.login(open_.token)
        assert switch.value.code == -32002


async def test_pre_auth_frames_are_capped_at_64_kib(live: LiveDaemon) -> None:
    async with raw_ws(live) as ws:
        await ws.send_message("x" * (64 * 1024 + 1))
        assert await closed_code(ws) == 1009


async def test_after_login_frames_up_to_max_payload_then_1009(live: LiveDaemon) -> None:
    async with raw_ws(live) as ws:
        assert "result" in await call(ws, "auth.login", {"token": live.token})
        big = {"jsonrpc": "2.0", "method": "system.ping", "id": "x" * 500_000}
        await ws.send_message(orjson.dumps(big).decode())
        reply = orjson.loads(await ws.get_message())
        assert reply["id"] == big["id"]
        await ws.send_message("y" * (1_048_576 + 1))
        assert await closed_code(ws) == 1009


async def test_binary_frame_closes_1003(live: LiveDaemon) -> None:
    async with raw_ws(live) as ws:
        await ws.send_message(b"\x00\x01")
        assert await closed_code(ws) == 1003


async def test_malformed_input_gets_errors_and_the_connection_stays(live: LiveDaemon) -> None:
    async with raw_ws(live) as ws:
        for text in [
            "{",
            "[]",
            '"str"',
            "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
        ]:
            await ws.send_message(text)
            reply = orjson.loads(await ws.get_message())
            assert reply["id"] is None
            assert reply["error"]["code"] in (-32700, -32600)
        assert "result" in await call(ws, "system.ping")


async def test_a_crashing_method_answers_32603_without_details(
    live: LiveDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(ctx: CallContext, params: None) -> None:
        raise RuntimeError("secret internal detail")

    live.gateway.registry.add("test.explode", explode)
    async with live.connect() as client:
        with caplog.at_level(logging.ERROR), pytest.raises(CallFailed) as caught:
            await client.call("test.explode")
        assert (caught.value.code, caught.value.message) == (-32603, "internal error")
        assert caught.value.data is None
        assert "time" in await client.call("system.ping")
    assert sum("test.explode failed" in r.getMessage() for r in caplog.records) == 1


async def test_a_failing_connection_closes_1011_alone(
    live: LiveDaemon, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with live.connect() as bystander, raw_ws(live) as victim:
        original = Gateway.handle_text

        def handle_text(self: Gateway, client: Any, text: str) -> None:
            if text == "boom":
                raise RuntimeError("bug in the reader path")
            original(self, client, text)

        monkeypatch.setattr(Gateway, "handle_text", handle_text)
        with caplog.at_level(logging.ERROR):
            await victim.send_message("boom")
            assert await closed_code(victim) == 1011
        assert "time" in await bystander.call("system.ping")
    assert (
        sum("failed" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR) == 1
    )


async def test_slow_consumer_is_closed_1008(start_daemon: Any) -> None:
    """Server-pushed frames (a session's events) to a client that stopped reading
    fill the socket buffers, then its queue: the client is closed, not buffered."""
    live = await start_daemon(gateway={"send_queue_size": 16})

    async def flood(ctx: CallContext, params: None) -> int:
        sent = 0
        while ctx.client.notify("test.event", {"n": sent, "pad": "x" * 1000}):
            sent += 1
            await trio.lowlevel.checkpoint()  # let the writer drain into the socket while it can
        return sent

    live.gateway.registry.add("test.flood", flood)
    stream = await trio.open_tcp_stream("127.0.0.1", live.port)
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import Request, TextMessage

    peer = WSConnection(ConnectionType.CLIENT)
    async with stream:
        await stream.send_all(peer.send(Request(host="localhost", target="/ws")))
        hello = None
        while hello is None:  # the upgrade's answer, then gateway.hello
            peer.receive_data(await stream.receive_some())
            for event in peer.events():
                if isinstance(event, TextMessage):
                    hello = orjson.loads(event.data)
        client = live.gateway.clients[hello["params"]["client_id"]]
        released = trio.Event()
        client.on_close(lambda _: released.set())
        for message in (
            {"jsonrpc": "2.0", "method": "auth.login", "params": {"token": live.token}, "id": 0},
            {"jsonrpc": "2.0", "method": "test.flood", "id": 1},
        ):
            await stream.send_all(peer.send(TextMessage(orjson.dumps(message).decode())))
        # Never read again: once the kernel buffers are full, the 16-frame queue fills.
        with trio.fail_after(30):
            await released.wait()
    assert client.close_code == 1008
    assert live.gateway.clients == {}


async def test_too_many_calls_in_flight_are_refused(start_daemon: Any) -> None:
    live = await start_daemon(gateway={"max_inflight": 2})
    release, both_running = trio.Event(), trio.Event()
    running = 0

    async def slow(ctx: CallContext, params: None) -> str:
        nonlocal running
        running += 1
        if running == 2:
            both_running.set()
        await release.wait()
        return "done"

    live.gateway.registry.add("test.slow", slow)
    async with live.connect() as client, trio.open_nursery() as nursery:
        results: list[Any] = []

        async def run() -> None:
            results.append(await client.call("test.slow"))

        nursery.start_soon(run)
        nursery.start_soon(run)
        with trio.fail_after(5):
            await both_running.wait()
        with pytest.raises(CallFailed) as refused:
            await client.call("test.slow")
        assert refused.value.code == -32004
        release.set()
    assert results == ["done", "done"]


async def test_shutdown_closes_clients_1001(live: LiveDaemon) -> None:
    async with raw_ws(live) as ws:
        live.daemon.stop_requested.set()
        assert await closed_code(ws) == 1001


async def test_pipelined_frames_are_answered_in_order(live: LiveDaemon) -> None:
    """A client that writes its login and two calls in one TCP write as soon as
    the upgrade is accepted, before reading the hello, gets every answer in order."""
    login = {"jsonrpc": "2.0", "id": 1, "method": "auth.login", "params": {"token": live.token}}
    pings = [{"jsonrpc": "2.0", "id": n, "method": "system.ping"} for n in (2, 3)]
    stream = await trio.open_tcp_stream("127.0.0.1", live.port)
    async with stream:
        peer = RawWsClient(stream)
        await peer.handshake()
        await stream.send_all(
            b"".join(
                peer.ws.send(TextMessage(orjson.dumps(message).decode()))
                for message in [login, *pings]
            )
        )
        texts: list[Any] = []
        with trio.fail_after(5):
            while len(texts) < 4:
                data = await stream.receive_some()
                assert data, "the daemon closed the connection"
                peer.ws.receive_data(data)
                events = peer.ws.events()
                texts += [orjson.loads(e.data) for e in events if isinstance(e, TextMessage)]
    assert texts[0]["method"] == "gateway.hello"
    assert [reply["id"] for reply in texts[1:]] == [1, 2, 3]
    assert texts[1]["result"]["principal"]["role"] == "owner"
    assert all("time" in reply["result"] for reply in texts[2:])
