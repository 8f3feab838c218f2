"""The gateway's own methods: `auth.login` and `system.*`."""

from __future__ import annotations

import logging
import time
from typing import Any

import attrs
import trio

from aleph import __version__
from aleph.gateway.dispatch import CallContext, MethodRegistry
from aleph.gateway.server import PROTOCOL_VERSION
from aleph.protocol.errors import Forbidden, InvalidParams, NotAuthenticated, RateLimited
from aleph.security.tokens import Principal
from aleph.timestamps import utc_now_iso

__all__ = ["LoginParams", "register_gateway_methods"]

log = logging.getLogger(__name__)


@attrs.frozen
class LoginParams:
    token: str | None = None
    guest: bool = False


def _principal_json(principal: Principal) -> dict[str, Any]:
    return {"id": principal.id, "role": principal.role}


def login(ctx: CallContext, params: LoginParams) -> dict[str, Any]:
    gateway, client = ctx.gateway, ctx.client
    now = trio.current_time()
    if (params.token is None) == (not params.guest):
        raise InvalidParams('give either "token" or "guest": true')
    retry_after = gateway.lockout.retry_after(client.remote, now)
    if retry_after is not None:
        raise RateLimited(retry_after, "too many failed logins from this address; try later")
    principal: Principal | None
    if params.guest:
        if not gateway.config.gateway.allow_guests:
            raise Forbidden("anonymous guests are not allowed on this gateway")
        principal = Principal(f"guest:{client.id}", "guest")
    else:
        assert params.token is not None
        principal = gateway.tokens.verify(params.token, time.time())
        if principal is None:
            gateway.lockout.failed(client.remote, now)
            log.info("failed login from %s (%s)", client.remote, client.id)
            raise NotAuthenticated("bad token")
        gateway.lockout.succeeded(client.remote)
    if client.principal is not None and client.principal != principal:
        raise Forbidden("already authenticated as another principal; reconnect to switch")
    client.principal = principal
    log.debug("%s authenticated as %s", client.id, principal.id)
    return {"principal": _principal_json(principal), "client_id": client.id}


def ping(ctx: CallContext, params: None) -> dict[str, Any]:
    return {"time": utc_now_iso()}


def info(ctx: CallContext, params: None) -> dict[str, Any]:
    return {
        "name": "aleph",
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "uptime_s": round(ctx.gateway.uptime(), 3),
    }


def health(ctx: CallContext, params: None) -> dict[str, Any]:
    return ctx.gateway.health()


def register_gateway_methods(registry: MethodRegistry) -> None:
    registry.add("auth.login", login, params=LoginParams, public=True)
    registry.add("system.ping", ping, public=True)
    registry.add("system.info", info, public=True)
    registry.add("system.health", health, roles=("owner",))
