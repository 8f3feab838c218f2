"""The WebSocket transport: TCP (or TLS) in, trio-websocket, the gateway core.

Task tree of one :func:`serve_gateway`::

    serve_gateway
    ├── acceptor: trio.serve_listeners and Heartbeats.run (cancelled when the gateway stops)
    └── connections nursery: one task per TCP connection
        └── serve_connection: read the head; answer HTTP or upgrade
            └── websocket nursery: trio-websocket's reader task, which hands each
                │   message to Gateway.handle_text itself (see _FrameSink), and
                ├── writer    the client's bounded outbound queue -> the socket
                ├── the auth deadline, until the client has logged in
                ├── a ping, when Heartbeats (one task for all connections) says one is due
                └── async method calls of this client

Whatever a connection does wrong, only that connection ends: an unexpected
exception is logged once and the connection closed with 1011.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest
from wsproto import ConnectionType, WSConnection

from aleph.gateway.client import Client
from aleph.gateway.handshake import Admitted, admit, route_plain
from aleph.gateway.http import HttpError, ReplayStream, read_head, response_bytes
from aleph.gateway.server import PRE_AUTH_MAX_FRAME, Gateway

__all__ = ["serve_gateway"]

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_AUTH_TIMEOUT = 4001
CLOSE_TIMEOUT = 2.0  # seconds to finish a closing handshake before dropping TCP
LINGER_TIME = 1.0  # seconds to drain a refused request's body before closing
LINGER_BYTES = 256 * 1024


def _ssl_context(gateway: Gateway) -> ssl.SSLContext | None:
    config = gateway.config.gateway
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def _remote(stream: trio.abc.Stream) -> str:
    socket_stream = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if not isinstance(socket_stream, trio.SocketStream):
        return "unknown"
    try:
        address = socket_stream.socket.getpeername()
    except OSError:
        return "unknown"
    return str(address[0]) if isinstance(address, tuple) else str(address)


async def serve_gateway(
    gateway: Gateway,
    listeners: list[trio.SocketListener] | None = None,
    *,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until `gateway.stopping` is set, then close every client (1001).

    Reports its listeners through `task_status` once it accepts connections.
    After the stop it waits up to `daemon.shutdown_grace` for connections to
    finish closing, then cancels what is left.
    """
    config = gateway.config.gateway
    if listeners is None:
        listeners = await trio.open_tcp_listeners(config.port, host=config.host or None)
    context = _ssl_context(gateway)
    handler = partial(serve_connection, gateway, ssl_context=context)
    scheme = "wss" if context else "ws"
    gateway.listen_addresses = [
        _format_address(scheme, listener.socket.getsockname(), config.path)
        for listener in listeners
    ]
    async with trio.open_nursery() as connections:
        async with trio.open_nursery() as acceptor:
            acceptor.start_soon(gateway.heartbeats.run)
            await acceptor.start(
                partial(trio.serve_listeners, handler, listeners, handler_nursery=connections)
            )
            task_status.started(listeners)
            await gateway.stopping.wait()
            acceptor.cancel_scope.cancel()
        for client in list(gateway.clients.values()):
            client.close(CLOSE_GOING_AWAY, "server shutting down")
        connections.cancel_scope.deadline = (
            trio.current_time() + gateway.config.daemon.shutdown_grace + CLOSE_TIMEOUT
        )


def _format_address(scheme: str, sockname: tuple[object, ...], path: str) -> str:
    host, port = sockname[0], sockname[1]
    host_text = f"[{host}]" if ":" in str(host) else str(host)
    return f"{scheme}://{host_text}:{port}{path}"


async def serve_connection(
    gateway: Gateway, stream: trio.abc.Stream, *, ssl_context: ssl.SSLContext | None = None
) -> None:
    """Handle one TCP connection from its first byte to its close."""
    if ssl_context is not None:
        stream = trio.SSLStream(stream, ssl_context, server_side=True)
    remote = _remote(stream)
    try:
        await _serve_stream(gateway, stream, remote)
    except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError):
        pass  # the peer went away; nothing to report
    except Exception:
        log.exception("connection from %s failed", remote)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
            await stream.aclose()


