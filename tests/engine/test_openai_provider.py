"""The openai provider against a local server speaking the chat completions wire format."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from aleph.engine.api import AssistantMessage, Attachment, EngineError, TextDelta
from aleph.engine.conversation import Message, ProviderRequest, ToolSpec
from tests.engine.conftest import KEY, EngineFactory, Recorder, request
from tests.peers.openai_peer import OpenAIPeer, error_reply, openai_sse
from tests.peers.sse_server import Reply

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x03" + b"\x00" * 20


async def test_text_streams_as_deltas(openai_peer: OpenAIPeer, make_engine: EngineFactory) -> None:
    engine = make_engine(openai_peer)
    openai_peer.stream("Héllo", " wörld", " ✓")
    emit = Recorder()
    usage = await engine.run(request("hi"), emit)
    # One delta per chunk, unless several arrive in one read and are coalesced.
    assert "".join(e.text for e in emit.of(TextDelta)) == "Héllo wörld ✓"
    assert emit.of(AssistantMessage) == [AssistantMessage("Héllo wörld ✓")]
    assert (usage.input_tokens, usage.output_tokens, usage.provider) == (11, 7, "openai")
    sent = openai_peer.requests[0]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["stream"] is True
    assert sent.body["model"] == "peer-model"
    assert sent.body["messages"][0]["role"] == "system"
    assert sent.body["messages"][-1] == {"role": "user", "content": "hi"}
    assert {t["function"]["name"] for t in sent.body["tools"]} >= {"calculator", "current_time"}


async def test_tool_call_arguments_in_fragments(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    provider = make_engine(openai_peer).provider
    arguments = '{"expression": "6 * 7", "note": "ünï"}'
    openai_peer.script(Reply.sse(openai_sse(["Let me see."], [("call_1", "calculator", arguments),
                                                              ("call_2", "current_time", "{}")],
                                            fragment=3)))  # fmt: skip
    spec = ToolSpec("calculator", "calc", {"type": "object"})
    deltas: list[str] = []

    async def on_text(delta: str) -> None:
        deltas.append(delta)

    turn = await provider.complete(
        ProviderRequest("sys", (Message("user", "q"),), (spec,)), on_text
    )
    assert turn.text == "Let me see."
    assert deltas == ["Let me see."]
    assert [(c.id, c.name, c.arguments) for c in turn.tool_calls] == [
        ("call_1", "calculator", {"expression": "6 * 7", "note": "ünï"}),
        ("call_2", "current_time", {}),
    ]
    assert turn.stop_reason == "tool_calls"


async def test_images_go_as_content_parts(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer)
    attachment = Attachment("dot.png", "image/png", PNG)
    await engine.run(request("what is this?", attachments=(attachment,)), Recorder())
    content = openai_peer.requests[0].body["messages"][-1]["content"]
    assert content[0]["type"] == "text"
    assert "what is this?" in content[0]["text"]
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")


async def test_bad_key_is_refused_without_leaking_it(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer)
    openai_peer.api_key = "sk-the-right-one"
    with pytest.raises(EngineError) as caught:
        await engine.run(request(), Recorder())
    error = caught.value
    assert error.code == -32007
    assert error.data == {"provider": "openai", "status": 401}
    assert "API key" in error.message
    assert "TEST_KEY" in error.message
    assert KEY not in error.message
    assert KEY not in repr(error.data)


async def test_missing_key_variable_is_explained(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer, provider={"api_key_env": "NOT_SET_ANYWHERE"})
    with pytest.raises(EngineError, match="NOT_SET_ANYWHERE"):
        await engine.run(request(), Recorder())
    assert openai_peer.requests == []


async def test_key_from_the_secret_when_no_variable_is_named(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    """provider.api_key: ALEPH_PROVIDER__API_KEY or the systemd credential."""
    openai_peer.api_key = "sk-from-a-credential"
    engine = make_engine(
        openai_peer, provider={"api_key_env": "", "api_key": "sk-from-a-credential"}
    )
    recorder = Recorder()
    await engine.run(request(), recorder)
    assert openai_peer.requests
    wrong = make_engine(openai_peer, provider={"api_key_env": "", "api_key": "sk-wrong"})
    with pytest.raises(EngineError) as caught:
        await wrong.run(request(), Recorder())
    assert "provider.api_key" in caught.value.message
    assert "sk-wrong" not in caught.value.message


async def test_unknown_model(openai_peer: OpenAIPeer, make_engine: EngineFactory) -> None:
    engine = make_engine(openai_peer, provider={"model": "gpt-nope"})
    with pytest.raises(EngineError, match='model "gpt-nope" not found') as caught:
        await engine.run(request(), Recorder())
    assert caught.value.data == {"provider": "openai", "status": 404}


async def test_429_is_retried_after_retry_after(
    openai_peer: OpenAIPeer, make_engine: EngineFactory, idle_clock: trio.testing.MockClock
) -> None:
    engine = make_engine(openai_peer, provider={"request_timeout": 1000.0})
    openai_peer.script(
        error_reply(429, "Rate limit reached", "rate_limit_exceeded", [("retry-after", "20")]),
        error_reply(503, "overloaded", "server_error"),
    )
    start = trio.current_time()
    emit = Recorder()
    await engine.run(request("again"), emit)
    assert emit.of(AssistantMessage)[0].text == "You said: again"
    assert len(openai_peer.requests) == 3
    # 20 s as asked, then the backoff (base 0 in these tests).
    assert 20.0 <= trio.current_time() - start < 21.0


async def test_retries_are_bounded(
    openai_peer: OpenAIPeer, make_engine: EngineFactory, idle_clock: trio.testing.MockClock
) -> None:
    engine = make_engine(openai_peer, provider={"max_retries": 2, "retry_base_delay": 1.0,
                                                "request_timeout": 1000.0})  # fmt: skip
    openai_peer.script(*[error_reply(500, "boom", "server_error")] * 5)
    start = trio.current_time()
    with pytest.raises(EngineError, match=r"HTTP 500.*3 attempts") as caught:
        await engine.run(request(), Recorder())
    assert caught.value.data == {"provider": "openai", "status": 500}
    assert len(openai_peer.requests) == 3
    assert trio.current_time() - start == pytest.approx(3.0, abs=0.5)  # 1 s, then 2 s


async def test_retry_after_longer_than_allowed_fails_at_once(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer, provider={"max_retry_delay": 5.0})
    openai_peer.script(error_reply(429, "slow down", "rate_limit", [("retry-after", "3600")]))
    with pytest.raises(EngineError, match="3600"):
        await engine.run(request(), Recorder())
    assert len(openai_peer.requests) == 1


async def test_stream_cut_in_the_middle(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer)
    openai_peer.script(Reply.sse(openai_sse(["one ", "two ", "three"]), awkward=False,
                                 cut_after=0))  # fmt: skip
    body = openai_sse(["one ", "two ", "three"])
    openai_peer.script(
        Reply(
            200,
            [("content-type", "text/event-stream")],
            [body[: len(body) // 2], body[len(body) // 2 :]],
            cut_after=1,
        )
    )
    openai_peer.server.replies.popleft()
    emit = Recorder()
    with pytest.raises(EngineError, match="cut in the middle") as caught:
        await engine.run(request(), emit)
    assert caught.value.data["provider"] == "openai"
    assert emit.of(AssistantMessage) == []  # a broken answer is not stored


async def test_stream_without_done_is_broken(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer)
    body = openai_sse(["partial"]).split(b'"finish_reason":"stop"')[0]
    openai_peer.script(Reply.sse(body.rsplit(b"data:", 1)[0]))
    with pytest.raises(EngineError, match="ended before the answer was complete"):
        await engine.run(request(), Recorder())


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (Reply(200, [("content-type", "text/html")], [b"<html>hi</html>"]), "server-sent events"),
        (
            Reply(200, [("content-type", "text/event-stream")], [b"<html>\n<body>\n"]),
            "not a server-sent event stream",
        ),
        (Reply.sse(b"data: {not json\n\n"), "not JSON"),
        (Reply.sse(b'data: {"error": {"message": "context too long"}}\n\n'), "context too long"),
    ],
)
async def test_garbage_is_refused(
    openai_peer: OpenAIPeer, make_engine: EngineFactory, reply: Reply, match: str
) -> None:
    engine = make_engine(openai_peer)
    openai_peer.script(reply)
    with pytest.raises(EngineError, match=match) as caught:
        await engine.run(request(), Recorder())
    assert caught.value.code == -32007


async def test_server_that_never_answers(
    openai_peer: OpenAIPeer, make_engine: EngineFactory, idle_clock: trio.testing.MockClock
) -> None:
    engine = make_engine(openai_peer, provider={"request_timeout": 30.0})
    openai_peer.script(Reply(hang=True))
    start = trio.current_time()
    with pytest.raises(EngineError, match="did not answer within 30 s"):
        await engine.run(request(), Recorder())
    assert trio.current_time() - start == pytest.approx(30.0, abs=0.5)


async def test_server_that_stops_sending(
    openai_peer: OpenAIPeer, make_engine: EngineFactory, idle_clock: trio.testing.MockClock
) -> None:
    engine = make_engine(openai_peer, provider={"request_timeout": 30.0})
    openai_peer.script(Reply.sse(openai_sse(["a", "b", "c"]), hang_after=40))
    with pytest.raises(EngineError, match="stopped sending for 30 s"):
        await engine.run(request(), Recorder())


async def test_unreachable_server(make_engine: EngineFactory) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    peer = OpenAIPeer()
    engine = make_engine(peer, provider={"base_url": f"http://127.0.0.1:{port}/v1",
                                         "max_retries": 1})  # fmt: skip
    with pytest.raises(EngineError, match="cannot reach the provider"):
        await engine.run(request(), Recorder())
