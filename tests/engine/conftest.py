"""Fixtures for the engine: model-API peers on 127.0.0.1 and engines pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing

from aleph.engine.api import EngineEvent, RunRequest
from aleph.engine.loop import AgentEngine
from tests.conftest import MakeConfig
from tests.peers.anthropic_peer import AnthropicPeer
from tests.peers.openai_peer import OpenAIPeer

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def idle_clock() -> trio.testing.MockClock:
    """Virtual time that jumps only when every task has been idle for 50 ms of real
    time: timeouts and Retry-After waits pass at once while real sockets still work."""
    return trio.testing.MockClock(autojump_threshold=0.05)


@pytest.fixture
async def openai_peer(nursery: trio.Nursery) -> OpenAIPeer:
    peer = OpenAIPeer(api_key=KEY)
    await nursery.start(peer.serve)
    return peer


@pytest.fixture
async def anthropic_peer(nursery: trio.Nursery) -> AnthropicPeer:
    peer = AnthropicPeer(api_key=KEY)
    await nursery.start(peer.serve)
    return peer


EngineFactory = Callable[..., AgentEngine]


@pytest.fixture
async def make_engine(make_config: MakeConfig) -> AsyncIterator[EngineFactory]:
    """`make_engine(peer, **sections)`: an AgentEngine on that peer, closed at the end."""
    engines: list[AgentEngine] = []

    def make(
        peer: OpenAIPeer | AnthropicPeer | None = None, **sections: dict[str, Any]
    ) -> AgentEngine:
        provider: dict[str, Any] = {"retry_base_delay": 0.0}
        if isinstance(peer, OpenAIPeer):
            provider.update(kind="openai", base_url=peer.base_url, model="peer-model")
        elif isinstance(peer, AnthropicPeer):
            provider.update(kind="anthropic", base_url=peer.base_url, model="claude-peer")
        provider.update({"api_key_env": "TEST_KEY", **sections.pop("provider", {})})
        config = make_config(provider=provider, **sections)
        engine = AgentEngine.from_config(config, environ={"TEST_KEY": KEY})
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.aclose()


def request(text: str = "hello", **kwargs: Any) -> RunRequest:
    fields: dict[str, Any] = {"run_id": "r_1", "session_id": "s_1", "session_type": "owner",
                              "role": "owner", "text": text}  # fmt: skip
    fields.update(kwargs)
    return RunRequest(**fields)


class Recorder:
    """An emit that keeps every engine event."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []

    async def __call__(self, event: EngineEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]
