"""A local OpenAI-compatible chat completions server, speaking the real wire format.

``POST /v1/chat/completions`` with ``"stream": true`` is answered with
``chat.completion.chunk`` server-sent events as OpenAI sends them: a first
chunk with the role, content deltas, tool calls whose ``arguments`` string is
spread over several chunks, a chunk with the ``finish_reason``, a usage chunk
with empty ``choices``, then ``data: [DONE]``; written in awkwardly split
pieces. It refuses a wrong key (401) and an unknown model (404) with
OpenAI's error bodies. Tests script answers with :meth:`OpenAIPeer.script`;
unscripted requests get ``You said: <last user text>``.

Run alone (for the benchmark): ``python -m tests.peers.openai_peer --port 0``.
"""

from __future__ import annotations

import argparse
from typing import Any

import attrs
import orjson
import trio

from tests.peers.sse_server import Recorded, Reply, ScriptedHttpServer

__all__ = ["OpenAIPeer", "error_reply", "openai_sse"]

CREATED = 1_763_800_000


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    chunk = {
        "id": "chatcmpl-peer",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "peer-model",
        "system_fingerprint": "fp_peer",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def openai_sse(
    text: list[str] | tuple[str, ...] = (),
    tool_calls: list[tuple[str, str, str]] | tuple[tuple[str, str, str], ...] = (),
    *,
    usage: tuple[int, int] = (11, 7),
    done: bool = True,
    fragment: int = 5,
) -> bytes:
    """A complete streamed answer: text deltas, then tool calls (id, name, JSON string)
    whose arguments arrive `fragment` characters at a time."""
    out = [_chunk({"role": "assistant", "content": ""})]
    out += [_chunk({"content": piece}) for piece in text]
    for index, (call_id, name, arguments) in enumerate(tool_calls):
        first = {"index": index, "id": call_id, "type": "function",
                 "function": {"name": name, "arguments": ""}}  # fmt: skip
        out.append(_chunk({"tool_calls": [first]}))
        for start in range(0, len(arguments), fragment):
            part = {"index": index, "function": {"arguments": arguments[start : start + fragment]}}
            out.append(_chunk({"tool_calls": [part]}))
    out.append(_chunk({}, "tool_calls" if tool_calls else "stop"))
    usage_chunk = {
        "id": "chatcmpl-peer", "object": "chat.completion.chunk", "created": CREATED,
        "model": "peer-model", "choices": [],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                  "total_tokens": sum(usage)},
    }  # fmt: skip
    out.append(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def error_reply(status: int, message: str, code: str, headers: list[tuple[str, str]] | None = None
                ) -> Reply:  # fmt: skip
    kind = {401: "invalid_request_error", 404: "invalid_request_error", 429: "requests"}
    body = {"error": {"message": message, "type": kind.get(status, "server_error"),
                      "param": None, "code": code}}  # fmt: skip
    return Reply.json(status, body, headers)


@attrs.define(eq=False)
class OpenAIPeer:
    api_key: str | None = None  # required Bearer key, if set
    models: tuple[str, ...] = ("peer-model",)
    server: ScriptedHttpServer = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.server = ScriptedHttpServer(self._default)

    @property
    def base_url(self) -> str:
        return self.server.base + "/v1"

    @property
    def requests(self) -> list[Recorded]:
        return self.server.requests

    def script(self, *replies: Reply) -> None:
        self.server.replies.extend(replies)

    def stream(self, *text: str, tool_calls: tuple[tuple[str, str, str], ...] = (),
               **kwargs: Any) -> None:  # fmt: skip
        """Script one streamed answer."""
        self.script(Reply.sse(openai_sse(text, tool_calls), **kwargs))

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await self.server.serve(task_status=task_status)

    def check(self, request: Recorded) -> Reply | None:
        """The error the real API would give this request, if any."""
        if request.path != "/v1/chat/completions":
            return Reply.json(
                404, {"error": {"message": "Not found", "type": "invalid_request_error"}}
            )
        given = request.headers.get("authorization", "")
        if self.api_key is not None and given != f"Bearer {self.api_key}":
            shown = given.removeprefix("Bearer ")
            return error_reply(401, f"Incorrect API key provided: {shown}. You can find your "
                               "API key at https://platform.openai.com/account/api-keys.",
                               "invalid_api_key")  # fmt: skip
        model = request.body.get("model") if isinstance(request.body, dict) else None
        if model not in self.models:
            return error_reply(404, f"The model `{model}` does not exist or you do not have "
                               "access to it.", "model_not_found")  # fmt: skip
        return None

    def _default(self, request: Recorded) -> Reply:
        refused = self.check(request)
        if refused is not None:
            return refused
        messages = request.body["messages"]
        last = messages[-1]
        if last["role"] == "tool":
            return Reply.sse(openai_sse([f"The tool said: {last['content']}"]))
        content = last.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        return Reply.sse(openai_sse(["You ", "said: ", str(content)]))


def token_stream(count: int) -> bytes:
    """`count` one-word deltas, for the benchmark."""
    return openai_sse([f"t{i} " for i in range(count)], usage=(10, count))


async def _main(port: int, tokens: int, rate: float) -> None:
    peer = OpenAIPeer()
    peer.server.fast = True
    peer.server.pace = 1.0 / rate if rate else 0.0
    body = token_stream(tokens)
    pieces = [piece + b"\n\n" for piece in body.split(b"\n\n") if piece]
    peer.server.default = lambda request: Reply(
        200, [("content-type", "text/event-stream")], pieces
    )
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(peer.serve)
        print(f"listening {bound}", flush=True)
        _ = port


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.0, help="tokens/s; 0: as fast as it can")
    arguments = parser.parse_args()
    trio.run(_main, arguments.port, arguments.tokens, arguments.rate)
