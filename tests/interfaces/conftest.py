"""Fixtures for the bot tests: a real session hub and pairing store, the bridge, the peers.

trio_asyncio is imported here, before any test runs, so that it patches
asyncio before anything can import anyio's asyncio backend (PITFALLS.md).
"""

from __future__ import annotations

import trio_asyncio  # noqa: F401  # isort: skip  (must come first)

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from aleph.daemon import migrations
from aleph.engine.api import AssistantMessage, Emit, RunRequest, TextDelta, Usage
from aleph.interfaces.bridge import BotBridge
from aleph.interfaces.discord_bot import DiscordChannelManager
from aleph.interfaces.formatting import DISCORD_LIMIT, TELEGRAM_LIMIT, utf16_len
from aleph.interfaces.router import ChatSettings, InboundRouter
from aleph.interfaces.routing import AccessPolicy
from aleph.interfaces.telegram_bot import TelegramBotHandler
from aleph.security.pairing import PairingStore
from aleph.sessions import SendLimits, SessionHub, SessionStore
from aleph.storage import Database
from tests.peers.discord_peer import TOKEN as DISCORD_TOKEN
from tests.peers.discord_peer import DiscordPeer
from tests.peers.telegram_peer import TOKEN, TelegramPeer


@attrs.define(eq=False)
class ScriptedEngine:
    """The model: answers "echo: TEXT", or `tokens` words `delay` seconds apart
    for a message starting with "long"; records every request."""

    tokens: int = 2000
    per_step: int = 10  # tokens emitted per delay
    delay: float = 0.2
    requests: list[RunRequest] = attrs.Factory(list)

    async def run(self, request: RunRequest, emit: Emit) -> Usage:
        self.requests.append(request)
        if request.text.startswith("long"):
            parts = []
            for index in range(self.tokens):
                if index % self.per_step == 0:
                    await trio.sleep(self.delay)
                parts.append(f"word{index} " if index % 12 else f"word{index}\n")
                await emit(TextDelta(parts[-1]))
            await emit(AssistantMessage("".join(parts)))
            return Usage(output_tokens=self.tokens, provider="scripted")
        await emit(TextDelta("echo: "))
        await emit(TextDelta(request.text))
        await emit(AssistantMessage("echo: " + request.text))
        return Usage(output_tokens=2, provider="scripted")


@attrs.define(eq=False)
class Harness:
    hub: SessionHub
    pairing: PairingStore
    engine: ScriptedEngine
    bridge: BotBridge
    nursery: trio.Nursery
    bots_stopping: trio.Event = attrs.Factory(trio.Event)
    bots_done: trio.Event | None = None

    async def stop_bots(self) -> None:
        """Stop the bots while their peers still answer (a clean PTB/discord.py shutdown)."""
        self.bots_stopping.set()
        if self.bots_done is not None:
            with trio.move_on_after(10):
                await self.bots_done.wait()


@pytest.fixture
def jumping_clock(mock_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    """Virtual time that jumps ahead once the process has idled 50 ms of real time:
    throttles and backoffs take no real time, while the peers' real sockets (which
    answer well within that) never see a spurious timeout."""
    mock_clock.autojump_threshold = 0.05
    return mock_clock


@pytest.fixture
async def harness(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Callable[..., Any]]:
    """`h = await harness(settings={...})`: db, hub, pairing and an empty bridge (not started)."""
    db = await Database.open(tmp_path / "aleph.db", migrations())
    stopping = trio.Event()

    made: list[Harness] = []

    async def make(
        settings: dict[str, ChatSettings] | None = None, user_per_minute: float = 1000
    ) -> Harness:
        engine = ScriptedEngine()
        hub = SessionHub(SessionStore(db), engine, SendLimits(1000, 1000))
        await nursery.start(hub.serve, stopping, 1.0)
        pairing = PairingStore(db)
        await pairing.load()
        router = InboundRouter(hub, pairing, settings or {}, {}, user_per_minute=user_per_minute)
        made.append(Harness(hub, pairing, engine, BotBridge(router), nursery))
        return made[-1]

    try:
        yield make
    finally:
        for h in made:
            await h.stop_bots()
        stopping.set()
        nursery.cancel_scope.cancel()
        with trio.CancelScope(shield=True):
            await db.aclose()


def telegram_settings(**policy: Any) -> ChatSettings:
    return ChatSettings(AccessPolicy(**policy), TELEGRAM_LIMIT, utf16_len, 1.5, 3.0)


@pytest.fixture
async def telegram_peer(nursery: trio.Nursery) -> TelegramPeer:
    peer: TelegramPeer = await nursery.start(TelegramPeer().serve)
    return peer


def add_telegram(h: Harness, peer: TelegramPeer, token: str = TOKEN, **backoff: float) -> Any:
    def make() -> TelegramBotHandler:
        return TelegramBotHandler(token, peer.base_url, peer.base_file_url, poll_timeout=5.0)

    return h.bridge.add("telegram", make, **backoff)


def discord_settings(**policy: Any) -> ChatSettings:
    return ChatSettings(AccessPolicy(**policy), DISCORD_LIMIT - 8, len, 1.2, 1.2)


@pytest.fixture
async def discord_peer(nursery: trio.Nursery) -> AsyncIterator[DiscordPeer]:
    peer: DiscordPeer = await nursery.start(DiscordPeer().serve)
    undo = peer.patch_discord()
    try:
        yield peer
    finally:
        undo()


def add_discord(h: Harness, peer: DiscordPeer, token: str = DISCORD_TOKEN, **backoff: float) -> Any:
    def make() -> DiscordChannelManager:
        return DiscordChannelManager(token, guild_ready_timeout=0.1)

    return h.bridge.add("discord", make, **backoff)


async def started(h: Harness, *supervisors: Any) -> None:
    """Start the bridge and wait (bounded) until every bot is up."""
    done = h.bots_done = trio.Event()

    async def run_bridge(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await h.bridge.serve(h.bots_stopping, task_status=task_status)
        finally:
            done.set()

    await h.nursery.start(run_bridge)
    with trio.fail_after(20):
        for supervisor in supervisors:
            await supervisor.wait_running()