async def _serve_stream(gateway: Gateway, stream: trio.abc.Stream, remote: str) -> None:
    config = gateway.config.gateway
    with trio.move_on_after(config.handshake_timeout) as head_scope:
        try:
            head = await read_head(stream)
        except HttpError as exc:
            await stream.send_all(response_bytes(exc.status, {"error": str(exc)[:200]}))
            await _linger(stream)
            return
    if head_scope.cancelled_caught:
        await stream.send_all(response_bytes(408, {"error": "request head timeout"}))
        return
    if head is None:
        return
    if not head.is_websocket_upgrade:
        status, body = route_plain(gateway, head)
        await stream.send_all(response_bytes(status, body, head_only=head.method == "HEAD"))
        return
    decision = admit(gateway, head, remote, trio.current_time(), time.time())
    if not isinstance(decision, Admitted):
        log.info("refused upgrade from %s: %d %s", remote, decision.status, decision.message)
        body = {"error": decision.message}
        await stream.send_all(response_bytes(decision.status, body, headers=decision.headers))
        return
    origin, replay = head.header("origin"), ReplayStream(stream, head.raw)
    del head  # else its headers stay in memory as long as the connection: ~1.8 KiB each
    async with trio.open_nursery() as ws_nursery:
        max_size = PRE_AUTH_MAX_FRAME if decision.principal is None else config.max_payload
        ws: WebSocketConnection | None = None
        sink = _FrameSink()
        with trio.move_on_after(config.handshake_timeout):
            request = await _wrap_server_stream(ws_nursery, replay, sink, max_size)
            ws = await request.accept()
            if not replay.replay:
                # The head is consumed: read the socket directly from now on, without
                # the wrapper's extra call on every receive and send.
                ws._stream = stream
        if ws is not None:
            await _serve_websocket(gateway, ws, sink, remote, origin, decision)
        ws_nursery.cancel_scope.cancel()


async def _linger(stream: trio.abc.Stream) -> None:
    """Read and drop what the peer is still sending, briefly, before closing: closing
    with unread input makes the kernel reset the connection, and the peer would
    lose the error response we just sent."""
    with trio.move_on_after(LINGER_TIME):
        drained = 0
        while drained < LINGER_BYTES:
            data = await stream.receive_some(65536)
            if not data:
                return
            drained += len(data)


