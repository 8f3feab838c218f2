"""JSON-RPC error codes and the exceptions that carry them.

Every error that reaches a client is an :class:`RpcError`: handlers raise one
of the subclasses below, and the dispatcher turns anything else into
:class:`InternalError` (logged on the server, never shown to the client).

    RpcError
    ├── ParseError            -32700
    ├── InvalidRequest        -32600
    ├── MethodNotFound        -32601
    ├── InvalidParams         -32602
    ├── InternalError         -32603
    ├── NotAuthenticated      -32001
    ├── Forbidden             -32002
    ├── NotFound              -32003
    ├── RateLimited           -32004  data: {"retry_after_ms"}
    ├── QueueFull             -32006
    ├── ProviderFailed        -32007  data: {"provider", "status"?}
    ├── ToolFailed            -32008  data: {"tool"}
    ├── TimedOut              -32009
    ├── ResumeGap             -32010  data: {"oldest_seq"}
    └── ShuttingDown          -32011
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

__all__ = [
    "Forbidden",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "MethodNotFound",
    "NotAuthenticated",
    "NotFound",
    "ParseError",
    "ProviderFailed",
    "QueueFull",
    "RateLimited",
    "ResumeGap",
    "RpcError",
    "ShuttingDown",
    "TimedOut",
    "ToolFailed",
]


class RpcError(Exception):
    """An error that is sent to the client as a JSON-RPC error object."""

    code: ClassVar[int] = -32603
    default_message: ClassVar[str] = "internal error"

    def __init__(self, message: str | None = None, data: Any = None) -> None:
        self.message = message or self.default_message
        self.data = data
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ParseError(RpcError):
    code = -32700
    default_message = "parse error"


class InvalidRequest(RpcError):
    code = -32600
    default_message = "invalid request"


class MethodNotFound(RpcError):
    code = -32601
    default_message = "method not found"


class InvalidParams(RpcError):
    code = -32602
    default_message = "invalid params"


class InternalError(RpcError):
    code = -32603
    default_message = "internal error"


class NotAuthenticated(RpcError):
    code = -32001
    default_message = "not authenticated"


class Forbidden(RpcError):
    code = -32002
    default_message = "forbidden"


class NotFound(RpcError):
    code = -32003
    default_message = "not found"


class RateLimited(RpcError):
    code = -32004
    default_message = "rate limited"

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        """`retry_after` is in seconds; the client sees whole milliseconds, rounded up."""
        self.retry_after = retry_after
        super().__init__(message, {"retry_after_ms": max(1, math.ceil(retry_after * 1000))})


class QueueFull(RpcError):
    code = -32006
    default_message = "session queue full"


class ProviderFailed(RpcError):
    code = -32007
    default_message = "model provider failed"


class ToolFailed(RpcError):
    code = -32008
    default_message = "tool failed"


class TimedOut(RpcError):
    code = -32009
    default_message = "timed out"


class ResumeGap(RpcError):
    code = -32010
    default_message = "events no longer retained; reload session.history"


class ShuttingDown(RpcError):
    code = -32011
    default_message = "server shutting down"
