"""The hub without sockets: runs, cancel, queue, rate limits, TTL, restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio.testing

from aleph.protocol.errors import NotFound, QueueFull, RateLimited, ResumeGap, ShuttingDown
from aleph.security.tokens import OWNER, Principal
from aleph.sessions import GUEST_TTL, Session
from tests.sessions.fakes import SlowEngine, connect, running_hub

GUEST = Principal("guest:alice", "guest")


async def test_cancel_mid_stream(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # A guest session: no disk I/O, so the mock clock moves only with the engine.
    async with running_hub(tmp_path / "a.db", SlowEngine(delay=1.0, words=10)) as (hub, _):
        conn = await connect(nursery)
        session = await hub.create(GUEST)
        await hub.subscribe(GUEST, conn.client, session.id)
        start = trio.current_time()
        sent = await hub.send(GUEST, session.id, "talk to me")
        await trio.sleep(3.5)
        assert await hub.cancel(GUEST, session.id) is True
        await session.idle.wait()
        await trio.testing.wait_all_tasks_blocked()
        types = [e["type"] for e in conn.events()]
        assert types == [
            "message.user",
            "run.started",
            "run.delta",
            "run.delta",
            "run.delta",
            "run.cancelled",
        ]
        assert conn.events()[-1]["run_id"] == sent["run_id"]
        assert trio.current_time() - start == pytest.approx(3.5)
        page, _ = await session.history.page(50, None)
        assert [(m.role, m.text) for m in page] == [("user", "talk to me")]
        assert await hub.cancel(GUEST, session.id) is False
        # The session goes on after a cancel.
        await hub.send(GUEST, session.id, "again")
        await session.idle.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert conn.events()[-1]["type"] == "run.finished"


async def test_queue_bound_and_cancel_queued(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    engine = SlowEngine(delay=1.0, words=2)
    async with running_hub(tmp_path / "a.db", engine, max_queued_runs=2) as (hub, _):
        conn = await connect(nursery)
        session = await hub.create(GUEST)
        await hub.subscribe(GUEST, conn.client, session.id)
        first = await hub.send(GUEST, session.id, "1")
        second = await hub.send(GUEST, session.id, "2")
        third = await hub.send(GUEST, session.id, "3")
        assert (first["queued"], second["queued"], third["queued"]) == (0, 1, 2)
        with pytest.raises(QueueFull):
            await hub.send(GUEST, session.id, "4")
        assert await hub.cancel(GUEST, session.id, second["run_id"]) is True
        await session.idle.wait()
        await trio.testing.wait_all_tasks_blocked()
        finished = [e["run_id"] for e in conn.events() if e["type"] == "run.finished"]
        assert finished == [first["run_id"], third["run_id"]]
        cancelled = [e["run_id"] for e in conn.events() if e["type"] == "run.cancelled"]
        assert cancelled == [second["run_id"]]


async def test_engine_failures_become_run_failed(
    tmp_path: Path, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_hub(tmp_path / "a.db", SlowEngine(delay=0)) as (hub, _):
        conn = await connect(nursery)
        session = await hub.create(OWNER)
        await hub.subscribe(OWNER, conn.client, session.id)
        await hub.send(OWNER, session.id, "fail")
        await hub.send(OWNER, session.id, "crash")
        await hub.send(OWNER, session.id, "fine")
        await session.idle.wait()
        await trio.testing.wait_all_tasks_blocked()
        outcomes = [e for e in conn.events() if e["type"] in ("run.failed", "run.finished")]
        assert outcomes[0]["data"]["error"]["message"] == "the model is down"
        assert outcomes[0]["data"]["error"]["code"] == -32007
        assert outcomes[1]["data"]["error"] == {
            "code": -32603,
            "message": "internal error",
            "data": {},
        }
        assert "secret" not in str(conn.frames)
        assert outcomes[2]["type"] == "run.finished"


async def test_rate_limits_under_mock_clock(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running_hub(
        tmp_path / "a.db", session_rate=20, user_rate=60, max_queued_runs=100
    ) as (hub, _):
        session = await hub.create(GUEST)
        for index in range(20):
            await hub.send(GUEST, session.id, f"m{index}")
        with pytest.raises(RateLimited) as limited:
            await hub.send(GUEST, session.id, "one too many")
        assert limited.value.retry_after == pytest.approx(3.0)
        assert limited.value.to_json()["data"] == {"retry_after_ms": 3000}
        start = trio.current_time()
        await trio.sleep(limited.value.retry_after)
        await hub.send(GUEST, session.id, "after the wait")
        assert trio.current_time() - start == pytest.approx(3.0)


async def test_per_user_limit_spans_sessions(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running_hub(
        tmp_path / "a.db", session_rate=100, user_rate=4, max_queued_runs=100
    ) as (hub, _):
        one, two = await hub.create(GUEST), await hub.create(GUEST)
        for session in (one, two, one, two):
            await hub.send(GUEST, session.id, "x")
        with pytest.raises(RateLimited) as limited:
            await hub.send(GUEST, two.id, "x")
        assert limited.value.retry_after == pytest.approx(15.0)


async def test_idempotent_retry_is_not_rate_limited(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running_hub(tmp_path / "a.db", session_rate=1) as (hub, _):
        session = await hub.create(OWNER)
        first = await hub.send(OWNER, session.id, "x", idempotency_key="k")
        again = await hub.send(OWNER, session.id, "x", idempotency_key="k")
        assert again["run_id"] == first["run_id"]
        await trio.sleep(601)  # the key is forgotten after 10 minutes
        third = await hub.send(OWNER, session.id, "x", idempotency_key="k")
        assert third["run_id"] != first["run_id"]


async def test_guest_session_expires_when_idle(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running_hub(tmp_path / "a.db") as (hub, _):
        session = await hub.create(GUEST)
        await hub.send(GUEST, session.id, "hello")
        await trio.sleep(GUEST_TTL / 2)
        await hub.history(GUEST, session.id, 10, None)  # activity keeps it alive
        await trio.sleep(GUEST_TTL * 0.75)
        assert hub.visible(GUEST) == [session]
        await trio.sleep(GUEST_TTL)
        assert hub.visible(GUEST) == []
        with pytest.raises(NotFound):
            await hub.get(GUEST, session.id)


async def test_restart_keeps_owner_sessions_and_epoch(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    db = tmp_path / "a.db"
    async with running_hub(db) as (hub, _):
        owned = await hub.create(OWNER, title="keep")
        guest = await hub.create(GUEST)
        await hub.send(OWNER, owned.id, "one two three")
        await hub.send(GUEST, guest.id, "forget me")
        await owned.idle.wait()
        epoch, last_seq = owned.events.epoch, owned.events.last_seq
        frames = [owned.events.frame(seq) for seq in range(1, last_seq + 1)]
    async with running_hub(db) as (hub, _):
        assert hub.visible(GUEST) == []
        (again,) = hub.visible(OWNER)
        assert again.record.title == "keep"
        conn = await connect(nursery)
        result = await hub.subscribe(OWNER, conn.client, owned.id, after_seq=0, epoch=epoch)
        assert result == {
            "session_id": owned.id,
            "epoch": epoch,
            "last_seq": last_seq,
            "replayed": last_seq,
        }
        await trio.testing.wait_all_tasks_blocked()
        assert conn.frames == [orjson.loads(f) for f in frames]
        await hub.send(OWNER, owned.id, "four")
        await again.idle.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert conn.seqs() == list(range(1, conn.seqs()[-1] + 1))
        page, _ = await again.history.page(50, None)
        assert [m.text for m in page][-1] == "[echo] four"
        # The run's context was the stored history.
        assert [m.text for m in page][:2] == ["one two three", "[echo] one two three"]


async def test_unclean_stop_changes_epoch(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with trio.CancelScope() as scope:
        async with running_hub(db) as (hub, _):
            owned = await hub.create(OWNER)
            await hub.send(OWNER, owned.id, "one")
            await owned.idle.wait()
            epoch = owned.events.epoch
            scope.cancel()  # no graceful stop: the store is not marked clean
    async with running_hub(db) as (hub, _):
        (again,) = hub.visible(OWNER)
        assert again.events.epoch != epoch
        with pytest.raises(ResumeGap):
            await hub.subscribe(OWNER, object(), owned.id, after_seq=1, epoch=epoch)  # type: ignore[arg-type]


async def test_graceful_stop_lets_the_run_finish(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    engine = SlowEngine(delay=1.0, words=3)
    conn = await connect(nursery)
    async with running_hub(tmp_path / "a.db", engine, grace=10) as (hub, _):
        session = await hub.create(GUEST)
        await hub.subscribe(GUEST, conn.client, session.id)
        await hub.send(GUEST, session.id, "1")
        await hub.send(GUEST, session.id, "2")
    await trio.testing.wait_all_tasks_blocked()
    types = [e["type"] for e in conn.events()]
    assert types.count("run.finished") == 1
    assert types[-1] == "run.finished"
    assert "run.cancelled" in types  # the queued one was dropped


async def test_paired_sessions_by_channel_key(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    async with running_hub(db) as (hub, _):
        found: list[Session] = []

        async def first_message() -> None:
            found.append(await hub.paired_session("telegram:123"))

        async with trio.open_nursery() as both:  # two first messages at once
            both.start_soon(first_message)
            both.start_soon(first_message)
        session = found[0]
        assert found[1] is session
        assert hub.find_paired("telegram:123") is session
        assert session.record.type == "paired"
        assert hub.find_paired("telegram:999") is None
        assert hub.visible(OWNER) == [session]
        with pytest.raises(NotFound):
            await hub.get(GUEST, session.id)
        await hub.send(OWNER, session.id, "from telegram")
        await session.idle.wait()
    async with running_hub(db) as (hub, _):
        again = hub.find_paired("telegram:123")
        assert again is not None
        assert again.id == session.id
        assert again.record.channel_key == "telegram:123"
        assert again.history.count == 2


async def test_sends_refused_once_stopping(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "a.db") as (hub, stopping):
        session = await hub.create(OWNER)
        stopping.set()
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ShuttingDown):
            await hub.send(OWNER, session.id, "too late")
        with pytest.raises(ShuttingDown):
            await hub.create(OWNER)


async def test_a_send_committed_while_the_hub_stops_is_kept_and_its_run_dropped(
    tmp_path: Path, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit of a send can straddle the stop: the message is acknowledged and
    kept, and its run ends like every queued run at shutdown."""
    async with running_hub(tmp_path / "a.db", SlowEngine(delay=1.0, words=2)) as (hub, stopping):
        conn = await connect(nursery)
        session = await hub.create(OWNER)
        await hub.subscribe(OWNER, conn.client, session.id)
        committing, release = trio.Event(), trio.Event()
        history = session.history

        def slow(real: Any) -> Any:
            async def slow_add(self: object, *args: object, **kwargs: object) -> object:
                committing.set()
                await release.wait()
                return await real(self, *args, **kwargs)

            return slow_add

        # A send to an idle session stores with add_with_context, others with add.
        for name in ("add", "add_with_context"):
            monkeypatch.setattr(type(history), name, slow(getattr(type(history), name)))
        result: dict[str, object] = {}

        async def send() -> None:
            result.update(await hub.send(OWNER, session.id, "just in time"))

        async with trio.open_nursery() as senders:
            senders.start_soon(send)
            await committing.wait()
            stopping.set()  # the hub stops while the message is being committed
            await trio.testing.wait_all_tasks_blocked()
            release.set()
        assert str(result["run_id"]).startswith("r_")
        await trio.testing.wait_all_tasks_blocked()
        types = [(e["type"], e["data"]) for e in conn.events()]
        assert types[-1] == ("run.cancelled", {"reason": "shutdown"})
        page, _ = await history.page(50, None)
        assert [m.text for m in page] == ["just in time"]
