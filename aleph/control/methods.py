"""The control socket's methods, acting on the running daemon.

Each method takes its params as a frozen attrs class (structured strictly,
-32602 on a mismatch) and returns plain JSON data; refusals are RpcErrors
with the gateway's codes, and ``config.reload`` adds -32012 for a refused
configuration. ``aleph ctl`` prints these results as tables.

Closing codes that reach WebSocket clients from here:

- 4003 "token revoked": ``tokens.revoke`` closes every connection that logged
  in with the revoked token, at once.
- 4004 "kicked by the operator": ``clients.kick``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import attrs

from aleph import __version__
from aleph.config import ConfigError, load_config, masked
from aleph.control import drain as draining
from aleph.control.server import ControlServer
from aleph.protocol.errors import Forbidden, InvalidParams, NotFound, RpcError
from aleph.security.pairing import PairingError, PairingRequest, UnknownPairingCode
from aleph.security.token_store import TokenStoreError, UnknownToken
from aleph.security.tokens import TokenRecord

if TYPE_CHECKING:
    from aleph.daemon import Daemon
    from aleph.gateway import Gateway

__all__ = [
    "CLOSE_KICKED",
    "CLOSE_TOKEN_REVOKED",
    "ReloadRefused",
    "register_control_methods",
]

log = logging.getLogger(__name__)

CLOSE_TOKEN_REVOKED = 4003
CLOSE_KICKED = 4004


class ReloadRefused(RpcError):
    """The configuration file has problems; the running config is kept."""

    code: ClassVar[int] = -32012
    default_message: ClassVar[str] = "reload refused: the configuration is not valid"


def iso(wall: float | None) -> str | None:
    """Wall-clock seconds as ISO-8601 UTC (seconds precision), None stays None."""
    if wall is None:
        return None
    return dt.datetime.fromtimestamp(wall, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.frozen
class KickParams:
    client_id: str
    reason: str = "kicked by the operator"


@attrs.frozen
class TokenCreateParams:
    name: str
    role: Literal["owner", "guest"] = "guest"
    expires_in: float | None = None  # seconds from now


@attrs.frozen
class TokenRevokeParams:
    token: str  # id or name


@attrs.frozen
class CodeParams:
    code: str


@attrs.frozen
class DrainParams:
    timeout: float | None = None  # seconds; default control.drain_timeout


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@attrs.define(eq=False)
class ControlMethods:
    """The handlers, bound to one daemon."""

    daemon: Daemon

    @property
    def gateway(self) -> Gateway:
        return self.daemon.gateway

    # -- status and clients --------------------------------------------------

    async def status(self, params: None) -> dict[str, Any]:
        config = self.daemon.config
        report: dict[str, Any] = {
            "name": "aleph",
            "version": __version__,
            "pid": os.getpid(),
        }
        report.update(self.gateway.health())
        report["listening"] = list(self.gateway.listen_addresses)
        report["control_socket"] = str(config.control_socket())
        report.setdefault(
            "interfaces",
            {
                "telegram": {"state": "enabled" if config.telegram.enabled else "disabled"},
                "discord": {"state": "enabled" if config.discord.enabled else "disabled"},
            },
        )
        report["provider"] = {
            "kind": config.provider.kind,
            "model": config.provider.model,
            "base_url": config.provider.base_url,
        }
        report["tokens"] = len(self.gateway.tokens.records())
        if self.daemon.pairing is not None:
            report["pairing"] = {
                "pending": len(await self.daemon.pairing.pending()),
                "paired": len(self.daemon.pairing.paired()),
            }
        return report

    async def clients_list(self, params: None) -> dict[str, Any]:
        clients = []
        for client in list(self.gateway.clients.values()):
            principal = client.principal
            clients.append(
                {
                    "client_id": client.id,
                    "remote": client.remote,
                    "origin": client.origin,
                    "principal": principal.id if principal else None,
                    "role": principal.role if principal else None,
                    "token_id": principal.token_id if principal else None,
                    "connected_at": iso(client.connected_at),
                    "inflight": client.inflight,
                }
            )
        return {"clients": clients}

    async def clients_kick(self, params: KickParams) -> dict[str, Any]:
        client = self.gateway.clients.get(params.client_id)
        if client is None:
            raise NotFound(f"no connected client {params.client_id!r}")
        log.info("kicking %s (%s)", client.id, params.reason)
        client.close(CLOSE_KICKED, params.reason[:100])
        return {"kicked": client.id}

    # -- tokens --------------------------------------------------------------

    def _token_json(self, record: TokenRecord) -> dict[str, Any]:
        connections = sum(
            1
            for client in self.gateway.clients.values()
            if client.principal is not None and client.principal.token_id == record.token_id
        )
        expired = record.expires_at is not None and record.expires_at <= time.time()
        return {
            "token_id": record.token_id,
            "name": record.name,
            "role": record.role,
            "created_at": iso(record.created_at),
            "expires_at": iso(record.expires_at),
            "expired": expired,
            "connections": connections,
        }

    async def tokens_create(self, params: TokenCreateParams) -> dict[str, Any]:
        store = self.daemon.token_store
        assert store is not None
        try:
            issued = await store.create(params.name, params.role, params.expires_in)
        except TokenStoreError as exc:
            raise InvalidParams(str(exc)) from None
        log.info(
            "token %s (%s, %s) created", issued.record.token_id, issued.record.name, params.role
        )
        return {"token": issued.token, **self._token_json(issued.record)}

    async def tokens_list(self, params: None) -> dict[str, Any]:
        store = self.daemon.token_store
        assert store is not None
        return {"tokens": [self._token_json(record) for record in store.records()]}

    async def tokens_revoke(self, params: TokenRevokeParams) -> dict[str, Any]:
        store = self.daemon.token_store
        assert store is not None
        try:
            record = await store.revoke(params.token)
        except UnknownToken as exc:
            raise NotFound(str(exc)) from None
        except TokenStoreError as exc:
            raise Forbidden(str(exc)) from None
        closed = self.gateway.close_token_connections(
            record.token_id, CLOSE_TOKEN_REVOKED, "token revoked"
        )
        log.info(
            "token %s (%s) revoked; %d connection(s) closed", record.token_id, record.name, closed
        )
        return {"revoked": record.token_id, "name": record.name, "closed": closed}

    # -- pairing -------------------------------------------------------------

    @staticmethod
    def _request_json(request: PairingRequest) -> dict[str, Any]:
        return {
            "code": request.code,
            "channel": request.channel_key,
            "user": request.user,
            "requested_at": iso(request.requested_at),
            "expires_at": iso(request.expires_at),
        }

    async def pairing_list(self, params: None) -> dict[str, Any]:
        pairing = self.daemon.pairing
        assert pairing is not None
        return {
            "pending": [self._request_json(request) for request in await pairing.pending()],
            "paired": [
                {"channel": p.channel_key, "user": p.user, "approved_at": iso(p.approved_at)}
                for p in pairing.paired()
            ],
        }

    async def _decide(self, code: str, approve: bool) -> dict[str, Any]:
        pairing = self.daemon.pairing
        assert pairing is not None
        try:
            request = await (pairing.approve(code) if approve else pairing.deny(code))
        except UnknownPairingCode as exc:
            raise NotFound(str(exc)) from None
        except PairingError as exc:
            raise InvalidParams(str(exc)) from None
        return {"outcome": "approved" if approve else "denied", **self._request_json(request)}

    async def pairing_approve(self, params: CodeParams) -> dict[str, Any]:
        return await self._decide(params.code, approve=True)

    async def pairing_deny(self, params: CodeParams) -> dict[str, Any]:
        return await self._decide(params.code, approve=False)

    # -- sessions and agents ---------------------------------------------------

    async def sessions_list(self, params: None) -> dict[str, Any]:
        return {"sessions": draining.list_sessions(self.daemon)}

    async def agents_list(self, params: None) -> dict[str, Any]:
        return {"agents": draining.list_agents(self.daemon)}

    # -- lifecycle -----------------------------------------------------------

    async def config_reload(self, params: None) -> dict[str, Any]:
        try:
            new = load_config(self.daemon.config_path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config:\n%s", exc)
            raise ReloadRefused(data={"errors": exc.problems}) from None
        before = _flatten(masked(self.daemon.config))
        after = _flatten(masked(new))
        changed = sorted(key for key in after if before.get(key) != after[key])
        if not self.daemon.reload():
            raise ReloadRefused("reload refused; see the daemon's log")
        if "control.socket" in changed:
            log.warning("control.socket changed; it takes effect after a restart")
        return {"reloaded": True, "changed": changed}

    async def drain(self, params: DrainParams) -> dict[str, Any]:
        timeout = params.timeout
        if timeout is None:
            timeout = self.daemon.config.control.drain_timeout
        if timeout < 0:
            raise InvalidParams("timeout must be at least 0")
        return await draining.drain(self.daemon, timeout)

    async def shutdown(self, params: None) -> dict[str, Any]:
        log.info("shutdown requested on the control socket")
        self.daemon.stop_requested.set()
        return {"stopping": True}


def register_control_methods(server: ControlServer, daemon: Daemon) -> None:
    """Add every control method, bound to `daemon`, to `server`."""
    methods = ControlMethods(daemon)
    server.add("status", methods.status)
    server.add("clients.list", methods.clients_list)
    server.add("clients.kick", methods.clients_kick, KickParams)
    server.add("sessions.list", methods.sessions_list)
    server.add("tokens.create", methods.tokens_create, TokenCreateParams)
    server.add("tokens.list", methods.tokens_list)
    server.add("tokens.revoke", methods.tokens_revoke, TokenRevokeParams)
    server.add("pairing.list", methods.pairing_list)
    server.add("pairing.approve", methods.pairing_approve, CodeParams)
    server.add("pairing.deny", methods.pairing_deny, CodeParams)
    server.add("agents.list", methods.agents_list)
    server.add("config.reload", methods.config_reload)
    server.add("drain", methods.drain, DrainParams)
    server.add("shutdown", methods.shutdown)
