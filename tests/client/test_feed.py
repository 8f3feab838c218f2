"""SessionFeed against a live daemon: events in order, resume after a drop, reset on a gap."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from aleph.client.feed import Disconnected, FeedState, LoginRefused, SessionFeed


@attrs.define(eq=False)
class Recorder:
    """A FeedListener that keeps what it is told and wakes waiters."""

    states: list[tuple[FeedState, str]] = attrs.Factory(list)
    events: list[dict[str, Any]] = attrs.Factory(list)
    resets: list[str] = attrs.Factory(list)
    gone: list[str] = attrs.Factory(list)
    latencies: list[float] = attrs.Factory(list)
    changed: trio.Event = attrs.Factory(trio.Event)

    def _wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def feed_state(self, state: FeedState, detail: str) -> None:
        self.states.append((state, detail))
        self._wake()

    def session_event(self, session_id: str, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._wake()

    def session_reset(self, session_id: str) -> None:
        self.resets.append(session_id)
        self._wake()

    def session_gone(self, session_id: str) -> None:
        self.gone.append(session_id)
        self._wake()

    def latency(self, seconds: float) -> None:
        self.latencies.append(seconds)
        self._wake()

    async def until(self, predicate: Callable[[], bool], within: float = 10) -> None:
        with trio.fail_after(within):
            while not predicate():
                await self.changed.wait()

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


@asynccontextmanager
async def running(feed: SessionFeed) -> AsyncIterator[SessionFeed]:
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        yield feed
        await feed.aclose()


async def test_streams_a_run_in_order(live: Any) -> None:
    recorder = Recorder()
    async with running(SessionFeed(live.url, live.token, recorder)) as feed:
        await feed.wait_state(FeedState.CONNECTED)
        created = await feed.create({"title": "t"})
        await feed.call("session.send", {"session_id": created["session_id"], "text": "a b c"})
        await recorder.until(lambda: "run.finished" in recorder.types())
    seqs = [event["seq"] for event in recorder.events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert recorder.types()[:2] == ["message.user", "run.started"]
    text = "".join(e["data"]["text"] for e in recorder.events if e["type"] == "run.delta")
    assert text.endswith("a b c")


async def test_resumes_after_the_connection_drops(live: Any) -> None:
    recorder = Recorder()
    feed = SessionFeed(live.url, live.token, recorder, backoff_min=0.01)
    async with running(feed):
        await feed.wait_state(FeedState.CONNECTED)
        session_id = (await feed.create({}))["session_id"]
        await feed.call("session.send", {"session_id": session_id, "text": "one"})
        await recorder.until(lambda: recorder.types().count("run.finished") == 1)
        assert feed.client is not None
        await feed.client.ws.aclose()
        await feed.wait_state(FeedState.DISCONNECTED)
        # Events while we are away are replayed on resume.
        async with live.connect() as other:
            await other.call("session.send", {"session_id": session_id, "text": "two"})
        await feed.wait_state(FeedState.CONNECTED)
        await recorder.until(lambda: recorder.types().count("run.finished") == 2)
    seqs = [event["seq"] for event in recorder.events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert recorder.resets == []
    assert feed.connections == 2


async def test_a_resume_gap_resets_the_session(start_daemon: Any) -> None:
    live = await start_daemon(limits={"event_retention": 3})
    recorder = Recorder()
    feed = SessionFeed(live.url, live.token, recorder, backoff_min=60)
    async with running(feed):
        await feed.wait_state(FeedState.CONNECTED)
        session_id = (await feed.create({}))["session_id"]
        assert feed.client is not None
        await feed.client.ws.aclose()
        await feed.wait_state(FeedState.DISCONNECTED)
        # While we are away, more events than are retained: resuming is impossible.
        async with live.connect() as other:
            await other.call("session.subscribe", {"session_id": session_id})
            await other.call("session.send", {"session_id": session_id, "text": "x y z w"})
            with trio.fail_after(10):
                async for note in other.notifications:
                    if note["params"]["type"] == "run.finished":
                        break
        feed.reconnect_now()
        await feed.wait_state(FeedState.CONNECTED)
        await recorder.until(lambda: recorder.resets == [session_id])
        assert feed.cursors[session_id].last_seq is not None


async def test_calls_fail_fast_while_disconnected() -> None:
    recorder = Recorder()
    feed = SessionFeed("ws://127.0.0.1:1/ws", "t", recorder, backoff_min=10)
    async with running(feed):
        await feed.wait_state(FeedState.DISCONNECTED)
        with pytest.raises(Disconnected):
            await feed.call("system.ping")


async def test_a_bad_token_stops_the_feed(live: Any) -> None:
    recorder = Recorder()
    feed = SessionFeed(live.url, "wrong", recorder)
    with pytest.raises(ExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed.run)
    assert caught.group_contains(LoginRefused)
    assert feed.state is FeedState.FAILED
