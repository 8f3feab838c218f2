"""The gateway: clients, dispatch, the WebSocket transport, health endpoints."""

from aleph.gateway.client import Client
from aleph.gateway.dispatch import CallContext, MethodRegistry
from aleph.gateway.methods import register_gateway_methods
from aleph.gateway.server import Gateway
from aleph.gateway.transport import serve_gateway

__all__ = [
    "CallContext",
    "Client",
    "Gateway",
    "MethodRegistry",
    "register_gateway_methods",
    "serve_gateway",
]
