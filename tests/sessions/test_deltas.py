"""Merged text deltas: what a client watching a session sees when a model
streams faster than ``limits.delta_interval`` (aleph/sessions/events.py)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from aleph.engine.api import (
    AssistantMessage,
    Emit,
    RunRequest,
    TextDelta,
    ToolFinished,
    ToolStarted,
    Usage,
)
from aleph.security.tokens import Principal
from aleph.sessions.history import MemoryHistory
from tests.sessions.fakes import FakeConnection, connect, running_hub

GUEST = Principal("guest:deltas", "guest")  # guest sessions: no disk, so autojump_clock fits
INTERVAL = 0.010


@attrs.define(eq=False)
class ScriptedEngine:
    """Each step: sleep `gap` seconds, then emit `text` (or a tool call for "<tool>")."""

    steps: list[tuple[float, str]]

    async def run(self, request: RunRequest, emit: Emit) -> Usage:
        for gap, text in self.steps:
            if gap:
                await trio.sleep(gap)
            if text == "<answer>":
                await emit(AssistantMessage("the whole answer"))
            elif text == "<tool>":
                await emit(ToolStarted("c1", "clock", {}))
                await emit(ToolFinished("c1", "clock", result="noon"))
            else:
                await emit(TextDelta(text))
        if request.text == "hang":
            await trio.sleep_forever()
        return Usage(provider="fake")


async def run_script(
    tmp_path: Path,
    nursery: trio.Nursery,
    steps: list[tuple[float, str]],
    *,
    interval: float = INTERVAL,
    text: str = "go",
    history: Any = None,
) -> list[tuple[float, str, Any]]:
    """(time since the send, event type, text or None) of every event after the send."""
    async with running_hub(tmp_path / "a.db", ScriptedEngine(steps), delta_interval=interval) as (
        hub,
        _,
    ):
        conn: FakeConnection = await connect(nursery)
        session = await hub.create(GUEST)
        if history is not None:
            session.history = history
        await hub.subscribe(GUEST, conn.client, session.id)
        start = trio.current_time()
        await hub.send(GUEST, session.id, text)
        if text == "hang":
            await trio.sleep(0.005)
            assert await hub.cancel(GUEST, session.id)
        await session.idle.wait()
        await trio.testing.wait_all_tasks_blocked()
        return [
            (round(when - start, 6), event["type"], event["data"].get("text"))
            for when, event in conn.timed_events()
            if event["type"] not in ("message.user", "run.started")
        ]


async def test_a_burst_goes_out_as_the_first_token_then_one_merged_delta(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    steps = [(0.0, f"w{i} ") for i in range(10)]
    events = await run_script(tmp_path, nursery, steps)
    # The first token is not held; the rest are sent with run.finished, which
    # comes before the interval is up and so does not wait for it.
    assert events == [
        (0.0, "run.delta", "w0 "),
        (0.0, "run.delta", "w1 w2 w3 w4 w5 w6 w7 w8 w9 "),
        (0.0, "run.finished", None),
    ]


async def test_a_model_slower_than_the_interval_gets_one_event_per_token_at_once(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    steps = [(0.015, "a"), (0.015, "b"), (0.1, "c")]
    events = await run_script(tmp_path, nursery, steps)
    assert events == [
        (0.015, "run.delta", "a"),
        (0.03, "run.delta", "b"),
        (0.13, "run.delta", "c"),
        (0.13, "run.finished", None),
    ]


async def test_held_text_goes_out_when_the_interval_is_up(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    steps = [(0.0, "a"), (0.002, "b"), (0.003, "c"), (1.0, "d"), (0.001, "e")]
    events = await run_script(tmp_path, nursery, steps)
    assert events == [
        (0.0, "run.delta", "a"),
        (INTERVAL, "run.delta", "bc"),  # held at 0.002 and 0.005, sent by the timer
        (1.005, "run.delta", "d"),  # a second after the last one: at once
        (1.006, "run.delta", "e"),  # held: run.finished comes first and takes it along
        (1.006, "run.finished", None),
    ]


async def test_held_text_goes_out_before_any_other_event(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    steps = [(0.0, "a"), (0.001, "b"), (0.001, "<tool>"), (0.0, "c")]
    events = await run_script(tmp_path, nursery, steps)
    assert [(kind, text) for _, kind, text in events] == [
        ("run.delta", "a"),
        ("run.delta", "b"),
        ("tool.started", None),
        ("tool.finished", None),
        ("run.delta", "c"),
        ("run.finished", None),
    ]
    assert events[1][0] == events[2][0] == pytest.approx(0.002)


async def test_held_text_goes_out_before_a_cancel(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    steps = [(0.0, "a"), (0.001, "b")]
    events = await run_script(tmp_path, nursery, steps, text="hang")
    assert events == [
        (0.0, "run.delta", "a"),
        (0.005, "run.delta", "b"),
        (0.005, "run.cancelled", None),
    ]


async def test_interval_zero_sends_every_delta_as_its_own_event(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    steps = [(0.0, f"w{i} ") for i in range(5)]
    events = await run_script(tmp_path, nursery, steps, interval=0.0)
    assert [text for _, kind, text in events if kind == "run.delta"] == [
        "w0 ", "w1 ", "w2 ", "w3 ", "w4 "
    ]  # fmt: skip


async def test_merged_deltas_keep_their_seqs_dense_and_their_text_whole(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    steps = [(0.0007 * (i % 3), f"t{i} ") for i in range(200)]
    async with running_hub(tmp_path / "a.db", ScriptedEngine(steps), delta_interval=0.001) as (
        hub,
        _,
    ):
        conn = await connect(nursery)
        session = await hub.create(GUEST)
        await hub.subscribe(GUEST, conn.client, session.id)
        await hub.send(GUEST, session.id, "go")
        await session.idle.wait()
        await trio.testing.wait_all_tasks_blocked()
    events = conn.events()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    deltas = [e["data"]["text"] for e in events if e["type"] == "run.delta"]
    assert "".join(deltas) == "".join(text for _, text in steps)
    assert 1 < len(deltas) < 200  # merged, but not into one
    times = [when for when, e in conn.timed_events() if e["type"] == "run.delta"]
    # Never two run.delta closer than the interval, but for the last, which
    # run.finished takes along at once.
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[:-1])]
    assert min(gaps) >= 0.001 - 1e-9


@attrs.define(eq=False)
class SlowStore(MemoryHistory):
    """A history where storing an answer takes a second, like a disk slow to sync."""

    async def add(self, role: Any, *args: Any, **kwargs: Any) -> Any:
        if role == "assistant":
            await trio.sleep(1.0)
        return await super().add(role, *args, **kwargs)


async def test_held_text_does_not_wait_for_the_answer_to_be_stored(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    steps = [(0.0, "a"), (0.001, "b"), (0.0, "<answer>")]
    events = await run_script(tmp_path, nursery, steps, history=SlowStore())
    assert events == [
        (0.0, "run.delta", "a"),
        (0.001, "run.delta", "b"),
        (1.001, "message.assistant", "the whole answer"),
        (1.001, "run.finished", None),
    ]
