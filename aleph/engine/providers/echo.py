"""The built-in `echo` provider: no model at all, for trying Aleph out.

It answers ``[echo] <your message>`` word by word, so streaming can be seen
(the same answer as the sessions' stand-in EchoEngine),
and lets tools be tried without a model: a message ``/tool NAME {json}``
makes it call tool NAME with those arguments, and it then reports what the
tool returned. It never fails and never touches the network.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import attrs
import orjson

from aleph.engine.conversation import Message, OnText, ProviderRequest, ToolCall, Turn

__all__ = ["EchoProvider"]

ECHO_LABEL = "[echo] "
_WORDS = re.compile(r"\s*\S+\s*|\s+")
_TOOL_COMMAND = re.compile(r"^/tool\s+([A-Za-z0-9_.-]+)\s*(.*)$", re.DOTALL)


@attrs.define(eq=False)
class EchoProvider:
    kind: str = "echo"
    model: str = "echo"
    accepts_images: bool = False
    _ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))

    async def complete(self, request: ProviderRequest, on_text: OnText) -> Turn:
        last = request.messages[-1] if request.messages else Message("user", "")
        if last.role == "user":
            command = _TOOL_COMMAND.match(last.text.strip())
            offered = {tool.name for tool in request.tools}
            if command and command.group(1) in offered:
                return Turn("", (self._call(command.group(1), command.group(2)),), 0, 0, "tool")
            words = _WORDS.findall(last.text)
            answer = ECHO_LABEL + last.text
        else:
            words = _WORDS.findall("; ".join(_describe(m) for m in _trailing_results(request)))
            answer = ECHO_LABEL + "".join(words)
        # Word by word, as a model would stream; nothing to wait for between words,
        # so they usually reach clients together.
        await on_text(ECHO_LABEL)
        for word in words:
            await on_text(word)
        return Turn(answer, (), len(words), len(words) + 1, "stop")

    def _call(self, name: str, raw: str) -> ToolCall:
        call_id = f"echo_{next(self._ids)}"
        try:
            arguments: Any = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            return ToolCall(call_id, name, {}, invalid="the arguments are not valid JSON")
        if not isinstance(arguments, dict):
            return ToolCall(call_id, name, {}, invalid="the arguments must be a JSON object")
        return ToolCall(call_id, name, arguments)

    async def aclose(self) -> None:
        return None


def _trailing_results(request: ProviderRequest) -> list[Message]:
    results: list[Message] = []
    for message in reversed(request.messages):
        if message.role != "tool":
            break
        results.append(message)
    return results[::-1]


def _describe(message: Message) -> str:
    state = "failed" if message.is_error else "returned"
    return f"tool {message.name} {state} {message.text}"
