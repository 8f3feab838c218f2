"""The agent loop: model -> tools (concurrent, timed) -> model, failures, cancellation."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from aleph.engine.api import (
    AssistantMessage,
    EngineEvent,
    HistoryMessage,
    TextDelta,
    ToolFinished,
    ToolStarted,
)
from aleph.engine.loop import AgentEngine
from aleph.engine.tools import Tool, ToolContext
from tests.engine.conftest import EngineFactory, Recorder, request
from tests.peers.openai_peer import OpenAIPeer, openai_sse
from tests.peers.sse_server import Reply


def _sleeper(name: str, seconds: float, log: list[str]) -> Tool:
    async def handler(arguments: dict[str, Any], ctx: ToolContext) -> Any:
        log.append(f"start {name}")
        await trio.sleep(seconds)
        log.append(f"end {name}")
        return {"slept": seconds}

    return Tool(
        name, f"sleeps {seconds} s", {"type": "object", "properties": {}}, handler, timeout=10.0
    )


async def test_model_tool_model_in_openai(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer)
    openai_peer.stream(
        "Checking.", tool_calls=(("call_9", "calculator", '{"expression": "(2+3)*7"}'),)
    )
    emit = Recorder()
    await engine.run(request("compute"), emit)
    kinds = [type(e).__name__ for e in emit.events]
    assert kinds == [
        "TextDelta",
        "AssistantMessage",
        "ToolStarted",
        "ToolFinished",
        "TextDelta",
        "AssistantMessage",
    ]
    assert emit.of(ToolStarted) == [ToolStarted("call_9", "calculator", {"expression": "(2+3)*7"})]
    assert emit.of(ToolFinished)[0].result == {"expression": "(2+3)*7", "value": 35}
    follow_up = openai_peer.requests[1].body["messages"]
    assert follow_up[-2]["tool_calls"][0]["function"] == {
        "name": "calculator",
        "arguments": '{"expression":"(2+3)*7"}',
    }
    assert follow_up[-1] == {
        "role": "tool",
        "tool_call_id": "call_9",
        "content": '{"expression":"(2+3)*7","value":35}',
    }
    assert emit.of(AssistantMessage)[-1].text.startswith("The tool said:")


async def test_calls_of_one_turn_run_concurrently_each_under_its_timeout(
    openai_peer: OpenAIPeer, make_engine: EngineFactory, idle_clock: trio.testing.MockClock
) -> None:
    engine = make_engine(openai_peer, provider={"request_timeout": 1000.0})
    log: list[str] = []
    engine.tools.add(_sleeper("slow", 5.0, log))
    engine.tools.add(_sleeper("fast", 1.0, log))
    engine.tools.add(_sleeper("stuck", 999.0, log))
    openai_peer.stream(
        tool_calls=(("c1", "slow", "{}"), ("c2", "fast", "{}"), ("c3", "stuck", "{}"))
    )
    emit = Recorder()
    start = trio.current_time()
    await engine.run(request(), emit)
    assert trio.current_time() - start < 11.0  # 10 s timeout, not 5 + 1 + 999
    assert sorted(log[:3]) == ["start fast", "start slow", "start stuck"]
    finished = {e.call_id: e for e in emit.of(ToolFinished)}
    assert [e.call_id for e in emit.of(ToolFinished)] == ["c2", "c1", "c3"]  # as they finish
    assert finished["c3"].error == "the tool did not finish within 10 s"
    tool_messages = [m for m in openai_peer.requests[1].body["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["c1", "c2", "c3"]  # in call order
    assert tool_messages[2]["content"].startswith("error: ")


async def test_bad_arguments_go_back_to_the_model(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer)
    openai_peer.stream(tool_calls=(
        ("c1", "calculator", '{"expr": 1}'),
        ("c2", "calculator", '{"expression": '),
        ("c3", "no_such_tool", "{}"),
    ))  # fmt: skip
    emit = Recorder()
    await engine.run(request(), emit)
    errors = {e.call_id: e.error for e in emit.of(ToolFinished)}
    assert errors["c1"] is not None
    assert "arguments.expression: required" in errors["c1"]
    assert "arguments.expr: unknown argument" in errors["c1"]
    assert errors["c2"] == "the arguments are not valid JSON"
    assert errors["c3"] == 'no tool named "no_such_tool" is available'
    assert len(emit.of(AssistantMessage)) == 2  # the run went on


async def test_max_tool_rounds_then_an_answer_without_tools(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer, provider={"max_tool_rounds": 2})
    for index in range(3):
        openai_peer.stream(tool_calls=((f"c{index}", "current_time", "{}"),))
    emit = Recorder()
    await engine.run(request(), emit)
    assert len(openai_peer.requests) == 3
    assert "tools" in openai_peer.requests[1].body
    last = openai_peer.requests[2].body
    assert "tools" not in last
    assert "every tool call allowed" in last["messages"][0]["content"]
    assert len(emit.of(ToolFinished)) == 2
    assert emit.of(AssistantMessage)[-1].tool_calls == ()


async def test_guest_session_gets_only_safe_tools(
    openai_peer: OpenAIPeer, make_engine: EngineFactory, tmp_path: Any
) -> None:
    engine = make_engine(
        openai_peer, tools={"enable_files": True, "workspace_dir": str(tmp_path / "ws")}
    )
    openai_peer.stream(tool_calls=(("c1", "read_file", '{"path": "x"}'),))
    emit = Recorder()
    await engine.run(request(session_type="guest", role="guest"), emit)
    offered = {t["function"]["name"] for t in openai_peer.requests[0].body["tools"]}
    assert offered == {"calculator", "current_time"}
    assert emit.of(ToolFinished)[0].error == 'no tool named "read_file" is available'


async def test_cancelled_while_streaming_stores_nothing(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer)
    body = openai_sse(["first ", "second ", "third"])
    split = body.index(b"\n\n", body.index(b"first ")) + 2
    openai_peer.script(
        Reply(
            200, [("content-type", "text/event-stream")], [body[:split], body[split:]], hang_after=1
        )
    )
    seen = trio.Event()
    events: list[EngineEvent] = []

    async def emit(event: EngineEvent) -> None:
        events.append(event)
        seen.set()

    with trio.move_on_after(30) as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.run, request(), emit)
            await seen.wait()
            nursery.cancel_scope.cancel()
    assert not scope.cancelled_caught
    assert events
    assert all(isinstance(e, TextDelta) for e in events)
    # The engine can still run afterwards on the same HTTP client.
    emit2 = Recorder()
    await engine.run(request("again"), emit2)
    assert emit2.of(AssistantMessage)[0].text == "You said: again"


async def test_cancelled_while_tools_run_pairs_every_call(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer)
    started = trio.Event()

    async def forever(arguments: dict[str, Any], ctx: ToolContext) -> Any:
        started.set()
        await trio.sleep_forever()

    engine.tools.add(Tool("forever", "never ends", {"type": "object"}, forever, timeout=1e6))
    openai_peer.stream(
        tool_calls=(("c1", "forever", "{}"), ("c2", "calculator", '{"expression": "1+1"}'))
    )
    emit = Recorder()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.run, request(), emit)
        await started.wait()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    finished = {e.call_id: e for e in emit.of(ToolFinished)}
    assert finished["c2"].result == {"expression": "1+1", "value": 2}
    assert finished["c1"].error == "cancelled"
    assert len(emit.of(AssistantMessage)) == 1  # the turn that asked for the tools


async def test_history_is_sent_and_repaired(
    openai_peer: OpenAIPeer, make_engine: EngineFactory
) -> None:
    engine = make_engine(openai_peer)
    history = (
        HistoryMessage("user", "earlier question"),
        HistoryMessage("assistant", "", {"tool_calls": [
            {"id": "old1", "name": "calculator", "arguments": {"expression": "1"}}]}),
        # no result for old1: that run was cancelled
        HistoryMessage("user", "and now?"),
        HistoryMessage("assistant", "an answer"),
        HistoryMessage("tool", "stray", {"call_id": "zzz", "name": "x"}),
    )  # fmt: skip
    await engine.run(request("next", history=history), Recorder())
    sent = openai_peer.requests[0].body["messages"][1:]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user", "assistant", "user"]
    assert sent[2]["tool_call_id"] == "old1"
    assert "cancelled" in sent[2]["content"]


async def test_echo_provider_runs_tools_without_a_model(make_config: Any) -> None:
    engine = AgentEngine.from_config(make_config())
    emit = Recorder()
    usage = await engine.run(request('/tool calculator {"expression": "3*4"}'), emit)
    assert emit.of(ToolFinished)[0].result == {"expression": "3*4", "value": 12}
    assert "tool calculator returned" in emit.of(AssistantMessage)[-1].text
    assert usage.provider == "echo"
    emit = Recorder()
    await engine.run(request("plain words here"), emit)
    assert "".join(e.text for e in emit.of(TextDelta)) == "[echo] plain words here"
