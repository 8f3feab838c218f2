"""The execution engine: the seam the sessions call (api), and what is behind it."""

from aleph.engine.api import (
    AssistantMessage,
    Attachment,
    EngineError,
    ExecutionEngine,
    HistoryMessage,
    RunRequest,
    TextDelta,
    ToolFinished,
    ToolStarted,
    Usage,
)

__all__ = [
    "AssistantMessage",
    "Attachment",
    "EngineError",
    "ExecutionEngine",
    "HistoryMessage",
    "RunRequest",
    "TextDelta",
    "ToolFinished",
    "ToolStarted",
    "Usage",
]
