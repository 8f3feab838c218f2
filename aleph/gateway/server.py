"""The gateway's transport-agnostic core: clients, method dispatch, state.

The transport calls :meth:`Gateway.connect` for every accepted connection,
:meth:`Gateway.handle_text` for every text frame, and
:meth:`Gateway.disconnect` when the connection is gone. Everything else
(authentication, dispatch, replies, readiness, health) happens here without
knowing what a socket is, so it is tested with in-memory clients.

Failure policy: an :class:`RpcError` from a handler is the client's answer;
any other exception is a bug, logged once with its traceback and answered
with a bare -32603, and the connection stays open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
import orjson
import trio

from aleph import __version__
from aleph.config import Config
from aleph.gateway.client import Client, new_client_id
from aleph.gateway.dispatch import CallContext, Method, MethodRegistry, structure_params
from aleph.gateway.heartbeat import Heartbeats
from aleph.protocol import jsonrpc
from aleph.protocol.errors import InternalError, RateLimited, RpcError
from aleph.security.limits import LoginLockout
from aleph.security.origin import OriginPolicy
from aleph.security.tokens import Principal, TokenRegistry

__all__ = ["PROTOCOL_VERSION", "Gateway"]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
PRE_AUTH_MAX_FRAME = 64 * 1024


def _lockout_from(config: Config) -> LoginLockout:
    limits = config.limits
    return LoginLockout(limits.login_failures, limits.login_failure_window, limits.login_lockout)


@attrs.define(eq=False)
class Gateway:
    config: Config
    tokens: TokenRegistry = attrs.Factory(TokenRegistry)
    registry: MethodRegistry = attrs.Factory(MethodRegistry)
    clients: dict[str, Client] = attrs.Factory(dict)
    lockout: LoginLockout = attrs.Factory(lambda self: _lockout_from(self.config), takes_self=True)
    origin_policy: OriginPolicy = attrs.Factory(
        lambda self: OriginPolicy.from_config(self.config.gateway.allowed_origins), takes_self=True
    )
    ready: bool = False
    draining: bool = False
    started_at: float = attrs.Factory(trio.current_time)
    # Parts of the daemon add a section to system.health and status: name -> () -> dict.
    health_sections: dict[str, Callable[[], dict[str, Any]]] = attrs.Factory(dict)
    # Set to ask every transport to stop accepting and close its clients.
    stopping: trio.Event = attrs.Factory(trio.Event)
    listen_addresses: list[str] = attrs.Factory(list)
    # Pings every connection; the transport runs it (Heartbeats.run).
    heartbeats: Heartbeats = attrs.Factory(lambda self: Heartbeats(self), takes_self=True)
    # One call context per connected client (client id -> context), made once.
    _contexts: dict[str, CallContext] = attrs.Factory(dict)

    # -- configuration -------------------------------------------------------

    def apply_config(self, config: Config) -> list[str]:
        """Take a reloaded config; returns the keys that need a restart to change."""
        old = self.config.gateway
        new = config.gateway
        needs_restart = [
            f"gateway.{key}"
            for key in ("host", "port", "path", "tls_cert", "tls_key")
            if getattr(old, key) != getattr(new, key)
        ]
        self.config = config
        self.origin_policy = OriginPolicy.from_config(new.allowed_origins)
        self.lockout.failures = config.limits.login_failures
        self.lockout.window = config.limits.login_failure_window
        self.lockout.lockout = config.limits.login_lockout
        return needs_restart

    # -- connections ---------------------------------------------------------

    def connect(
        self,
        outbound: trio.MemorySendChannel[str],
        *,
        remote: str,
        origin: str | None = None,
        principal: Principal | None = None,
    ) -> Client:
        """Register a new client and queue its `gateway.hello`."""
        client = Client(
            new_client_id(),
            remote,
            outbound,
            origin=origin,
            connected_at=time.time(),
            principal=principal,
        )
        self.clients[client.id] = client
        self._contexts[client.id] = CallContext(self, client)
        config = self.config.gateway
        client.notify(
            "gateway.hello",
            {
                "protocol": PROTOCOL_VERSION,
                "client_id": client.id,
                "server": {"name": "aleph", "version": __version__},
                "authenticated": principal is not None,
                "heartbeat_interval_ms": round(config.heartbeat_interval * 1000),
                "max_payload": config.max_payload,
                "auth_timeout_ms": round(config.auth_timeout * 1000),
            },
        )
        return client

    def close_token_connections(self, token_id: str, code: int, reason: str) -> int:
        """Close every connection that logged in with this token; how many."""
        closed = 0
        for client in list(self.clients.values()):
            if client.principal is not None and client.principal.token_id == token_id:
                client.close(code, reason)
                closed += 1
        return closed

    def disconnect(self, client: Client) -> None:
        self.clients.pop(client.id, None)
        self._contexts.pop(client.id, None)
        client.closed()

    def max_frame(self, client: Client) -> int:
        """The largest frame this client may send now."""
        if client.principal is None:
            return PRE_AUTH_MAX_FRAME
        return self.config.gateway.max_payload

    # -- frames --------------------------------------------------------------

    def handle_text(self, client: Client, text: str) -> None:
        """Handle one text frame: answer what can be answered now, spawn the rest."""
        frame = jsonrpc.parse(text)
        if not isinstance(frame, list):
            outcome = self._handle_item(client, frame)
            if type(outcome) is str:
                client.send(outcome)
            elif outcome is not None:
                self._spawn(client, self._finish_call, client, outcome)
            return
        replies: list[str] = []
        deferred: list[tuple[int | None, _Deferred]] = []
        for item in frame:
            outcome = self._handle_item(client, item)
            if isinstance(outcome, _Deferred):
                slot = None
                if outcome.is_request:
                    slot = len(replies)
                    replies.append("")
                deferred.append((slot, outcome))
            elif outcome is not None:
                replies.append(outcome)
        if deferred:
            self._spawn(client, self._finish_batch, client, replies, deferred)
        elif replies:
            client.send("[" + ",".join(replies) + "]")

    def _handle_item(self, client: Client, item: jsonrpc.Message) -> str | _Deferred | None:
        """A reply to send now, a call to await, or None when there is nothing to say.

        This is the path of every call, so it is written for speed: exact type
        checks, one call context per client, no objects built for a plain call
        but its reply.
        """
        if isinstance(item, jsonrpc.Request):
            msg_id, is_request = item.id, True
        elif isinstance(item, jsonrpc.Notification):
            msg_id, is_request = None, False
        elif isinstance(item, jsonrpc.Response):
            client.resolve(item)
            return None
        else:
            return _encode_error(item.id, item.error)
        ctx = self._contexts.get(client.id) or CallContext(self, client)
        try:
            method = self.registry.resolve(item.method, client.principal)
            params = structure_params(method.params, item.params)
            if not method.is_async:
                result = method.handler(ctx, params)
                return _encode_result(msg_id, result) if is_request else None
            limit = self.config.gateway.max_inflight
            if client.inflight >= limit:
                raise RateLimited(0.1, f"too many calls in flight (at most {limit})")
        except RpcError as exc:
            return _encode_error(msg_id, exc) if is_request else None
        except Exception:
            log.exception("method %s failed on %s", item.method, client.id)
            return _encode_error(msg_id, InternalError()) if is_request else None
        return _Deferred(method, ctx, params, msg_id, is_request)

    def _spawn(self, client: Client, fn: Callable[..., Any], *args: Any) -> None:
        if client.nursery is None or client.closing:
            return
        client.inflight += 1
        client.nursery.start_soon(fn, *args)

    async def _finish_call(self, client: Client, call: _Deferred) -> None:
        try:
            reply = await call.run()
        finally:
            client.inflight -= 1
        if call.is_request:
            client.send(reply)

    async def _finish_batch(
        self, client: Client, replies: list[str], deferred: list[tuple[int | None, _Deferred]]
    ) -> None:
        async def run_one(slot: int | None, call: _Deferred) -> None:
            reply = await call.run()
            if slot is not None:
                replies[slot] = reply

        try:
            async with trio.open_nursery() as nursery:
                for slot, call in deferred:
                    nursery.start_soon(run_one, slot, call)
        finally:
            client.inflight -= 1
        if replies:
            client.send("[" + ",".join(replies) + "]")

    # -- health --------------------------------------------------------------

    def uptime(self) -> float:
        return trio.current_time() - self.started_at

    def health(self) -> dict[str, Any]:
        clients = list(self.clients.values())
        report: dict[str, Any] = {
            "status": "draining" if self.draining else ("ready" if self.ready else "starting"),
            "uptime_s": round(self.uptime(), 3),
            "clients": {
                "connected": len(clients),
                "authenticated": sum(1 for c in clients if c.principal is not None),
                "owners": sum(1 for c in clients if c.principal and c.principal.is_owner),
                "guests": sum(1 for c in clients if c.principal and not c.principal.is_owner),
            },
        }
        for name, section in self.health_sections.items():
            try:
                report[name] = section()
            except Exception:
                log.exception("health section %s failed", name)
                report[name] = {"state": "unknown"}
        return report


@attrs.frozen
class _Deferred:
    """An async method call, structured and authorised, still to be run."""

    method: Method
    ctx: CallContext
    params: Any
    msg_id: jsonrpc.Id
    is_request: bool

    async def run(self) -> str:
        """The encoded reply (also computed for notifications, then dropped)."""
        try:
            result = await self.method.handler(self.ctx, self.params)
        except RpcError as exc:
            return _encode_error(self.msg_id, exc)
        except Exception:
            log.exception("method %s failed on %s", self.method.name, self.ctx.client.id)
            return _encode_error(self.msg_id, InternalError())
        return _encode_result(self.msg_id, result)


def _encode_result(msg_id: jsonrpc.Id, result: Any) -> str:
    try:
        return orjson.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}).decode()
    except TypeError:
        log.error("result of call %r is not JSON-serialisable", msg_id)
        return _encode_error(msg_id, InternalError("result could not be encoded as JSON"))


def _encode_error(msg_id: jsonrpc.Id, error: RpcError) -> str:
    try:
        return jsonrpc.encode(jsonrpc.error_response(msg_id, error))
    except InternalError:
        return jsonrpc.encode(jsonrpc.error_response(msg_id, InternalError()))
