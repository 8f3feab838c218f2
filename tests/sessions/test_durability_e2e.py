"""`aleph serve` killed with SIGKILL right after acknowledged sends, then restarted."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio

from aleph.client import CallFailed, GatewayClient, connect
from tests.e2e.daemon_process import DaemonProcess, start_daemon_process
from tests.sessions.helpers import events_until

pytestmark = pytest.mark.e2e

ENV = {
    "ALEPH_GATEWAY__ALLOW_GUESTS": "true",
    "ALEPH_LIMITS__SESSION_MESSAGES_PER_MINUTE": "100000",
    "ALEPH_LIMITS__USER_MESSAGES_PER_MINUTE": "100000",
    "ALEPH_LIMITS__MAX_QUEUED_RUNS": "10000",
    "ALEPH_DAEMON__SHUTDOWN_GRACE": "1",
}


async def _all_history(client: GatewayClient, session_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    before = None
    while True:
        params: dict[str, Any] = {"session_id": session_id, "limit": 500}
        if before is not None:
            params["before"] = before
        page = await client.call("session.history", params)
        messages = page["messages"] + messages
        if not page["has_more"]:
            return messages
        before = page["messages"][0]["id"]


async def _start(nursery: trio.Nursery, state: Path) -> DaemonProcess:
    return await start_daemon_process(nursery, state, **ENV)


async def test_sigkill_loses_nothing_acknowledged(tmp_path: Path, nursery: trio.Nursery) -> None:
    state = tmp_path / "state"
    daemon = await _start(nursery, state)
    acked: list[str] = []
    async with connect(daemon.url, daemon.token) as owner, connect(daemon.url) as guest:
        await guest.call("auth.login", {"guest": True})
        gsid = (await guest.call("session.create", {}))["session_id"]
        await guest.call("session.send", {"session_id": gsid, "text": "guest words"})
        sid = (await owner.call("session.create", {"title": "durable"}))["session_id"]
        epoch = (await owner.call("session.subscribe", {"session_id": sid}))["epoch"]
        enough = trio.Event()

        async def sender(worker: int) -> None:
            for index in range(1000):
                text = f"w{worker} m{index}"
                try:
                    await owner.call("session.send", {"session_id": sid, "text": text})
                except Exception:
                    return  # the daemon is gone: this one was never acknowledged
                acked.append(text)
                if len(acked) >= 150:
                    enough.set()

        async with trio.open_nursery() as senders:
            for worker in range(4):
                senders.start_soon(sender, worker)
            with trio.fail_after(60):
                await enough.wait()
            daemon.process.send_signal(signal.SIGKILL)  # with sends still in flight
            with trio.fail_after(20):
                await daemon.process.wait()
    assert daemon.process.returncode == -signal.SIGKILL

    integrity = sqlite3.connect(state / "aleph.db")
    try:
        assert integrity.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        integrity.close()

    restarted = await _start(nursery, state)
    async with connect(restarted.url, restarted.token) as owner:
        history = await _all_history(owner, sid)
        users = [m["text"] for m in history if m["role"] == "user"]
        assert set(acked) <= set(users)
        assert len(users) == len(set(users))  # nothing stored twice
        listed = (await owner.call("session.list", {}))["sessions"]
        assert [s["session_id"] for s in listed] == [sid]
        # The events held in memory at the kill may be lost: the epoch changed.
        with pytest.raises(CallFailed) as gap:
            await owner.call(
                "session.subscribe", {"session_id": sid, "after_seq": 1, "epoch": epoch}
            )
        assert gap.value.code == -32010
        # The session works after the crash.
        await owner.call("session.subscribe", {"session_id": sid})
        await owner.call("session.send", {"session_id": sid, "text": "after the crash"})
        events = await events_until(owner, "message.assistant", within=60)
        assert events[-1]["data"]["text"] == "[echo] after the crash"
    async with connect(restarted.url) as guest:
        await guest.call("auth.login", {"guest": True})
        assert (await guest.call("session.list", {}))["sessions"] == []
    assert await restarted.stop() == 0


async def test_graceful_restart_keeps_epoch_and_resumes(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    state = tmp_path / "state"
    daemon = await _start(nursery, state)
    async with connect(daemon.url, daemon.token) as owner:
        sid = (await owner.call("session.create", {}))["session_id"]
        await owner.call("session.send", {"session_id": sid, "text": "one two three"})
        before = await events_until(owner)
        epoch = (await owner.call("session.subscribe", {"session_id": sid}))["epoch"]
    assert await daemon.stop() == 0
    restarted = await _start(nursery, state)
    async with connect(restarted.url, restarted.token) as owner:
        result = await owner.call(
            "session.subscribe", {"session_id": sid, "after_seq": 2, "epoch": epoch}
        )
        assert result["epoch"] == epoch
        assert result["last_seq"] == len(before)
        replayed = await events_until(owner)
        assert replayed == before[2:]
    assert await restarted.stop() == 0
