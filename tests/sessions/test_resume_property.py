"""Property: whatever the interleaving of sends, subscribes, disconnects and
resumes, every subscriber's events, joined across its reconnects, are exactly
the session's sequence (no gap, no duplicate, same frames, same order)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import attrs
import hypothesis
import hypothesis.strategies as st
import orjson
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings

from aleph.security.tokens import Principal
from aleph.sessions.hub import SessionHub
from tests.sessions.fakes import FakeConnection, connect, running_hub

GUEST = Principal("guest:prop", "guest")
SUBSCRIBERS = 3

actions = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 40)),
        st.tuples(st.just("connect"), st.integers(0, SUBSCRIBERS - 1)),
        st.tuples(st.just("disconnect"), st.integers(0, SUBSCRIBERS - 1)),
        st.tuples(st.just("pause"), st.integers(0, 30)),
        st.tuples(st.just("cancel"), st.just(0)),
    ),
    max_size=40,
)


@attrs.define(eq=False)
class Watcher:
    """One subscriber across its connections: what it received, in order."""

    queue: int
    slowness: int
    received: list[dict[str, Any]] = attrs.Factory(list)
    conn: FakeConnection | None = None
    connections: int = 0
    slow_closes: int = 0
    _counted: object = None

    @property
    def connected(self) -> bool:
        return self.conn is not None and not self.conn.client.closing

    def harvest(self) -> None:
        if self.conn is not None:
            if self.conn.client.close_code == 1008 and self.conn.frames is not self._counted:
                self.slow_closes += 1
                self._counted = self.conn.frames
            self.received += [f for f in self.conn.frames if f.get("method") == "session.event"]
            self.conn.frames.clear()
            self.conn.times.clear()

    async def resume(self, hub: SessionHub, nursery: trio.Nursery, session_id: str) -> None:
        self.harvest()
        if self.conn is not None:
            self.conn.client.close(1000)
        self.connections += 1
        self.conn = await connect(nursery, self.queue, self.slowness)
        after = self.received[-1]["params"]["seq"] if self.received else 0
        await hub.subscribe(GUEST, self.conn.client, session_id, after_seq=after)

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.client.close(1001)


async def _scenario(
    db: Path, steps: list[tuple[str, int]], shapes: list[tuple[int, int]], interval: float
) -> None:
    async with (
        running_hub(db, max_queued_runs=1000, delta_interval=interval) as (hub, _),
        trio.open_nursery() as nursery,
    ):
        session = await hub.create(GUEST)
        watchers = [Watcher(queue, slowness) for queue, slowness in shapes]
        for kind, arg in steps:
            if kind == "send":
                await hub.send(GUEST, session.id, " ".join(f"w{i}" for i in range(arg)))
            elif kind == "connect":
                await watchers[arg].resume(hub, nursery, session.id)
            elif kind == "disconnect":
                watchers[arg].drop()
            elif kind == "cancel":
                await hub.cancel(GUEST, session.id)
            else:
                for _ in range(arg):
                    await trio.lowlevel.checkpoint()
        await session.idle.wait()
        await trio.testing.wait_all_tasks_blocked()
        # Everyone comes back and catches up.
        for _ in range(20):
            for watcher in watchers:
                if not watcher.connected:
                    await watcher.resume(hub, nursery, session.id)
            await trio.testing.wait_all_tasks_blocked()
            if all(w.connected for w in watchers):
                break
        last = session.events.last_seq
        expected = [orjson.loads(session.events.frame(seq)) for seq in range(1, last + 1)]
        for watcher in watchers:
            watcher.harvest()
            hypothesis.event(f"connections: {watcher.connections}")
            hypothesis.event(f"closed as slow consumer: {watcher.slow_closes > 0}")
            assert [f["params"]["seq"] for f in watcher.received] == list(range(1, last + 1))
            assert watcher.received == expected
        nursery.cancel_scope.cancel()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    steps=actions,
    shapes=st.lists(
        st.tuples(st.integers(1, 16), st.integers(0, 3)),
        min_size=SUBSCRIBERS,
        max_size=SUBSCRIBERS,
    ),
    # Merged deltas (limits.delta_interval) or one event per delta.
    interval=st.sampled_from([0.0, 0.0005, 0.002]),
)
def test_joined_streams_equal_the_session_sequence(
    steps: list[tuple[str, int]], shapes: list[tuple[int, int]], interval: float
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(_scenario, Path(tmp) / "a.db", steps, shapes, interval)
