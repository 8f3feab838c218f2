"""The Thinker: the system prompt and the history a model sees, within a budget.

The system prompt is built from the parts named in ``thinker.prompt_parts``,
in that order: ``persona`` (``thinker.persona``, then the session's own
system prompt if it set one), ``datetime`` (now, in ``thinker.timezone``),
``session`` (owner, guest or paired, and what that means), ``channel``
(where the message came from) and ``tools`` (what can be called). Unknown
part names are ignored.

The history is rebuilt from stored messages and repaired so that every
assistant tool call is followed by exactly one result (a call whose result
was never stored, because its run was cancelled, gets a "cancelled" error
result; a result without its call is dropped). It is then trimmed to
``thinker.context_budget`` tokens (estimated at 4 characters a token):
whole exchanges are dropped oldest first, an assistant's tool calls always
together with their results, and the kept history starts with a user
message. The new message is always kept. Nothing here fails.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence

import attrs

from aleph.config import ThinkerConfig
from aleph.engine.api import HistoryMessage, RunRequest
from aleph.engine.conversation import Message, ToolCall, ToolSpec

__all__ = ["CANCELLED_RESULT", "Thinker", "estimate_tokens"]

CANCELLED_RESULT = "error: the call did not finish (the run was cancelled)"
IMAGE_TOKENS = 1000
MESSAGE_OVERHEAD = 4

_SESSION_TEXT = {
    "owner": "This is the owner's own session; they may use every tool offered.",
    "guest": (
        "This is a guest session: the person is not the owner. Do not reveal the owner's "
        "private information; only the tools offered here are available."
    ),
    "paired": "This session is bound to one chat of an external messaging service.",
}


def estimate_tokens(message: Message) -> int:
    size = len(message.text) + sum(
        len(call.name) + len(str(call.arguments)) for call in message.tool_calls
    )
    return size // 4 + MESSAGE_OVERHEAD + IMAGE_TOKENS * len(message.images)


def _from_history(stored: HistoryMessage) -> Message:
    meta = stored.meta or {}
    if stored.role == "assistant":
        calls = tuple(
            ToolCall(str(call.get("id", "")), str(call.get("name", "")),
                     dict(call.get("arguments") or {}))
            for call in meta.get("tool_calls") or ()
            if isinstance(call, dict)
        )  # fmt: skip
        return Message("assistant", stored.text, tool_calls=calls)
    if stored.role == "tool":
        error = meta.get("error")
        text = stored.text or (f"error: {error}" if error else "")
        return Message(
            "tool",
            text,
            call_id=str(meta.get("call_id", "")),
            name=str(meta.get("name", "")),
            is_error=bool(error),
        )
    return Message("user", stored.text)


def repair(messages: Sequence[Message]) -> list[Message]:
    """Every tool call followed by its one result; stray results dropped."""
    out: list[Message] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        index += 1
        if message.role == "tool":
            continue  # a result whose call is not right before it
        out.append(message)
        if message.role != "assistant" or not message.tool_calls:
            continue
        results: dict[str, Message] = {}
        while index < len(messages) and messages[index].role == "tool":
            result = messages[index]
            results.setdefault(result.call_id, result)
            index += 1
        for call in message.tool_calls:
            out.append(
                results.get(call.id)
                or Message("tool", CANCELLED_RESULT, call_id=call.id, name=call.name,
                           is_error=True)
            )  # fmt: skip
    return out


def _units(messages: list[Message]) -> list[list[Message]]:
    """Messages grouped so that tool results stay with the call that asked for them."""
    units: list[list[Message]] = []
    for message in messages:
        if message.role == "tool" and units:
            units[-1].append(message)
        else:
            units.append([message])
    return units


@attrs.frozen
class Thinker:
    config: ThinkerConfig

    def now(self) -> dt.datetime:
        try:
            zone: dt.tzinfo = zoneinfo.ZoneInfo(self.config.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = dt.UTC
        return dt.datetime.now(zone)

    def system_prompt(
        self, request: RunRequest, tools: Sequence[ToolSpec], now: dt.datetime | None = None
    ) -> str:
        parts: list[str] = []
        for part in self.config.prompt_parts:
            if part == "persona":
                if self.config.persona:
                    parts.append(self.config.persona)
                if request.system_prompt:
                    parts.append("Instructions for this session:\n" + request.system_prompt)
            elif part == "datetime":
                when = now or self.now()
                parts.append(
                    f"The current date and time is {when:%A %Y-%m-%d %H:%M} "
                    f"({when.tzname() or self.config.timezone})."
                )
            elif part == "session":
                parts.append(_SESSION_TEXT.get(request.session_type, ""))
            elif part == "channel":
                parts.append(f"The message came from: {request.channel}.")
            elif part == "tools":
                if tools:
                    listing = "\n".join(f"- {tool.name}: {tool.description}" for tool in tools)
                    parts.append("You can call these tools when they help:\n" + listing)
                else:
                    parts.append("No tools are available in this conversation.")
        return "\n\n".join(part for part in parts if part)

    def history(self, stored: Sequence[HistoryMessage]) -> list[Message]:
        return repair([_from_history(message) for message in stored])

    def trim(
        self,
        system: str,
        history: list[Message],
        current: Message,
        tools: Sequence[ToolSpec] = (),
    ) -> list[Message]:
        """The history that fits the budget beside the prompt, tools and new message."""
        fixed = len(system) // 4 + estimate_tokens(current)
        fixed += sum((len(t.name) + len(t.description) + len(str(t.parameters))) // 4
                     for t in tools)  # fmt: skip
        room = self.config.context_budget - fixed
        kept: list[list[Message]] = []
        for unit in reversed(_units(history)):
            cost = sum(estimate_tokens(message) for message in unit)
            if cost > room:
                break
            room -= cost
            kept.append(unit)
        kept.reverse()
        while kept and kept[0][0].role != "user":
            kept.pop(0)
        return [message for unit in kept for message in unit]
