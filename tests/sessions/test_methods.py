"""session.* over a real socket against a live daemon (echo engine)."""

from __future__ import annotations

from typing import Any

import pytest

from aleph.client import CallFailed, GatewayClient
from aleph.engine.echo import EchoEngine
from tests.conftest import LiveDaemon
from tests.sessions.helpers import events_until, text_of


async def test_send_streams_echo_answer(owner: GatewayClient) -> None:
    created = await owner.call("session.create", {"title": "first"})
    assert created["type"] == "owner"
    assert created["session_id"].startswith("s_")
    assert created["created_at"].endswith("Z")
    sid = created["session_id"]
    sent = await owner.call("session.send", {"session_id": sid, "text": "hello big world"})
    assert sent["run_id"].startswith("r_")
    assert sent["queued"] == 0
    events = await events_until(owner)
    types = [e["type"] for e in events]
    assert types[:2] == ["message.user", "run.started"]
    assert types[-2:] == ["message.assistant", "run.finished"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["session_id"] == sid and e["ts"].endswith("Z") for e in events)
    assert all(e["run_id"] == sent["run_id"] for e in events)
    assert text_of(events) == "[echo] hello big world"
    assert events[-1]["data"]["usage"]["provider"] == "echo"
    history = await owner.call("session.history", {"session_id": sid})
    assert [(m["role"], m["text"]) for m in history["messages"]] == [
        ("user", "hello big world"),
        ("assistant", "[echo] hello big world"),
    ]
    assert history["has_more"] is False
    assert events[-2]["data"]["message_id"] == history["messages"][1]["id"]
    listed = await owner.call("session.list", {})
    (entry,) = listed["sessions"]
    assert entry["session_id"] == sid
    assert entry["title"] == "first"
    assert entry["message_count"] == 2
    health = (await owner.call("system.health"))["sessions"]
    assert health["sessions"] == 1
    assert health["subscriptions"] == 1


async def test_several_subscribers_see_identical_sequences(live: LiveDaemon) -> None:
    async with live.connect() as a, live.connect() as b, live.connect() as c:
        sid = (await a.call("session.create", {}))["session_id"]
        for client in (b, c):
            result = await client.call("session.subscribe", {"session_id": sid})
            assert result["last_seq"] == 0
            assert result["replayed"] == 0
        for index in range(3):
            await b.call("session.send", {"session_id": sid, "text": f"message {index} a b c"})
        seen = [await events_until(client, count=3) for client in (a, b, c)]
        assert seen[0] == seen[1] == seen[2]
        assert [e["seq"] for e in seen[0]] == list(range(1, len(seen[0]) + 1))


async def test_history_pages(owner: GatewayClient) -> None:
    sid = (await owner.call("session.create", {}))["session_id"]
    for index in range(3):
        await owner.call("session.send", {"session_id": sid, "text": f"m{index}"})
    await events_until(owner, count=3)
    everything = await owner.call("session.history", {"session_id": sid, "limit": 500})
    assert len(everything["messages"]) == 6
    ids = [int(m["id"].removeprefix("m_")) for m in everything["messages"]]
    assert ids == sorted(ids)
    page = await owner.call("session.history", {"session_id": sid, "limit": 4})
    assert page["messages"] == everything["messages"][2:]
    assert page["has_more"] is True
    older = await owner.call(
        "session.history", {"session_id": sid, "limit": 4, "before": page["messages"][0]["id"]}
    )
    assert older["messages"] == everything["messages"][:2]
    assert older["has_more"] is False


async def test_idempotent_send_returns_first_run(owner: GatewayClient) -> None:
    sid = (await owner.call("session.create", {}))["session_id"]
    params = {"session_id": sid, "text": "once", "idempotency_key": "k1"}
    first = await owner.call("session.send", params)
    second = await owner.call("session.send", params)
    assert second["run_id"] == first["run_id"]
    await events_until(owner)
    history = await owner.call("session.history", {"session_id": sid})
    assert [m["text"] for m in history["messages"]] == ["once", "[echo] once"]


async def test_resume_replays_then_continues(live: LiveDaemon) -> None:
    async with live.connect() as a:
        sid = (await a.call("session.create", {}))["session_id"]
        await a.call("session.send", {"session_id": sid, "text": "one two"})
        first = await events_until(a)
    async with live.connect() as b:
        cut = 3
        result = await b.call("session.subscribe", {"session_id": sid, "after_seq": cut})
        assert result["replayed"] == len(first) - cut
        assert result["last_seq"] == len(first)
        await b.call("session.send", {"session_id": sid, "text": "three"})
        resumed = await events_until(b, count=2)
        assert resumed[: len(first) - cut] == first[cut:]
        assert [e["seq"] for e in resumed] == list(range(cut + 1, len(resumed) + cut + 1))


