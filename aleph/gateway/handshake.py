"""What to do with a request head, decided without I/O.

:func:`route_plain` answers requests without an upgrade (health and
readiness probes, 404 for everything else). :func:`admit` decides whether a
WebSocket upgrade may proceed, in this order: path (404), method (400),
origin (403, the cross-site WebSocket hijacking defence), draining or full
(503), login lockout (429), and a bearer token if one is given (401).
"""

from __future__ import annotations

import math

import attrs

from aleph.gateway.http import RequestHead
from aleph.gateway.server import Gateway
from aleph.security.tokens import Principal

__all__ = ["Admitted", "Refused", "admit", "route_plain"]


@attrs.frozen
class Refused:
    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Admitted:
    principal: Principal | None  # set when the handshake carried a valid bearer token


def route_plain(gateway: Gateway, head: RequestHead) -> tuple[int, dict[str, object]]:
    """Status and JSON body for a plain HTTP request."""
    if head.method in ("GET", "HEAD"):
        if head.path == "/healthz":
            return 200, {"status": "ok"}
        if head.path == "/readyz":
            if gateway.ready and not gateway.draining:
                return 200, {"status": "ready"}
            return 503, {"status": "draining" if gateway.draining else "starting"}
    return 404, {"error": "not found"}


def admit(
    gateway: Gateway, head: RequestHead, remote: str, now: float, wall: float
) -> Admitted | Refused:
    """Decide on a WebSocket upgrade. `now` is the monotonic clock, `wall` the real one."""
    if head.path != gateway.config.gateway.path:
        return Refused(404, "not found")
    if head.method != "GET":
        return Refused(400, "a WebSocket upgrade must be a GET")
    if not gateway.origin_policy.allows(head.header("origin")):
        return Refused(403, "origin not allowed")
    if gateway.draining or gateway.stopping.is_set():
        return Refused(503, "server shutting down")
    if len(gateway.clients) >= gateway.config.gateway.max_connections:
        return Refused(503, "too many connections", (("Retry-After", "5"),))
    authorization = head.header("authorization")
    if authorization is None:
        return Admitted(None)
    retry_after = gateway.lockout.retry_after(remote, now)
    if retry_after is not None:
        return Refused(
            429, "too many failed logins", (("Retry-After", str(math.ceil(retry_after))),)
        )
    scheme, _, token = authorization.partition(" ")
    principal = gateway.tokens.verify(token.strip(), wall) if scheme.lower() == "bearer" else None
    if principal is None:
        gateway.lockout.failed(remote, now)
        return Refused(401, "bad token", (("WWW-Authenticate", 'Bearer realm="aleph"'),))
    gateway.lockout.succeeded(remote)
    return Admitted(principal)
