"""The OpenAI-compatible chat completions API, streamed.

Spoken by OpenAI, Ollama (``http://127.0.0.1:11434/v1``), vLLM, llama.cpp's
server, LM Studio and OpenRouter: POST ``{base_url}/chat/completions`` with
``"stream": true``; the answer is server-sent events whose ``data`` is a
``chat.completion.chunk`` object, ended by ``data: [DONE]``. Text arrives as
``choices[0].delta.content``; a tool call as ``delta.tool_calls[i]`` whose
``function.arguments`` JSON string is spread over many chunks (joined here
by the call's ``index``); usage arrives in a last chunk with no choices when
``stream_options.include_usage`` is asked for. Images go as ``image_url``
content parts holding a data URL.

:class:`OpenAIStream` is the sans-IO reader; it raises
:class:`~aleph.engine.providers.http.StreamBroken` for an event that is not
JSON, an ``error`` object in the stream, or a stream that ends before a
``finish_reason`` or ``[DONE]``.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any, ClassVar

import attrs
import orjson

from aleph.engine.conversation import Message, ProviderRequest, ToolCall, Turn
from aleph.engine.providers.http import HttpProvider, StreamBroken
from aleph.engine.providers.sse import SseEvent

__all__ = ["OpenAIProvider", "OpenAIStream", "parse_arguments"]


def parse_arguments(raw: str, name: str, call_id: str) -> ToolCall:
    """A ToolCall from a JSON-object argument string; marked invalid if it is not one."""
    if not raw.strip():
        return ToolCall(call_id, name, {})
    try:
        arguments = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ToolCall(call_id, name, {}, invalid="the arguments are not valid JSON")
    if not isinstance(arguments, dict):
        return ToolCall(call_id, name, {}, invalid="the arguments must be a JSON object")
    return ToolCall(call_id, name, arguments)


@attrs.define(eq=False)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = attrs.Factory(list)


@attrs.define(eq=False)
class OpenAIStream:
    text: list[str] = attrs.Factory(list)
    calls: dict[int, _PartialCall] = attrs.Factory(dict)
    finish_reason: str = ""
    done: bool = False
    input_tokens: int = 0
    output_tokens: int = 0

    def feed(self, event: SseEvent) -> list[str]:
        data = event.data
        if data == "[DONE]":
            self.done = True
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise StreamBroken(f"an event is not JSON: {data[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise StreamBroken("an event is not a JSON object")
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise StreamBroken(f"the provider reported an error: {str(message)[:300]}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.input_tokens = int(usage.get("prompt_tokens") or 0)
            self.output_tokens = int(usage.get("completion_tokens") or 0)
        deltas: list[str] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                self.text.append(content)
                deltas.append(content)
            for call in delta.get("tool_calls") or ():
                self._call_fragment(call)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return deltas

    def _call_fragment(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index")
        if not isinstance(index, int):
            # Some servers leave the index out: a new id starts a new call.
            last = max(self.calls) if self.calls else -1
            new_id = fragment.get("id")
            if last < 0 or (new_id and self.calls[last].id and new_id != self.calls[last].id):
                index = last + 1
            else:
                index = last
        partial = self.calls.setdefault(index, _PartialCall())
        if fragment.get("id"):
            partial.id = str(fragment["id"])
        function = fragment.get("function") or {}
        if function.get("name"):
            partial.name += str(function["name"]) if partial.name != function["name"] else ""
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            partial.arguments.append(arguments)
        elif isinstance(arguments, dict):  # a server that sends an object, not a string
            partial.arguments.append(orjson.dumps(arguments).decode())

    def finish(self) -> Turn:
        if not (self.done or self.finish_reason):
            raise StreamBroken("the stream ended before the answer was complete")
        calls = tuple(
            parse_arguments(
                "".join(partial.arguments),
                partial.name,
                partial.id or "call_" + secrets.token_hex(6),
            )
            for _, partial in sorted(self.calls.items())
        )
        return Turn(
            "".join(self.text),
            calls,
            self.input_tokens,
            self.output_tokens,
            self.finish_reason or "stop",
        )


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.call_id, "content": message.text}
    if message.role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": message.text or None}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": orjson.dumps(call.arguments).decode(),
                    },
                }
                for call in message.tool_calls
            ]
        return out
    if not message.images:
        return {"role": "user", "content": message.text}
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.text}]
    for image in message.images:
        url = f"data:{image.mime_type};base64,{base64.b64encode(image.data).decode()}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return {"role": "user", "content": parts}


@attrs.define(eq=False)
class OpenAIProvider(HttpProvider):
    kind: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"

    def url(self) -> str:
        return self.base_url + "/chat/completions"

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [_message(message) for message in request.messages]
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.config.max_tokens,
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
        return body

    def parser(self) -> OpenAIStream:
        return OpenAIStream()
