"""The Anthropic messages API, streamed.

POST ``{base_url}/v1/messages`` with ``x-api-key`` and ``anthropic-version``
headers and ``"stream": true``. The answer is named server-sent events:
``message_start`` (input usage), ``content_block_start`` / ``_delta`` /
``_stop`` for each block (``text`` with ``text_delta``; ``tool_use`` whose
``input`` arrives as ``input_json_delta`` fragments of a JSON string),
``message_delta`` (stop reason, output usage), ``message_stop``, ``ping``
at any time, and ``error`` (for instance ``overloaded_error``) in the middle
of a stream. Tool results go back as ``tool_result`` blocks in a user
message; images as ``image`` blocks with a base64 source.

:class:`AnthropicStream` is the sans-IO reader; it raises
:class:`~aleph.engine.providers.http.StreamBroken` for an ``error`` event,
an event that is not JSON, or a stream that ends before ``message_stop``.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

import attrs
import orjson

from aleph.engine.conversation import Message, ProviderRequest, Turn
from aleph.engine.providers.http import HttpProvider, StreamBroken
from aleph.engine.providers.openai import parse_arguments
from aleph.engine.providers.sse import SseEvent

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider", "AnthropicStream", "to_anthropic"]

ANTHROPIC_VERSION = "2023-06-01"


@attrs.define(eq=False)
class _Block:
    type: str
    id: str = ""
    name: str = ""
    parts: list[str] = attrs.Factory(list)


@attrs.define(eq=False)
class AnthropicStream:
    blocks: dict[int, _Block] = attrs.Factory(dict)
    stop_reason: str = ""
    stopped: bool = False
    input_tokens: int = 0
    output_tokens: int = 0

    def feed(self, event: SseEvent) -> list[str]:
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise StreamBroken(f"an event is not JSON: {event.data[:80]!r}") from None
        if not isinstance(data, dict):
            raise StreamBroken("an event is not a JSON object")
        kind = data.get("type", event.event)
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            block = self.blocks.get(int(data.get("index", 0)))
            if block is None:
                raise StreamBroken("a delta for a block that was never started")
            if delta.get("type") == "text_delta":
                text = str(delta.get("text", ""))
                block.parts.append(text)
                return [text] if text else []
            if delta.get("type") == "input_json_delta":
                block.parts.append(str(delta.get("partial_json", "")))
            return []  # thinking_delta, signature_delta, ...: not shown
        if kind == "content_block_start":
            start = data.get("content_block") or {}
            block = _Block(str(start.get("type", "")), str(start.get("id", "")))
            block.name = str(start.get("name", ""))
            if block.type == "tool_use" and start.get("input"):
                # A whole input up front (no input_json_delta will follow).
                block.parts.append(orjson.dumps(start["input"]).decode())
            if block.type == "text" and start.get("text"):
                block.parts.append(str(start["text"]))
                self.blocks[int(data.get("index", 0))] = block
                return [block.parts[0]]
            self.blocks[int(data.get("index", 0))] = block
        elif kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            self.input_tokens = int(usage.get("input_tokens") or 0)
            self.output_tokens = int(usage.get("output_tokens") or 0)
        elif kind == "message_delta":
            self.stop_reason = str((data.get("delta") or {}).get("stop_reason") or "")
            usage = data.get("usage") or {}
            self.output_tokens = int(usage.get("output_tokens") or self.output_tokens)
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            error = data.get("error") or {}
            raise StreamBroken(
                f"the provider reported {error.get('type', 'an error')}: "
                f"{str(error.get('message', ''))[:300]}"
            )
        return []  # ping, content_block_stop, unknown future events

    def finish(self) -> Turn:
        if not self.stopped:
            raise StreamBroken("the stream ended before message_stop")
        text = "".join(
            "".join(block.parts) for _, block in sorted(self.blocks.items()) if block.type == "text"
        )
        calls = tuple(
            parse_arguments("".join(block.parts), block.name, block.id)
            for _, block in sorted(self.blocks.items())
            if block.type == "tool_use"
        )
        return Turn(text, calls, self.input_tokens, self.output_tokens, self.stop_reason)


def _user_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for image in message.images:
        source = {
            "type": "base64",
            "media_type": image.mime_type,
            "data": base64.b64encode(image.data).decode(),
        }
        blocks.append({"type": "image", "source": source})
    blocks.append({"type": "text", "text": message.text or "(empty)"})
    return blocks


def to_anthropic(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """The messages as Anthropic wants them: tool results in user turns, same roles merged."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "assistant":
            role = "assistant"
            blocks: list[dict[str, Any]] = []
            if message.text:
                blocks.append({"type": "text", "text": message.text})
            for call in message.tool_calls:
                blocks.append(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                )
            if not blocks:
                blocks.append({"type": "text", "text": "(no answer)"})
        elif message.role == "tool":
            role = "user"
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.call_id,
                "content": message.text,
            }
            if message.is_error:
                result["is_error"] = True
            blocks = [result]
        else:
            role, blocks = "user", _user_blocks(message)
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


@attrs.define(eq=False)
class AnthropicProvider(HttpProvider):
    kind: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"

    def url(self) -> str:
        base = self.base_url
        return base + ("/messages" if base.endswith("/v1") else "/v1/messages")

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "max_tokens": self.config.max_tokens,
            "messages": to_anthropic(request.messages),
            "stream": True,
        }
        if request.system:
            body["system"] = request.system
        if request.tools:
            body["tools"] = [
                {
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                }
                for tool in request.tools
            ]
        return body

    def parser(self) -> AnthropicStream:
        return AnthropicStream()
