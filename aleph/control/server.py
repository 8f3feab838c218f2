"""The control socket: a Unix stream socket for the operator, JSON-RPC 2.0 per line.

::

    serve_control
    ├── acceptor: trio.serve_listeners (stopped when the gateway stops)
    └── peers nursery: one task per connection
        └── serve_peer: check SO_PEERCRED, then read a line, answer it, repeat

The socket is created with mode 0600 (a umask of 0o177 around ``bind``, so
there is no moment when it is more open), in a directory created 0700 if
missing. A file already at the path is removed only if it is a socket that
nobody answers on (a crash left it); a live socket means another daemon is
running, and anything else is left alone: both refuse to start
(:class:`ControlSocketError`, an OSError, so the daemon exits 71).

Every peer's credentials are read with SO_PEERCRED: only root and the
daemon's own uid are served. Anyone else gets one -32002 error line, is
logged, and is disconnected. Requests on a connection are answered in order;
a line longer than :data:`MAX_LINE` is answered with -32600 and the
connection closed.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio

from aleph.gateway.dispatch import structure_params
from aleph.protocol import jsonrpc
from aleph.protocol.errors import (
    Forbidden,
    InternalError,
    InvalidRequest,
    MethodNotFound,
    RpcError,
)

__all__ = [
    "MAX_LINE",
    "ControlServer",
    "ControlSocketError",
    "Handler",
    "PeerCredentials",
    "bind_control_socket",
    "serve_control",
]

log = logging.getLogger(__name__)

MAX_LINE = 1024 * 1024
CLOSE_GRACE = 2.0  # seconds for control calls in progress to answer once the daemon stops

Handler = Callable[[Any], Awaitable[Any]]


class ControlSocketError(OSError):
    """The control socket cannot be created at its path."""


@attrs.frozen
class PeerCredentials:
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: trio.socket.SocketType) -> PeerCredentials:
    """Who is at the other end of a Unix socket, as the kernel saw them at connect."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return PeerCredentials(pid, uid, gid)


