"""The wire protocol: JSON-RPC 2.0 codec, errors, strict params (no I/O)."""

from aleph.protocol import jsonrpc
from aleph.protocol.errors import RpcError

__all__ = ["RpcError", "jsonrpc"]