class _FrameSink:
    """Where trio-websocket's reader task puts each complete message.

    trio-websocket's reader puts every message into a memory channel for
    another task to take with ``get_message()``: a task switch per message,
    about a quarter of the server CPU of a round trip (an echo answered from
    the reader task costs x0.72 of trio-websocket's own echo server,
    docs/performance.md). This object stands in for that channel's send end
    (the reader calls ``send`` and ``aclose`` on it, and enters it with
    ``async with``), so the message is handled in the reader task itself.

    Messages that arrive before :meth:`attach` wait for it; an end before
    :meth:`attach` is passed on when it comes.
    """

    def __init__(self) -> None:
        self._on_message: Callable[[str | bytes], Awaitable[None]] | None = None
        self._on_end: Callable[[], None] | None = None
        self._attached = trio.Event()
        self._ended = False

    def attach(
        self, on_message: Callable[[str | bytes], Awaitable[None]], on_end: Callable[[], None]
    ) -> None:
        self._on_message, self._on_end = on_message, on_end
        self._attached.set()
        if self._ended:
            on_end()

    async def send(self, message: str | bytes) -> None:
        if self._on_message is None:
            await self._attached.wait()
            assert self._on_message is not None
        await self._on_message(message)

    async def aclose(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._on_end is not None:
            self._on_end()

    async def __aenter__(self) -> _FrameSink:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def _wrap_server_stream(
    nursery: trio.Nursery, stream: trio.abc.Stream, sink: _FrameSink, max_size: int
) -> WebSocketRequest:
    """trio_websocket.wrap_server_stream, with the message channel replaced by `sink`.

    Relies on three private names of trio-websocket 0.12 (pinned below 0.13 in
    pyproject.toml): ``_send_channel``, ``_reader_task`` and ``_get_request``;
    tests/gateway covers every path through them.
    """
    connection = WebSocketConnection(
        stream, WSConnection(ConnectionType.SERVER), max_message_size=max_size
    )
    channel: Any = sink  # quacks like the MemorySendChannel it replaces
    connection._send_channel = channel
    nursery.start_soon(connection._reader_task)
    request: WebSocketRequest = await connection._get_request()
    return request


async def _serve_websocket(
    gateway: Gateway,
    ws: WebSocketConnection,
    sink: _FrameSink,
    remote: str,
    origin: str | None,
    decision: Admitted,
) -> None:
    send, receive = trio.open_memory_channel[str](gateway.config.gateway.send_queue_size)
    client = gateway.connect(send, remote=remote, origin=origin, principal=decision.principal)
    try:
        async with trio.open_nursery() as tasks:
            client.nursery = tasks
            tasks.start_soon(_writer, client, ws, receive)
            if client.principal is None:
                deadline = trio.current_time() + gateway.config.gateway.auth_timeout
                tasks.start_soon(_auth_deadline, client, deadline)
            gateway.heartbeats.add(client, partial(_ping, ws), tasks)
            sink.attach(partial(_on_message, gateway, client, ws), partial(client.close, None))
            await client.wait_closing()
            tasks.cancel_scope.cancel()
    except Exception:
        log.exception("connection %s failed", client.id)
        client.close(CLOSE_INTERNAL, "internal error")
    finally:
        gateway.disconnect(client)
        send.close()
        receive.close()
        if client.close_code is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await ws.aclose(client.close_code, client.close_reason or None)


async def _auth_deadline(client: Client, deadline: float) -> None:
    await trio.sleep_until(deadline)
    if client.principal is None:
        client.close(CLOSE_AUTH_TIMEOUT, "authentication timeout")


async def _on_message(
    gateway: Gateway, client: Client, ws: WebSocketConnection, message: str | bytes
) -> None:
    """One message, in trio-websocket's reader task; the reader reads on when this returns.

    ConnectionClosed is left to the reader (it ends on it); any other
    exception is a bug: logged once, and this connection alone is closed (1011).
    """
    if client.closing:
        return  # closing: what the client still sends is not answered
    try:
        if isinstance(message, bytes):
            client.close(CLOSE_UNSUPPORTED, "binary frames are not accepted")
            return
        if len(message) > gateway.max_frame(client):
            client.close(CLOSE_TOO_BIG, "frame too large")
            return
        authenticated = client.principal is not None
        await _handle(gateway, client, ws, message)
        if not authenticated and client.principal is not None:
            # trio-websocket reads this limit for every incoming frame; raise it
            # from the pre-auth 64 KiB to max_payload now that the client is known.
            ws._max_message_size = gateway.config.gateway.max_payload
    except ConnectionClosed:
        raise
    except Exception:
        log.exception("connection %s failed", client.id)
        client.close(CLOSE_INTERNAL, "internal error")


async def _handle(gateway: Gateway, client: Client, ws: WebSocketConnection, message: str) -> None:
    """Handle a frame; send its immediate reply from here when the writer is idle.

    Handing the reply to the writer task costs a task switch per round trip
    (docs/performance.md). When the writer waits with nothing queued, nothing
    is in flight, so the reader may send the first frame itself without
    reordering anything: it takes the socket's FIFO send lock before it
    yields, so whatever is queued meanwhile goes out after it. `writer_idle`
    is exact: the writer sets it only when it waits on an empty queue, and
    Client.send clears it with every frame it queues.
    """
    if client.writer_idle:
        client.direct = []
    try:
        gateway.handle_text(client, message)
    finally:
        direct, client.direct = client.direct, None
    if direct:
        await ws.send_message(direct[0])


async def _writer(
    client: Client, ws: WebSocketConnection, receive: trio.MemoryReceiveChannel[str]
) -> None:
    try:
        while True:
            try:
                text = receive.receive_nowait()
            except trio.WouldBlock:
                client.writer_idle = True  # nothing queued, nothing in flight
                try:
                    text = await receive.receive()
                except trio.EndOfChannel:
                    return
            await ws.send_message(text)
    except ConnectionClosed:
        client.close(None)


async def _ping(ws: WebSocketConnection) -> bool:
    """One WebSocket ping: True once the pong arrives, False if the connection closed."""
    try:
        await ws.ping()
    except ConnectionClosed:
        return False
    return True
