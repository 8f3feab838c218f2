"""The ToolService: every tool the model and clients may call, and who may call it.

A :class:`Tool` is a name, a description, JSON Schema parameters, an async
handler and a policy (``safe`` for guests; its own timeout). Built-in tools
are added at start; an agent's tools are added when it registers and removed
when it goes (``provider`` is then its agent id). Two providers may not add
the same name: :meth:`ToolService.add` raises :class:`ToolConflict`.

:meth:`ToolService.call` never raises for a tool's failure: it validates the
arguments first, runs the handler under the tool's timeout, and returns a
:class:`ToolOutcome` whose ``error`` says what went wrong (bad arguments, the
tool's own :class:`ToolError` message, a timeout, or "internal error" for a
bug, which is logged here). Only cancellation propagates.

Permissions: an owner in an owner or paired session may use every tool; a
guest, or anyone in a guest session, only the tools marked ``safe``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

import attrs
import orjson
import trio

from aleph.config import ToolsConfig
from aleph.engine.api import SessionType
from aleph.engine.conversation import ToolSpec
from aleph.engine.tools.schema import validate
from aleph.security.tokens import Role

__all__ = [
    "Tool",
    "ToolConflict",
    "ToolContext",
    "ToolError",
    "ToolHandler",
    "ToolOutcome",
    "ToolService",
    "result_text",
]

log = logging.getLogger(__name__)


class ToolError(Exception):
    """A tool failed in a way it can explain; the message goes to the model and client."""


class ToolConflict(ValueError):
    """A tool name is already taken by another provider."""


@attrs.frozen
class ToolContext:
    role: Role
    session_type: SessionType
    session_id: str | None = None
    call_id: str = ""


ToolHandler = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]


@attrs.frozen
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    handler: ToolHandler = attrs.field(repr=False)
    safe: bool = False  # offered to guests and guest sessions
    provider: str = "builtin"  # or the agent_id that serves it
    timeout: float | None = None  # default: tools.tool_timeout

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)

    def describe(self) -> dict[str, Any]:
        """The tool as `tool.list` shows it."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "provider": self.provider,
        }


@attrs.frozen
class ToolOutcome:
    kind: Literal["ok", "invalid", "failed", "timeout"]
    result: Any = None
    error: str | None = None
    problems: tuple[str, ...] = ()  # the validation lines, for "invalid"

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def result_text(outcome: ToolOutcome, limit: int) -> str:
    """What the model reads of an outcome, at most `limit` characters."""
    if not outcome.ok:
        text = f"error: {outcome.error}"
    elif isinstance(outcome.result, str):
        text = outcome.result
    else:
        text = orjson.dumps(outcome.result).decode()
    if len(text) > limit:
        text = text[:limit] + f"\n[truncated: {len(text) - limit} more characters]"
    return text


@attrs.define(eq=False)
class ToolService:
    config: ToolsConfig
    _tools: dict[str, Tool] = attrs.field(factory=dict, init=False)
    # Set by the sessions: the type of a session by id (None if there is none),
    # so that tool.call with a session_id applies that session's policy.
    session_type_of: Callable[[str], SessionType | None] | None = attrs.field(
        default=None, init=False
    )

    def add(self, tool: Tool) -> None:
        existing = self._tools.get(tool.name)
        if existing is not None:
            owner = "a built-in tool" if existing.provider == "builtin" else existing.provider
            raise ToolConflict(f'the tool name "{tool.name}" is already taken by {owner}')
        self._tools[tool.name] = tool

    def add_all(self, tools: Iterable[Tool]) -> None:
        """Add every tool or none of them."""
        tools = list(tools)
        names = [tool.name for tool in tools]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise ToolConflict(f'the tool name "{sorted(duplicates)[0]}" is declared twice')
        for tool in tools:
            if tool.name in self._tools:
                self.add(tool)  # raises the conflict
        for tool in tools:
            self.add(tool)

    def remove_provider(self, provider: str) -> list[str]:
        names = [name for name, tool in self._tools.items() if tool.provider == provider]
        for name in names:
            del self._tools[name]
        return names

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __len__(self) -> int:
        return len(self._tools)

    @staticmethod
    def allowed(tool: Tool, role: Role, session_type: SessionType) -> bool:
        if role == "guest" or session_type == "guest":
            return tool.safe
        return True

    def available(self, role: Role, session_type: SessionType) -> list[Tool]:
        return [tool for tool in self._tools.values() if self.allowed(tool, role, session_type)]

    async def call(self, tool: Tool, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        """Validate, run under the timeout, and say how it went (see the module doc)."""
        problems = validate(arguments, tool.parameters)
        if problems:
            return ToolOutcome(
                "invalid",
                error="invalid arguments: " + "; ".join(problems),
                problems=tuple(problems),
            )
        timeout = tool.timeout if tool.timeout is not None else self.config.tool_timeout
        with trio.move_on_after(timeout):
            try:
                result = await tool.handler(arguments, ctx)
                orjson.dumps(result)
            except ToolError as exc:
                return ToolOutcome("failed", error=str(exc) or "the tool failed")
            except orjson.JSONEncodeError:
                log.error("tool %s returned a value that is not JSON", tool.name)
                return ToolOutcome("failed", error="the tool returned a value that is not JSON")
            except Exception:
                log.exception("tool %s failed", tool.name)
                return ToolOutcome("failed", error="the tool failed with an internal error")
            return ToolOutcome("ok", result=result)
        return ToolOutcome("timeout", error=f"the tool did not finish within {timeout:g} s")
