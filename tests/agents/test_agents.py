"""Remote agents over a real WebSocket: registration, tools relayed, failures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from aleph.client import CallFailed, GatewayClient
from tests.conftest import LiveDaemon
from tests.engine.conftest import KEY
from tests.peers.openai_peer import OpenAIPeer

WEATHER = {
    "name": "weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


async def _wait_until(check: Callable[[], Awaitable[bool]]) -> None:
    # The server sees the TCP close some time after the client's side ends; no
    # event visible from a client marks it, so ask until it shows.
    with trio.fail_after(10):
        while not await check():  # noqa: ASYNC110
            await trio.sleep(0.01)


async def _register(agent: GatewayClient, handler: Handler, **extra: Any) -> str:
    agent.on_request = handler
    params = {"name": "weather-bot", "capabilities": ["weather", "geo"], "tools": [WEATHER]}
    params.update(extra)
    result = await agent.call("agent.register", params)
    agent_id: str = result["agent_id"]
    assert agent_id.startswith("a_")
    return agent_id


async def _sunny(method: str, params: dict[str, Any]) -> Any:
    assert method == "agent.invoke"
    assert params["name"] == "weather"
    return {"city": params["arguments"]["city"], "sky": "sunny", "call_id": params["call_id"]}


async def test_register_list_find_status_and_leave(live: LiveDaemon, owner: GatewayClient) -> None:
    async with live.connect() as agent:
        agent_id = await _register(agent, _sunny)
        listed = (await owner.call("agent.list"))["agents"]
        assert [(a["agent_id"], a["name"], a["status"]) for a in listed] == [
            (agent_id, "weather-bot", "idle")
        ]
        assert listed[0]["capabilities"] == ["weather", "geo"]
        assert listed[0]["connected_at"].endswith("Z")
        assert len((await owner.call("agent.find", {"capability": "geo"}))["agents"]) == 1
        assert (await owner.call("agent.find", {"capability": "cooking"}))["agents"] == []
        assert await agent.call("agent.status", {"status": "busy"}) == {}
        assert (await owner.call("agent.list"))["agents"][0]["status"] == "busy"
        tools = {t["name"]: t for t in (await owner.call("tool.list"))["tools"]}
        assert tools["weather"]["provider"] == agent_id
        assert tools["weather"]["parameters"] == WEATHER["parameters"]
        assert tools["calculator"]["provider"] == "builtin"
        health = await owner.call("system.health")
        assert health["engine"]["agents"] == 1

    async def gone() -> bool:
        return (await owner.call("agent.list"))["agents"] == []

    await _wait_until(gone)
    names = {t["name"] for t in (await owner.call("tool.list"))["tools"]}
    assert "weather" not in names


async def test_tool_call_is_relayed_to_the_agent(live: LiveDaemon, owner: GatewayClient) -> None:
    async with live.connect() as agent:
        await _register(agent, _sunny)
        result = await owner.call("tool.call", {"name": "weather", "arguments": {"city": "Oslo"}})
        assert result["result"]["sky"] == "sunny"
        assert result["result"]["city"] == "Oslo"
        with pytest.raises(CallFailed) as bad:
            await owner.call("tool.call", {"name": "weather", "arguments": {"town": "Oslo"}})
        assert bad.value.code == -32602
        assert "arguments.city: required" in bad.value.message
        with pytest.raises(CallFailed) as unknown:
            await owner.call("tool.call", {"name": "nope", "arguments": {}})
        assert unknown.value.code == -32003


async def test_agent_error_becomes_tool_failed(live: LiveDaemon, owner: GatewayClient) -> None:
    async def refuse(method: str, params: dict[str, Any]) -> Any:
        raise CallFailed(-32000, "no weather station in Atlantis")

    async with live.connect() as agent:
        await _register(agent, refuse)
        with pytest.raises(CallFailed) as failed:
            await owner.call("tool.call", {"name": "weather", "arguments": {"city": "Atlantis"}})
    assert failed.value.code == -32008
    assert failed.value.data["tool"] == "weather"
    assert "no weather station in Atlantis" in failed.value.message


async def test_agent_that_never_answers_times_out(
    start_daemon: Callable[..., Awaitable[LiveDaemon]], idle_clock: trio.testing.MockClock
) -> None:
    live = await start_daemon(agents={"invoke_timeout": 7.0})
    asked = trio.Event()

    async def silent(method: str, params: dict[str, Any]) -> Any:
        asked.set()
        await trio.sleep_forever()

    async with live.connect() as agent, live.connect() as caller:
        await _register(agent, silent)
        start = trio.current_time()
        with pytest.raises(CallFailed) as failed:
            await caller.call("tool.call", {"name": "weather", "arguments": {"city": "X"}})
        assert asked.is_set()
        assert trio.current_time() - start == pytest.approx(7.0, abs=0.5)
    assert failed.value.code == -32008
    assert failed.value.data == {"tool": "weather", "reason": "timeout"}
    assert "within 7 s" in failed.value.message


async def test_disconnect_fails_calls_in_flight(live: LiveDaemon, owner: GatewayClient) -> None:
    asked = trio.Event()

    async def hang(method: str, params: dict[str, Any]) -> Any:
        asked.set()
        await trio.sleep_forever()

    failure: list[CallFailed] = []

    async def call() -> None:
        with pytest.raises(CallFailed) as failed:
            await owner.call("tool.call", {"name": "weather", "arguments": {"city": "Y"}})
        failure.append(failed.value)

    async with trio.open_nursery() as nursery:
        agent_connection = live.connect()
        async with agent_connection as agent:
            await _register(agent, hang)
            nursery.start_soon(call)
            await asked.wait()
        # the agent's connection is closed here, its call still pending
    assert failure[0].code == -32008
    assert "disconnected" in failure[0].message


async def test_tool_names_are_unique(live: LiveDaemon, owner: GatewayClient) -> None:
    async with live.connect() as first, live.connect() as second:
        first_id = await _register(first, _sunny)
        with pytest.raises(CallFailed) as taken:
            await _register(second, _sunny)
        assert taken.value.code == -32602
        assert f'"weather" is already taken by {first_id}' in taken.value.message
        with pytest.raises(CallFailed) as builtin:
            await _register(second, _sunny, tools=[{"name": "calculator"}])
        assert "already taken by a built-in tool" in builtin.value.message
        with pytest.raises(CallFailed) as again:
            await _register(first, _sunny, tools=[])
        assert "already registered" in again.value.message
        with pytest.raises(CallFailed) as bad_name:
            await _register(second, _sunny, tools=[{"name": "has space"}])
        assert bad_name.value.code == -32602
        assert len((await owner.call("agent.list"))["agents"]) == 1


async def test_agent_tool_serves_a_model_run(
    start_daemon: Callable[..., Awaitable[LiveDaemon]],
    openai_peer: OpenAIPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PEER_KEY", KEY)
    live = await start_daemon(provider={
        "kind": "openai", "base_url": openai_peer.base_url, "model": "peer-model",
        "api_key_env": "PEER_KEY",
    })  # fmt: skip
    openai_peer.stream("Asking the agent.", tool_calls=(("call_w", "weather", '{"city": "Rome"}'),))
    async with live.connect() as agent, live.connect() as user:
        await _register(agent, _sunny)
        session = await user.call("session.create", {})
        await user.call("session.send", {"session_id": session["session_id"], "text": "weather?"})
        events = []
        with trio.fail_after(20):
            async for note in user.notifications:
                if note["method"] != "session.event":
                    continue
                events.append(note["params"])
                if note["params"]["type"] in ("run.finished", "run.failed"):
                    break
    types = [e["type"] for e in events]
    assert types[-1] == "run.finished", events[-1]
    finished = next(e for e in events if e["type"] == "tool.finished")
    assert finished["data"]["result"]["sky"] == "sunny"
    assert finished["data"]["result"]["call_id"] == "call_w"
    tool_message = openai_peer.requests[1].body["messages"][-1]
    assert tool_message["role"] == "tool"
    assert '"sky":"sunny"' in tool_message["content"]
    final = [e for e in events if e["type"] == "message.assistant"][-1]
    assert final["data"]["text"].startswith("The tool said:")
