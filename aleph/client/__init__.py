"""A Trio client for the gateway protocol, shared by `aleph chat`, the TUI and tests."""

from aleph.client.connection import CallFailed, GatewayClient, connect

__all__ = ["CallFailed", "GatewayClient", "connect"]
