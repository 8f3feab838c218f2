"""`tool.list` and `tool.call`: the ToolService as clients see it.

Errors: an unknown tool -32003; a tool this caller may not use -32002;
arguments that fail the tool's schema -32602 (one line per problem in
``data.errors``); a tool that fails or times out -32008 with data
``{"tool", "reason"}`` and the tool's own message.
"""

from __future__ import annotations

from typing import Any

import attrs

from aleph.engine.api import SessionType
from aleph.engine.tools.service import ToolContext, ToolService
from aleph.gateway.dispatch import CallContext, MethodRegistry
from aleph.protocol.errors import Forbidden, InvalidParams, NotFound, ToolFailed

__all__ = ["ToolCallParams", "ToolListParams", "register_tool_methods"]


@attrs.frozen
class ToolListParams:
    session_id: str | None = None


@attrs.frozen
class ToolCallParams:
    name: str
    arguments: dict[str, Any] = attrs.Factory(dict)
    session_id: str | None = None


def _session_type(tools: ToolService, ctx: CallContext, session_id: str | None) -> SessionType:
    role = ctx.principal.role
    if session_id is not None and tools.session_type_of is not None:
        found = tools.session_type_of(session_id)
        if found is None:
            raise NotFound(f"no such session: {session_id[:100]}")
        return found
    return "owner" if role == "owner" else "guest"


def register_tool_methods(registry: MethodRegistry, tools: ToolService) -> None:
    def tool_list(ctx: CallContext, params: ToolListParams) -> dict[str, Any]:
        session_type = _session_type(tools, ctx, params.session_id)
        available = tools.available(ctx.principal.role, session_type)
        return {"tools": [tool.describe() for tool in sorted(available, key=lambda t: t.name)]}

    async def tool_call(ctx: CallContext, params: ToolCallParams) -> dict[str, Any]:
        tool = tools.get(params.name)
        if tool is None:
            raise NotFound(f"no such tool: {params.name[:100]}")
        role = ctx.principal.role
        session_type = _session_type(tools, ctx, params.session_id)
        if not tools.allowed(tool, role, session_type):
            raise Forbidden(
                f"the tool {tool.name} is not available to {role} in a {session_type} session"
            )
        call_ctx = ToolContext(role, session_type, params.session_id, call_id="")
        outcome = await tools.call(tool, params.arguments, call_ctx)
        if outcome.kind == "invalid":
            lines = list(outcome.problems)
            raise InvalidParams(outcome.error, {"errors": lines, "tool": tool.name})
        if not outcome.ok:
            raise ToolFailed(outcome.error, {"tool": tool.name, "reason": outcome.kind})
        return {"result": outcome.result}

    registry.add("tool.list", tool_list, params=ToolListParams)
    registry.add("tool.call", tool_call, params=ToolCallParams)
