"""The anthropic provider against a local server speaking the messages streaming format."""

from __future__ import annotations

import orjson
import pytest
import trio
import trio.testing

from aleph.engine.api import AssistantMessage, Attachment, EngineError, TextDelta, ToolFinished
from aleph.engine.conversation import Message, ToolCall
from aleph.engine.providers.anthropic import AnthropicStream, to_anthropic
from aleph.engine.providers.sse import SseEvent
from tests.engine.conftest import KEY, EngineFactory, Recorder, request
from tests.engine.test_openai_provider import PNG
from tests.peers.anthropic_peer import AnthropicPeer, anthropic_error, anthropic_sse, event
from tests.peers.sse_server import Reply


async def test_text_streams_as_deltas(
    anthropic_peer: AnthropicPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(anthropic_peer)
    anthropic_peer.stream("Bon", "jour ", "à toi")
    emit = Recorder()
    usage = await engine.run(request("salut"), emit)
    assert "".join(e.text for e in emit.of(TextDelta)) == "Bonjour à toi"
    assert emit.of(AssistantMessage) == [AssistantMessage("Bonjour à toi")]
    assert (usage.input_tokens, usage.output_tokens, usage.provider) == (13, 9, "anthropic")
    sent = anthropic_peer.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["stream"] is True
    assert sent.body["max_tokens"] == 4096
    assert "Aleph" in sent.body["system"]
    assert sent.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "salut"}]}
    ]
    assert all("input_schema" in tool for tool in sent.body["tools"])


async def test_full_loop_with_tool_use(
    anthropic_peer: AnthropicPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(anthropic_peer)
    anthropic_peer.stream(
        "Let me compute.", tool_uses=(("toolu_1", "calculator", '{"expression": "2 ** 10"}'),)
    )
    emit = Recorder()
    usage = await engine.run(request("what is 2**10?"), emit)
    finished = emit.of(ToolFinished)
    assert finished == [
        ToolFinished("toolu_1", "calculator", result={"expression": "2 ** 10", "value": 1024})
    ]
    answers = emit.of(AssistantMessage)
    assert answers[0].tool_calls == (
        {"id": "toolu_1", "name": "calculator", "arguments": {"expression": "2 ** 10"}},
    )
    assert answers[1].text.startswith("The tool said: ")
    second = anthropic_peer.requests[1].body["messages"]
    assert second[1]["role"] == "assistant"
    assert second[1]["content"][1] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "calculator",
        "input": {"expression": "2 ** 10"},
    }
    assert second[2]["role"] == "user"
    assert second[2]["content"][0]["type"] == "tool_result"
    assert second[2]["content"][0]["tool_use_id"] == "toolu_1"
    assert "1024" in second[2]["content"][0]["content"]
    assert usage.input_tokens == 26


async def test_images_go_as_base64_blocks(
    anthropic_peer: AnthropicPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(anthropic_peer)
    await engine.run(
        request("look", attachments=(Attachment("a.png", "image/png", PNG),)), Recorder()
    )
    blocks = anthropic_peer.requests[0].body["messages"][0]["content"]
    assert blocks[0]["type"] == "image"
    assert blocks[0]["source"]["media_type"] == "image/png"
    assert blocks[0]["source"]["data"].startswith("iVBORw0KGgo")


def test_tool_results_are_grouped_in_one_user_turn() -> None:
    calls = (ToolCall("a", "x", {}), ToolCall("b", "y", {"k": 1}))
    messages = (
        Message("user", "q"),
        Message("assistant", "", tool_calls=calls),
        Message("tool", "1", call_id="a", name="x"),
        Message("tool", "boom", call_id="b", name="y", is_error=True),
        Message("assistant", "done"),
    )
    out = to_anthropic(messages)
    assert [m["role"] for m in out] == ["user", "assistant", "user", "assistant"]
    assert [b["tool_use_id"] for b in out[2]["content"]] == ["a", "b"]
    assert out[2]["content"][1]["is_error"] is True


async def test_error_event_in_the_stream(
    anthropic_peer: AnthropicPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(anthropic_peer)
    body = anthropic_sse(["partial"], stop=False).split(b"event: message_delta")[0]
    body += event(
        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    anthropic_peer.script(Reply.sse(body))
    emit = Recorder()
    with pytest.raises(EngineError, match="overloaded_error: Overloaded") as caught:
        await engine.run(request(), emit)
    assert caught.value.data["provider"] == "anthropic"
    assert [e.text for e in emit.of(TextDelta)] == ["partial"]
    assert emit.of(AssistantMessage) == []


async def test_stream_ending_before_message_stop(
    anthropic_peer: AnthropicPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(anthropic_peer)
    anthropic_peer.script(Reply.sse(anthropic_sse(["cut"], stop=False)))
    with pytest.raises(EngineError, match="before message_stop"):
        await engine.run(request(), Recorder())


async def test_bad_key(anthropic_peer: AnthropicPeer, make_engine: EngineFactory) -> None:
    anthropic_peer.api_key = "another"
    with pytest.raises(EngineError, match="refused the API key") as caught:
        await make_engine(anthropic_peer).run(request(), Recorder())
    assert caught.value.data == {"provider": "anthropic", "status": 401}
    assert "invalid x-api-key" in caught.value.message


async def test_unknown_model(anthropic_peer: AnthropicPeer, make_engine: EngineFactory) -> None:
    engine = make_engine(anthropic_peer, provider={"model": "claude-nope"})
    with pytest.raises(EngineError, match='"claude-nope" not found') as caught:
        await engine.run(request(), Recorder())
    assert caught.value.data["status"] == 404


async def test_overloaded_is_retried(
    anthropic_peer: AnthropicPeer, make_engine: EngineFactory, idle_clock: trio.testing.MockClock
) -> None:
    engine = make_engine(anthropic_peer, provider={"request_timeout": 1000.0})
    anthropic_peer.script(
        anthropic_error(529, "overloaded_error", "Overloaded"),
        anthropic_error(429, "rate_limit_error", "slow down", [("retry-after", "7")]),
    )
    start = trio.current_time()
    emit = Recorder()
    await engine.run(request("ok"), emit)
    assert emit.of(AssistantMessage)[0].text == "You said: ok"
    assert 7.0 <= trio.current_time() - start < 8.0


async def test_server_that_never_answers(
    anthropic_peer: AnthropicPeer, make_engine: EngineFactory, idle_clock: trio.testing.MockClock
) -> None:
    engine = make_engine(anthropic_peer, provider={"request_timeout": 45.0})
    anthropic_peer.script(Reply(hang=True))
    with pytest.raises(EngineError, match="did not answer within 45 s"):
        await engine.run(request(), Recorder())


async def test_cut_stream(anthropic_peer: AnthropicPeer, make_engine: EngineFactory) -> None:
    body = anthropic_sse(["a", "b", "c"])
    anthropic_peer.script(
        Reply(200, [("content-type", "text/event-stream")], [body[:300], body[300:]], cut_after=1)
    )
    with pytest.raises(EngineError, match="cut in the middle"):
        await make_engine(anthropic_peer).run(request(), Recorder())


def test_tool_input_given_whole_at_block_start() -> None:
    stream = AnthropicStream()
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "t", "name": "n", "input": {"a": 1}},
    }
    for name, data in (
        ("message_start", {"type": "message_start", "message": {}}),
        ("content_block_start", start),
        ("message_stop", {"type": "message_stop"}),
    ):
        stream.feed(SseEvent(name, orjson.dumps(data).decode()))
    assert stream.finish().tool_calls == (ToolCall("t", "n", {"a": 1}),)
