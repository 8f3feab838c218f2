"""The seam between a session's runner and the execution engine.

The session runner builds a :class:`RunRequest` (the new message, its
attachments, the history before it, who asks and where from) and calls
``await engine.run(request, emit)``. The engine reports everything a client
may see by awaiting ``emit(event)`` with the events below, in order; the
runner numbers them, stores what must be stored and fans them out:

==========================  ============================================
engine event                session event (PROTOCOL.md)
==========================  ============================================
:class:`TextDelta`          ``run.delta`` ``{"text"}``
:class:`ToolStarted`        ``tool.started`` ``{"call_id", "name", "arguments"}``
:class:`ToolFinished`       ``tool.finished`` ``{"call_id", "result"|"error"}``;
                            stored as a ``tool`` message
:class:`AssistantMessage`   ``message.assistant`` ``{"message_id", "text"}``;
                            stored as an ``assistant`` message
==========================  ============================================

``run`` returns the run's :class:`Usage` when the answer is complete (the
runner then emits ``run.finished``), raises :class:`EngineError` when the run
fails (``run.failed``), and is cancelled through its cancel scope by
``session.cancel`` (``run.cancelled``). The ``run.started`` and
``message.user`` events are the runner's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, TypeAlias

import attrs

from aleph.security.tokens import Role

__all__ = [
    "AssistantMessage",
    "Attachment",
    "Emit",
    "EngineError",
    "EngineEvent",
    "ExecutionEngine",
    "HistoryMessage",
    "RunRequest",
    "SessionType",
    "TextDelta",
    "ToolFinished",
    "ToolStarted",
    "Usage",
]

SessionType = Literal["owner", "guest", "paired"]


@attrs.frozen
class Attachment:
    name: str
    mime_type: str
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")


@attrs.frozen
class HistoryMessage:
    """One stored message, oldest first in :attr:`RunRequest.history`.

    `meta` carries what the engine needs to rebuild the provider's view:
    for an assistant message that called tools, ``{"tool_calls": [{"id",
    "name", "arguments"}]}``; for a tool message, ``{"call_id", "name",
    "error"?}``.
    """

    role: Literal["user", "assistant", "tool"]
    text: str
    meta: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class RunRequest:
    run_id: str
    session_id: str
    session_type: SessionType
    role: Role  # the role of the principal who sent the message
    text: str
    attachments: tuple[Attachment, ...] = ()
    history: tuple[HistoryMessage, ...] = ()
    channel: str = "websocket"  # or the paired key, "telegram:123456"
    system_prompt: str | None = None  # the session's own, if it set one
    model: str | None = None  # the session's choice, if it made one


@attrs.frozen
class TextDelta:
    text: str


@attrs.frozen
class ToolStarted:
    call_id: str
    name: str
    arguments: dict[str, Any]


@attrs.frozen
class ToolFinished:
    call_id: str
    name: str
    result: Any = None
    error: str | None = None


@attrs.frozen
class AssistantMessage:
    """A complete assistant message; `tool_calls` when it asked for tools."""

    text: str
    tool_calls: tuple[dict[str, Any], ...] = ()


@attrs.frozen
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    provider: str = ""
    model: str = ""


EngineEvent: TypeAlias = TextDelta | ToolStarted | ToolFinished | AssistantMessage
Emit: TypeAlias = Callable[[EngineEvent], Awaitable[None]]


class EngineError(Exception):
    """A run failed; `message` is safe to show (no secrets, no traceback).

    `code` is the JSON-RPC code the failure maps to (-32007 provider,
    -32008 tool, -32009 timeout) and `data` its error data.
    """

    def __init__(
        self, message: str, *, code: int = -32007, data: dict[str, Any] | None = None
    ) -> None:
        self.message = message
        self.code = code
        self.data = data or {}
        super().__init__(message)


class ExecutionEngine(Protocol):
    async def run(self, request: RunRequest, emit: Emit) -> Usage: ...
