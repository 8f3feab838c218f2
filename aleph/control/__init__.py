"""The control socket (operator's JSON-RPC over a Unix socket) and `aleph ctl`."""

from aleph.control.methods import CLOSE_KICKED, CLOSE_TOKEN_REVOKED, register_control_methods
from aleph.control.server import ControlServer, ControlSocketError, serve_control

__all__ = [
    "CLOSE_KICKED",
    "CLOSE_TOKEN_REVOKED",
    "ControlServer",
    "ControlSocketError",
    "register_control_methods",
    "serve_control",
]