def _remove_stale(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlSocketError(
            errno.EEXIST, f"{path} exists and is not a socket; not removing it"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        os.unlink(path)  # nobody listens: left behind by a crash
        log.info("removed a stale control socket at %s", path)
        return
    finally:
        probe.close()
    raise ControlSocketError(
        errno.EADDRINUSE, f"{path}: another daemon is listening on this control socket"
    )


async def bind_control_socket(path: Path, backlog: int = 16) -> trio.SocketListener:
    """Create the listening socket at `path`, mode 0600. Raises ControlSocketError/OSError."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        # The umask is process-wide: bind synchronously, so that no other task runs
        # (and creates files) while it is narrowed. The socket is never more open.
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    await trio.lowlevel.checkpoint()
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


@attrs.define(eq=False)
class ControlServer:
    """The method table and the peer policy of the control socket."""

    path: Path
    methods: dict[str, tuple[Handler, type | None]] = attrs.Factory(dict)
    allowed_uids: frozenset[int] = attrs.Factory(lambda: frozenset({0, os.getuid()}))
    peers: int = 0  # connections being served now
    refused: int = 0  # peers refused since start
    stopping: bool = False
    # Connections waiting for their next line: cancelled at once when the daemon stops.
    _idle: set[trio.CancelScope] = attrs.field(factory=set, init=False, repr=False)

    def add(self, name: str, handler: Handler, params: type | None = None) -> None:
        if name in self.methods:
            raise ValueError(f"control method {name!r} is registered twice")
        self.methods[name] = (handler, params)

    async def call(self, message: jsonrpc.Message) -> str | None:
        """The encoded reply to one parsed message (None for a notification)."""
        if isinstance(message, jsonrpc.Response):
            return None  # we never send requests, so nothing waits for a response
        if isinstance(message, jsonrpc.Invalid):
            return _encode_error(message.id, message.error)
        msg_id = message.id if isinstance(message, jsonrpc.Request) else None
        try:
            entry = self.methods.get(message.method)
            if entry is None:
                raise MethodNotFound(f"method not found: {message.method[:100]}")
            handler, params_cls = entry
            params = structure_params(params_cls, message.params)
            result = await handler(params)
            reply = jsonrpc.encode(jsonrpc.result_response(msg_id, result))
        except RpcError as exc:
            reply = _encode_error(msg_id, exc)
        except Exception:
            log.exception("control method %s failed", message.method)
            reply = _encode_error(msg_id, InternalError())
        return reply if isinstance(message, jsonrpc.Request) else None

    async def answer(self, line: bytes) -> str | None:
        """The reply to one line: a single message or a batch."""
        frame = jsonrpc.parse(line)
        if not isinstance(frame, list):
            return await self.call(frame)
        replies = [reply for item in frame if (reply := await self.call(item)) is not None]
        return "[" + ",".join(replies) + "]" if replies else None

    def stop(self) -> None:
        """Stop reading: idle connections end now, calls in progress may still answer."""
        self.stopping = True
        for scope in self._idle:
            scope.cancel()

    async def receive_idle(self, stream: trio.SocketStream) -> bytes:
        """Wait for more bytes from a peer; b"" at its end or once the server stops."""
        if self.stopping:
            return b""
        with trio.CancelScope() as scope:
            self._idle.add(scope)
            try:
                return await stream.receive_some(65536)
            finally:
                self._idle.discard(scope)
        return b""


def _encode_error(msg_id: jsonrpc.Id, error: RpcError) -> str:
    return jsonrpc.encode(jsonrpc.error_response(msg_id, error))


async def serve_peer(server: ControlServer, stream: trio.SocketStream) -> None:
    """Serve one connection: check who it is, then answer line by line."""
    try:
        peer = peer_credentials(stream.socket)
        if peer.uid not in server.allowed_uids:
            server.refused += 1
            log.warning(
                "control socket: refused pid %d uid %d (only root and uid %d may use it)",
                peer.pid,
                peer.uid,
                os.getuid(),
            )
            refusal = Forbidden(f"uid {peer.uid} may not use this control socket")
            await stream.send_all((_encode_error(None, refusal) + "\n").encode())
            await _linger(stream)
            return
        server.peers += 1
        try:
            await _serve_lines(server, stream)
        finally:
            server.peers -= 1
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # the peer went away
    except Exception:
        log.exception("control connection failed")  # only this connection ends
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def _serve_lines(server: ControlServer, stream: trio.SocketStream) -> None:
    buffer = bytearray()
    while data := await server.receive_idle(stream):
        buffer += data
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if line.strip():
                reply = await server.answer(line)
                if reply is not None:
                    await stream.send_all(reply.encode() + b"\n")
        if len(buffer) > MAX_LINE:
            error = InvalidRequest(f"request line longer than {MAX_LINE} bytes")
            await stream.send_all((_encode_error(None, error) + "\n").encode())
            await _linger(stream)
            return


async def _linger(stream: trio.SocketStream) -> None:
    """Close politely: closing with unread input would reset the peer and lose our reply."""
    await stream.send_eof()
    with trio.move_on_after(CLOSE_GRACE):
        while await stream.receive_some(65536):
            pass


async def serve_control(
    server: ControlServer,
    stopping: trio.Event,
    listener: trio.SocketListener | None = None,
    *,
    task_status: trio.TaskStatus[trio.SocketListener] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the control socket until `stopping` is set; remove the socket file after.

    Reports the listener once it accepts connections. Calls in progress when
    the stop comes get :data:`CLOSE_GRACE` seconds to answer (the reply to
    ``shutdown`` itself), then are cancelled.
    """
    if listener is None:
        listener = await bind_control_socket(server.path)
    inode = os.stat(server.path).st_ino
    try:
        async with trio.open_nursery() as peers:
            async with trio.open_nursery() as acceptor:
                handler = partial(serve_peer, server)
                await acceptor.start(
                    partial(trio.serve_listeners, handler, [listener], handler_nursery=peers)
                )
                log.info("control socket listening on %s", server.path)
                task_status.started(listener)
                await stopping.wait()
                acceptor.cancel_scope.cancel()
            server.stop()
            peers.cancel_scope.deadline = trio.current_time() + CLOSE_GRACE
    finally:
        with trio.CancelScope(shield=True):
            await listener.aclose()
        _unlink_if_ours(server.path, inode)


def _unlink_if_ours(path: Path, inode: int) -> None:
    """Remove the socket file unless another process has replaced it since."""
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass
