"""Tools: the ToolService, the built-in tools and the tool.* methods."""

from aleph.engine.tools.builtin import builtin_tools
from aleph.engine.tools.service import (
    Tool,
    ToolConflict,
    ToolContext,
    ToolError,
    ToolOutcome,
    ToolService,
    result_text,
)

__all__ = [
    "Tool",
    "ToolConflict",
    "ToolContext",
    "ToolError",
    "ToolOutcome",
    "ToolService",
    "builtin_tools",
    "result_text",
]
