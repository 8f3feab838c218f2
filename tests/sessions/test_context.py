"""A run reads only as much history as its model could see (History.context)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import hypothesis.strategies as st
import pytest
import trio
from hypothesis import given, settings

from aleph.config import ThinkerConfig
from aleph.engine.api import (
    AssistantMessage,
    Emit,
    HistoryMessage,
    RunRequest,
    TextDelta,
    Usage,
)
from aleph.engine.conversation import Message
from aleph.engine.thinker import Thinker
from aleph.security.tokens import OWNER, Principal
from aleph.sessions.history import MemoryHistory
from aleph.sessions.model import StoredMessage, within_budget
from tests.sessions.fakes import running_hub

GUEST = Principal("guest:context", "guest")


@st.composite
def histories(draw: Any) -> list[StoredMessage]:
    """Runs as the hub stores them: each run's question, then its answers and
    tool messages (tool calls whose results may be lost), with the question of
    the next run sometimes sent (and stored) while this one was answering; a
    few messages of no run; odd lengths throughout."""
    runs = draw(st.integers(0, 12))
    order: list[tuple[str, str | None, dict[str, Any]]] = []
    early: set[int] = set()  # runs whose question was stored during the run before
    for run in range(runs):
        if run not in early:
            order.append(("user", f"r{run}", {}))
        if run + 1 < runs and draw(st.booleans()):
            order.append(("user", f"r{run + 1}", {}))
            early.add(run + 1)
        for _ in range(draw(st.integers(0, 3))):
            calls = draw(st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True))
            meta: dict[str, Any] = {"tool_calls": [{"id": c, "name": "t", "arguments": {}}
                                                   for c in calls]} if calls else {}  # fmt: skip
            order.append(("assistant", f"r{run}", meta))
            for call in calls:
                if draw(st.booleans()):
                    order.append(("tool", f"r{run}", {"call_id": call, "name": "t"}))
        if draw(st.integers(0, 9)) == 0:
            order.append((draw(st.sampled_from(["user", "assistant"])), None, {}))
    return [
        StoredMessage(index + 1, role, "x" * draw(st.integers(0, 300)), 0.0, run, meta)
        for index, (role, run, meta) in enumerate(order)
    ]


def trimmed(thinker: Thinker, stored: list[StoredMessage]) -> list[Message]:
    history = thinker.history([HistoryMessage(m.role, m.text, m.meta) for m in stored])
    return thinker.trim("system prompt", history, Message("user", "now"))


@settings(max_examples=500, deadline=None)
@given(histories(), st.integers(256, 1200), st.sets(st.sampled_from(["r9", "r10", "r11"])))
def test_the_model_sees_the_same_history_as_if_all_were_read(
    stored: list[StoredMessage], budget: int, skip: set[str]
) -> None:
    thinker = Thinker(ThinkerConfig(context_budget=budget))
    everything = within_budget(reversed(stored), None, skip)
    read = within_budget(reversed(stored), budget, skip)
    assert read == everything[len(everything) - len(read) :]  # the end of the same order
    assert trimmed(thinker, read) == trimmed(thinker, everything)
    # Each run's messages come together, its question first.
    positions: dict[str, list[int]] = {}
    for index, message in enumerate(everything):
        if message.run_id is not None:
            positions.setdefault(message.run_id, []).append(index)
    for where in positions.values():
        assert where == list(range(where[0], where[0] + len(where)))
        assert everything[where[0]].role == "user"


def test_no_budget_reads_everything_but_the_skipped_runs() -> None:
    stored = [StoredMessage(i, "user", "x" * 100, 0.0, f"r{i}") for i in range(10)]
    assert within_budget(reversed(stored), None, set()) == stored
    assert within_budget(reversed(stored), None, {"r1", "r3"}) == [
        m for m in stored if m.run_id not in ("r1", "r3")
    ]


@attrs.define(eq=False)
class RecordingEngine:
    """Answers each run with one word and keeps the history it was given."""

    seen: list[tuple[HistoryMessage, ...]] = attrs.Factory(list)

    async def run(self, request: RunRequest, emit: Emit) -> Usage:
        self.seen.append(request.history)
        await emit(TextDelta("ok"))
        return Usage(provider="fake")


async def test_a_long_session_reads_only_the_tail_from_sqlite(tmp_path: Path) -> None:
    engine = RecordingEngine()
    # 1,000 tokens of budget: about 4,000 characters, 40 messages of 100.
    async with running_hub(tmp_path / "a.db", engine, context_budget=1000) as (hub, _):
        session = await hub.create(OWNER)
        for index in range(150):
            await session.history.add("user", f"{index:03d}" + "x" * 97)
        await hub.send(OWNER, session.id, "the question")
        await session.idle.wait()
        # The run saw the newest messages, not its own, and only about the budget.
        seen = engine.seen[-1]
        assert [m.text[:3] for m in seen] == [f"{i:03d}" for i in range(150 - len(seen), 150)]
        assert 40 <= len(seen) <= 42
        # The whole history is still there for session.history.
        page, more = await session.history.page(500, None)
        assert len(page) == 151  # the 150 and the question
        assert not more


async def test_guest_history_in_memory_is_bounded_the_same_way() -> None:
    history = MemoryHistory()
    for index in range(100):
        await history.add("user", "y" * 400, run_id=f"r{index}")
    context = await history.context(1000, {"r99"})
    # 100 tokens each: ten fit the budget, the eleventh crosses it and is the last read.
    assert [m.run_id for m in context] == [f"r{i}" for i in range(88, 99)]


@attrs.define(eq=False)
class GatedEngine:
    """Answers "answer to X"; a message "wait" holds its run until `gate` is set."""

    gate: trio.Event = attrs.Factory(trio.Event)
    seen: dict[str, list[str]] = attrs.Factory(dict)

    async def run(self, request: RunRequest, emit: Emit) -> Usage:
        self.seen[request.text] = [m.text for m in request.history]
        if request.text == "wait":
            await self.gate.wait()
        await emit(AssistantMessage(f"answer to {request.text}"))
        return Usage(provider="fake")


@pytest.mark.parametrize("principal", [OWNER, GUEST], ids=["stored", "in memory"])
async def test_each_run_sees_the_answers_before_it_whether_idle_or_queued(
    tmp_path: Path, principal: Principal
) -> None:
    engine = GatedEngine()
    async with running_hub(tmp_path / "a.db", engine, context_budget=1000) as (hub, _):
        session = await hub.create(principal)
        # To an idle session: the context is read with the message.
        await hub.send(principal, session.id, "wait")
        # While "wait" runs: queued, so its context is read when its run starts,
        # after the answer to "wait", though its message was stored before that.
        await hub.send(principal, session.id, "queued")
        engine.gate.set()
        await session.idle.wait()
        await hub.send(principal, session.id, "idle again")
        await session.idle.wait()
    assert engine.seen == {
        "wait": [],
        "queued": ["wait", "answer to wait"],
        # Stored as "wait", "queued", "answer to wait"...: each answer follows
        # its own question all the same.
        "idle again": ["wait", "answer to wait", "queued", "answer to queued"],
    }


async def test_a_context_read_before_a_clear_is_not_used(tmp_path: Path) -> None:
    engine = GatedEngine()
    async with running_hub(tmp_path / "a.db", engine) as (hub, _):
        session = await hub.create(OWNER)
        await session.history.add("user", "old")
        # Stop the runner from starting before the clear (the hub's own clear
        # would drop the queued run; a clear from elsewhere must not leave a
        # stale context behind).
        async with trio.open_nursery() as nursery:
            hub._nursery, real = nursery, hub._nursery  # runs start only when this block ends
            await hub.send(OWNER, session.id, "after the clear")
            assert session.queue[0].context is not None
            await session.history.clear()
            hub._nursery = real
        await session.idle.wait()
    assert engine.seen["after the clear"] == []
