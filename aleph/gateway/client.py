"""One connected client, as the core sees it, whatever the transport.

A :class:`Client` owns the send end of its bounded outbound queue; the
transport's writer task owns the receive end. :meth:`Client.send` never
blocks: when the queue is full the client is a slow consumer and is closed
with 1008 rather than slowing down whoever is sending (a session's fan-out).
:meth:`Client.close` only asks for the close; the transport does it.

The client can also be called: :meth:`Client.call` sends a JSON-RPC request
to the peer (``agent.invoke``) and waits for its response, which the reader
hands back through :meth:`Client.resolve`.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Callable
from typing import Any

import attrs
import trio

from aleph.protocol import jsonrpc
from aleph.protocol.errors import RpcError
from aleph.security.tokens import Principal

__all__ = ["Client", "ClientGone", "PeerError", "new_client_id"]

log = logging.getLogger(__name__)

CLOSE_SLOW_CONSUMER = 1008


def new_client_id() -> str:
    return "c_" + secrets.token_hex(8)


class ClientGone(Exception):
    """The client disconnected before answering a call."""


class PeerError(Exception):
    """The peer answered a call with a JSON-RPC error object."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error
        message = error.get("message")
        super().__init__(message if isinstance(message, str) else "peer returned an error")


@attrs.define(eq=False)
class _Pending:
    done: trio.Event = attrs.Factory(trio.Event)
    response: jsonrpc.Response | None = None


@attrs.define(eq=False)
class Client:
    id: str
    remote: str  # the peer's address, the key for login lockout
    outbound: trio.MemorySendChannel[str] = attrs.field(repr=False)
    origin: str | None = None
    connected_at: float = 0.0  # wall clock
    principal: Principal | None = None
    nursery: trio.Nursery | None = attrs.field(default=None, repr=False)
    inflight: int = 0
    close_code: int | None = None
    close_reason: str = ""
    _close_requested: trio.Event = attrs.field(factory=trio.Event, repr=False)
    _closing: bool = attrs.field(default=False, repr=False)  # _close_requested, read cheaply
    _pending: dict[str, _Pending] = attrs.field(factory=dict, repr=False)
    _call_ids: itertools.count[int] = attrs.field(factory=itertools.count, repr=False)
    _close_hooks: list[Callable[[Client], None]] = attrs.field(factory=list, repr=False)
    gone: bool = False  # the transport has released the connection
    # Set by the transport while the reader handles a frame and the writer is
    # idle: the first frame sent goes here and the reader sends it itself.
    direct: list[str] | None = attrs.field(default=None, repr=False)
    writer_idle: bool = attrs.field(default=False, repr=False)  # see transport._handle

    @property
    def closing(self) -> bool:
        """A close was asked for (or the connection is gone): send nothing more."""
        return self._closing

    def send(self, text: str) -> bool:
        """Queue one frame. False if the client is gone or was just closed as too slow."""
        if self._closing:
            return False
        if self.direct is not None and not self.direct:
            self.direct.append(text)
            return True
        self.writer_idle = False
        try:
            self.outbound.send_nowait(text)
        except trio.WouldBlock:
            log.info("closing %s: outbound queue full (slow consumer)", self.id)
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: outbound queue full")
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    def notify(self, method: str, params: dict[str, Any]) -> bool:
        return self.send(jsonrpc.encode(jsonrpc.notification(method, params)))

    def close(self, code: int | None = 1000, reason: str = "") -> None:
        """Ask the transport to close this connection (first reason wins)."""
        if self.closing:
            return
        self.close_code, self.close_reason = code, reason
        self._closing = True
        self._close_requested.set()

    async def wait_closing(self) -> None:
        await self._close_requested.wait()

    def on_close(self, hook: Callable[[Client], None]) -> None:
        """Run `hook(client)` once the connection is gone (release what it held);
        at once if it is gone already."""
        if self.gone:
            hook(self)
            return
        self._close_hooks.append(hook)

    def closed(self) -> None:
        """Called by the transport when the connection is gone, exactly once."""
        self.close(None)
        self.gone = True
        for pending in self._pending.values():
            pending.done.set()
        hooks, self._close_hooks = self._close_hooks, []
        for hook in hooks:
            try:
                hook(self)
            except Exception:
                log.exception("close hook failed for %s", self.id)

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """Send a request to the peer and wait for its result.

        Raises PeerError for an error response and ClientGone if the client
        disconnects first. The caller bounds the wait with a cancel scope.
        """
        if self.closing:
            raise ClientGone(self.id)
        call_id = f"s{next(self._call_ids)}"
        pending = self._pending[call_id] = _Pending()
        try:
            if not self.send(jsonrpc.encode(jsonrpc.request(call_id, method, params))):
                raise ClientGone(self.id)
            await pending.done.wait()
        finally:
            del self._pending[call_id]
        if pending.response is None:
            raise ClientGone(self.id)
        if pending.response.error is not None:
            raise PeerError(pending.response.error)
        return pending.response.result

    def resolve(self, response: jsonrpc.Response) -> bool:
        """Hand a response from the peer to the call waiting for it."""
        pending = self._pending.get(response.id) if isinstance(response.id, str) else None
        if pending is None or pending.done.is_set():
            return False
        pending.response = response
        pending.done.set()
        return True

    def send_error(self, msg_id: jsonrpc.Id, error: RpcError) -> bool:
        return self.send(jsonrpc.encode(jsonrpc.error_response(msg_id, error)))