async def test_resume_gap_and_epoch(start_daemon: Any) -> None:
    # One event per word: no merging of fast deltas (limits.delta_interval = 0).
    live = await start_daemon(limits={"event_retention": 10, "delta_interval": 0})
    live.daemon.sessions.engine = EchoEngine()
    async with live.connect() as a:
        sid = (await a.call("session.create", {}))["session_id"]
        sub = await a.call("session.subscribe", {"session_id": sid})
        epoch = sub["epoch"]
        await a.call("session.send", {"session_id": sid, "text": " ".join(["w"] * 20)})
        events = await events_until(a)
        assert len(events) > 10
        with pytest.raises(CallFailed) as gap:
            await a.call("session.subscribe", {"session_id": sid, "after_seq": 1, "epoch": epoch})
        assert gap.value.code == -32010
        assert gap.value.data == {"oldest_seq": len(events) - 9}
        with pytest.raises(CallFailed) as other:
            await a.call(
                "session.subscribe", {"session_id": sid, "after_seq": len(events), "epoch": "e_x"}
            )
        assert other.value.code == -32010
        ok = await a.call(
            "session.subscribe", {"session_id": sid, "after_seq": len(events) - 9, "epoch": epoch}
        )
        assert ok["replayed"] == 9


async def test_clear_and_delete(owner: GatewayClient) -> None:
    sid = (await owner.call("session.create", {}))["session_id"]
    await owner.call("session.send", {"session_id": sid, "text": "x"})
    await events_until(owner)
    assert await owner.call("session.clear", {"session_id": sid}) == {"cleared": 2}
    cleared = await events_until(owner, "session.cleared")
    assert cleared[-1]["data"] == {"cleared": 2}
    history = await owner.call("session.history", {"session_id": sid})
    assert history == {"messages": [], "has_more": False}
    assert await owner.call("session.delete", {"session_id": sid}) == {}
    for method in ("session.history", "session.send", "session.delete"):
        with pytest.raises(CallFailed) as missing:
            await owner.call(
                method,
                {"session_id": sid, "text": "x"} if "send" in method else {"session_id": sid},
            )
        assert missing.value.code == -32003
    assert (await owner.call("session.list", {}))["sessions"] == []


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("session.send", {"session_id": 5, "text": "x"}),
        ("session.send", {"session_id": "s_1"}),
        ("session.send", {"session_id": "s_1", "text": "x", "extra": 1}),
        ("session.history", {"session_id": "s_1", "limit": 0}),
        ("session.history", {"session_id": "s_1", "before": "nope"}),
        ("session.subscribe", {"session_id": "s_1", "after_seq": "3"}),
        ("session.create", {"type": "paired"}),
        (
            "session.send",
            {
                "session_id": "s_1",
                "text": "x",
                "attachments": [{"name": "a", "mime_type": "t", "data": "!!"}],
            },
        ),
    ],
)
async def test_bad_params(owner: GatewayClient, method: str, params: dict[str, Any]) -> None:
    sid = (await owner.call("session.create", {}))["session_id"]
    params = {**params, "session_id": sid} if params.get("session_id") == "s_1" else params
    with pytest.raises(CallFailed) as bad:
        await owner.call(method, params)
    assert bad.value.code == -32602
    assert await owner.call("system.ping") is not None


@pytest.mark.parametrize(
    ("attachment", "reason"),
    [
        ({"name": "a.png", "mime_type": "image/png", "data": "aGVsbG8="}, "not an image"),
        ({"name": "a.bin", "mime_type": "application/x-foo", "data": "aGVsbG8="}, "not supported"),
        ({"name": "big.txt", "mime_type": "text/plain", "data": "QUFB" * 1000}, "larger than"),
    ],
)
async def test_attachments_are_checked_at_send_with_the_media_limits(
    start_daemon: Any, attachment: dict[str, str], reason: str
) -> None:
    live = await start_daemon(media={"max_attachment_bytes": 2000})
    async with live.connect() as owner:
        sid = (await owner.call("session.create", {}))["session_id"]
        with pytest.raises(CallFailed) as refused:
            await owner.call(
                "session.send", {"session_id": sid, "text": "see", "attachments": [attachment]}
            )
        assert refused.value.code == -32602
        assert reason in refused.value.message
        assert (await owner.call("session.history", {"session_id": sid}))["messages"] == []


async def test_attachments_reach_history_as_metadata(owner: GatewayClient) -> None:
    sid = (await owner.call("session.create", {}))["session_id"]
    attachment = {"name": "note.txt", "mime_type": "text/plain", "data": "aGVsbG8="}
    await owner.call(
        "session.send", {"session_id": sid, "text": "see", "attachments": [attachment]}
    )
    events = await events_until(owner)
    expected = [{"name": "note.txt", "mime_type": "text/plain", "size": 5}]
    assert events[0]["data"]["attachments"] == expected
    history = await owner.call("session.history", {"session_id": sid})
    assert history["messages"][0]["meta"] == {"attachments": expected}
