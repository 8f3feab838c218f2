"""A local Anthropic messages API server, speaking the real streaming format.

``POST /v1/messages`` with ``"stream": true`` is answered with the named
events Anthropic sends: ``message_start``, ``content_block_start`` /
``content_block_delta`` (``text_delta``, or ``input_json_delta`` fragments of
a tool_use input) / ``content_block_stop``, ``ping`` in between,
``message_delta`` with the stop reason and usage, ``message_stop``; written
in awkwardly split pieces. It checks ``x-api-key`` and ``anthropic-version``
and refuses with Anthropic's error bodies (401 authentication_error, 404
not_found_error, 429 rate_limit_error, 529 overloaded_error). Unscripted
requests get ``You said: <last user text>``.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import trio

from tests.peers.sse_server import Recorded, Reply, ScriptedHttpServer

__all__ = ["AnthropicPeer", "anthropic_error", "anthropic_sse", "event"]


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def anthropic_sse(
    text: list[str] | tuple[str, ...] = (),
    tool_uses: list[tuple[str, str, str]] | tuple[tuple[str, str, str], ...] = (),
    *,
    usage: tuple[int, int] = (13, 9),
    stop: bool = True,
    fragment: int = 4,
) -> bytes:
    """A complete streamed message: one text block, then tool_use blocks (id, name,
    input JSON) whose input arrives `fragment` characters at a time."""
    message = {
        "id": "msg_peer", "type": "message", "role": "assistant", "content": [],
        "model": "claude-peer", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": 1},
    }  # fmt: skip
    out = [event("message_start", {"type": "message_start", "message": message})]
    index = 0
    if text:
        out.append(
            event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        out.append(event("ping", {"type": "ping"}))
        for piece in text:
            delta = {"type": "text_delta", "text": piece}
            out.append(
                event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
            )
        out.append(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for offset, (call_id, name, arguments) in enumerate(tool_uses):
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        at = index + offset
        out.append(
            event(
                "content_block_start",
                {"type": "content_block_start", "index": at, "content_block": block},
            )
        )
        for start in range(0, len(arguments), fragment):
            delta = {
                "type": "input_json_delta",
                "partial_json": arguments[start : start + fragment],
            }
            out.append(
                event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": at, "delta": delta},
                )
            )
        out.append(event("content_block_stop", {"type": "content_block_stop", "index": at}))
    reason = "tool_use" if tool_uses else "end_turn"
    out.append(
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": None},
                "usage": {"output_tokens": usage[1]},
            },
        )
    )
    if stop:
        out.append(event("message_stop", {"type": "message_stop"}))
    return b"".join(out)  # fmt: skip


def anthropic_error(status: int, kind: str, message: str,
                    headers: list[tuple[str, str]] | None = None) -> Reply:  # fmt: skip
    return Reply.json(status, {"type": "error", "error": {"type": kind, "message": message}},
                      headers)  # fmt: skip


@attrs.define(eq=False)
class AnthropicPeer:
    api_key: str | None = None
    models: tuple[str, ...] = ("claude-peer",)
    server: ScriptedHttpServer = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.server = ScriptedHttpServer(self._default)

    @property
    def base_url(self) -> str:
        return self.server.base

    @property
    def requests(self) -> list[Recorded]:
        return self.server.requests

    def script(self, *replies: Reply) -> None:
        self.server.replies.extend(replies)

    def stream(self, *text: str, tool_uses: tuple[tuple[str, str, str], ...] = (),
               **kwargs: Any) -> None:  # fmt: skip
        self.script(Reply.sse(anthropic_sse(text, tool_uses), **kwargs))

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await self.server.serve(task_status=task_status)

    def check(self, request: Recorded) -> Reply | None:
        if request.path != "/v1/messages":
            return anthropic_error(404, "not_found_error", "Not Found")
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return anthropic_error(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return anthropic_error(400, "invalid_request_error",
                                   "anthropic-version: header is required")  # fmt: skip
        body = request.body if isinstance(request.body, dict) else {}
        if "max_tokens" not in body:
            return anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
        if body.get("model") not in self.models:
            return anthropic_error(404, "not_found_error", f"model: {body.get('model')}")
        return None

    def _default(self, request: Recorded) -> Reply:
        refused = self.check(request)
        if refused is not None:
            return refused
        last = request.body["messages"][-1]
        blocks = last["content"] if isinstance(last["content"], list) else [
            {"type": "text", "text": last["content"]}]  # fmt: skip
        results = [b for b in blocks if b.get("type") == "tool_result"]
        if results:
            return Reply.sse(anthropic_sse([f"The tool said: {results[-1]['content']}"]))
        text = " ".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        return Reply.sse(anthropic_sse(["You ", "said: ", text]))


async def _serve_forever() -> None:  # pragma: no cover - manual use
    peer = AnthropicPeer()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(peer.serve)
        print(f"listening {port}", flush=True)


if __name__ == "__main__":  # pragma: no cover
    trio.run(_serve_forever)
