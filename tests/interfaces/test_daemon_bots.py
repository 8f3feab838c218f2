"""The bots inside the daemon: wiring, health, and the same events for every subscriber."""

from __future__ import annotations

from typing import Any

import trio

from aleph.control import render
from aleph.control.client import open_control
from tests.peers.discord_peer import DiscordPeer
from tests.peers.telegram_peer import TOKEN, TelegramPeer
from tests.sessions.helpers import events_until, text_of


async def _health_until(client: Any, predicate: Any) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            health: dict[str, Any] = await client.call("system.health")
            if predicate(health["interfaces"]):
                return health
            await trio.sleep(0.05)  # polling the daemon's own report, bounded above


async def test_rejected_tokens_are_reported_and_the_daemon_keeps_serving(
    start_daemon: Any, telegram_peer: TelegramPeer, discord_peer: DiscordPeer
) -> None:
    live = await start_daemon(
        telegram={"enabled": True, "token": "1:wrong", "base_url": telegram_peer.base_url},
        discord={"enabled": True, "token": "wrong"},
    )
    async with live.connect() as client:
        health = await _health_until(
            client,
            lambda i: i["telegram"]["state"] == "backoff" and i["discord"]["state"] == "backoff",
        )
        for name in ("telegram", "discord"):
            assert health["interfaces"][name]["last_error"].startswith("the bot token was rejected")
            assert health["interfaces"][name]["restarts"] >= 1
        assert health["status"] == "ready"
        created = await client.call("session.create", {})
        assert created["type"] == "owner"
    async with open_control(live.daemon.config.control_socket()) as ctl:
        status = await ctl.call("status")
    assert status["interfaces"]["telegram"]["state"] == "backoff"
    assert "interfaces:  telegram backoff, discord backoff" in render.status(status)


async def test_pairing_approved_with_ctl_then_answered(
    start_daemon: Any, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    live = await start_daemon(telegram={"enabled": True, "token": TOKEN, "base_url": peer.base_url})
    async with live.connect() as client:
        await _health_until(client, lambda i: i["telegram"]["state"] == "running")
    peer.message("hello")
    (offer,) = await peer.wait_for(lambda: peer.chat_messages(42))
    code = offer.text.split("pairing approve ")[1].split()[0]
    async with open_control(live.daemon.config.control_socket()) as ctl:
        pending = await ctl.call("pairing.list")
        assert [p["code"] for p in pending["pending"]] == [code]
        await ctl.call("pairing.approve", {"code": code})
    await peer.wait_for(lambda: len(peer.chat_messages(42)) == 2)
    peer.message("and now?")
    await peer.wait_for(
        lambda: len(peer.chat_messages(42)) == 3 and "and now?" in peer.chat_messages(42)[2].text
    )


async def test_websocket_subscribers_see_the_bots_session_events(
    start_daemon: Any, telegram_peer: TelegramPeer
) -> None:
    peer = telegram_peer
    live = await start_daemon(
        telegram={
            "enabled": True,
            "token": TOKEN,
            "base_url": peer.base_url,
            "dm_policy": "allowlist",
            "allow_users": ["42"],
        }
    )
    async with live.connect() as client:
        await _health_until(client, lambda i: i["telegram"]["state"] == "running")
        assert (await _health_until(client, lambda i: True))["interfaces"]["discord"] == {
            "state": "disabled"
        }
        peer.message("first")
        await peer.wait_for(lambda: peer.chat_messages(42))
        assert live.daemon.sessions is not None
        session = live.daemon.sessions.find_paired("telegram:42")
        assert session is not None
        with trio.fail_after(10):  # that run's events are all out before we subscribe
            await session.idle.wait()
        (paired,) = [
            s for s in (await client.call("session.list"))["sessions"] if s["type"] == "paired"
        ]
        await client.call("session.subscribe", {"session_id": paired["session_id"]})
        peer.message("second")
        events = await events_until(client)
        kinds = [e["type"] for e in events]
        assert kinds[0] == "message.user"
        assert events[0]["data"]["text"] == "second"
        assert "run.started" in kinds
        assert kinds[-1] == "run.finished"
        answer = text_of(events)
        await peer.wait_for(lambda: any(m.text == answer for m in peer.chat_messages(42)))
