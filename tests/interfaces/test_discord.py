"""The Discord bot, end to end: real discord.py against the fake REST API and gateway."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from tests.interfaces.conftest import add_discord, discord_settings, started
from tests.peers.discord_peer import BOT_ID, CHANNEL_ID, DM_CHANNEL_ID, DiscordPeer


async def test_dm_answer_after_pairing(
    jumping_clock: trio.testing.MockClock, harness: Any, discord_peer: DiscordPeer
) -> None:
    h = await harness({"discord": discord_settings()})
    supervisor = add_discord(h, discord_peer)
    await started(h, supervisor)
    peer = discord_peer
    assert peer.rest_calls("PUT", "/commands")

    await peer.dispatch("MESSAGE_CREATE", peer.message_payload("hello"))
    sent = await peer.wait_for(lambda: peer.channel_messages(DM_CHANNEL_ID))
    assert "aleph ctl pairing approve" in sent[0]["content"]
    (request,) = await h.pairing.pending()
    assert request.channel_key == f"discord:{DM_CHANNEL_ID}"
    await h.pairing.approve(request.code)
    await peer.wait_for(lambda: len(peer.channel_messages(DM_CHANNEL_ID)) == 2)

    await peer.dispatch("MESSAGE_CREATE", peer.message_payload("what is 2+2?"))
    await peer.wait_for(
        lambda: any(
            m["content"] == "echo: what is 2+2?" for m in peer.channel_messages(DM_CHANNEL_ID)
        )
    )


async def test_guild_message_needs_a_mention(
    jumping_clock: trio.testing.MockClock, harness: Any, discord_peer: DiscordPeer
) -> None:
    h = await harness({"discord": discord_settings(group_policy="open")})
    await started(h, add_discord(h, discord_peer))
    peer = discord_peer
    await peer.dispatch("MESSAGE_CREATE", peer.message_payload("just chatting", guild=True))
    await peer.dispatch(
        "MESSAGE_CREATE", peer.message_payload(f"<@{BOT_ID}> hello bot", guild=True, mention=True)
    )
    (answer,) = await peer.wait_for(lambda: peer.channel_messages(CHANNEL_ID))
    assert answer["content"] == "echo: hello bot"
    assert [r.text for r in h.engine.requests] == ["hello bot"]
    assert h.engine.requests[0].channel == f"discord:{CHANNEL_ID}"
    (post,) = peer.rest_calls("POST", f"/channels/{CHANNEL_ID}/messages")
    assert post.body["message_reference"]["fail_if_not_exists"] is False
    assert post.body["allowed_mentions"]["parse"] == []
    assert peer.rest_calls("POST", f"/channels/{CHANNEL_ID}/typing")


async def test_attachment_reaches_the_model(
    jumping_clock: trio.testing.MockClock, harness: Any, discord_peer: DiscordPeer
) -> None:
    h = await harness({"discord": discord_settings(dm_policy="open")})
    await started(h, add_discord(h, discord_peer))
    peer = discord_peer
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    payload = peer.message_payload("what is in it?", attachments=[("chart.png", "image/png", png)])
    await peer.dispatch("MESSAGE_CREATE", payload)
    await peer.wait_for(lambda: h.engine.requests)
    (attachment,) = h.engine.requests[0].attachments
    assert (attachment.name, attachment.mime_type, attachment.data) == (
        "chart.png",
        "image/png",
        png,
    )


async def test_slash_ask_streams_into_the_deferred_response(
    jumping_clock: trio.testing.MockClock, harness: Any, discord_peer: DiscordPeer
) -> None:
    h = await harness({"discord": discord_settings(dm_policy="open")})
    await started(h, add_discord(h, discord_peer))
    peer = discord_peer
    commands = peer.rest_calls("PUT", "/commands")[0].body
    assert sorted(c["name"] for c in commands) == ["ask", "cancel", "clear", "new"]

    interaction = peer.interaction_payload("ask", {"prompt": "how far is the moon?"})
    await peer.dispatch("INTERACTION_CREATE", interaction)
    await peer.wait_for(lambda: peer.originals.get(interaction["token"], {}).get("content"))
    (callback,) = peer.rest_calls("POST", "/callback")
    assert callback.body["type"] == 5  # deferred: "Aleph is thinking..."
    await peer.wait_for(
        lambda: peer.originals[interaction["token"]]["content"] == "echo: how far is the moon?"
    )
    clear = peer.interaction_payload("clear")
    await peer.dispatch("INTERACTION_CREATE", clear)
    await peer.wait_for(lambda: peer.originals.get(clear["token"], {}).get("content"))
    assert peer.originals[clear["token"]]["content"] == "Cleared 2 messages."


async def test_gateway_reconnect_resumes_and_keeps_answering(
    jumping_clock: trio.testing.MockClock, harness: Any, discord_peer: DiscordPeer
) -> None:
    h = await harness({"discord": discord_settings(dm_policy="open")})
    supervisor = add_discord(h, discord_peer)
    await started(h, supervisor)
    peer = discord_peer
    await peer.reconnect()
    await peer.wait_for(lambda: peer.resumes == 1)
    await peer.dispatch("MESSAGE_CREATE", peer.message_payload("still there?"))
    await peer.wait_for(lambda: peer.channel_messages(DM_CHANNEL_ID))
    assert peer.channel_messages(DM_CHANNEL_ID)[0]["content"] == "echo: still there?"
    assert peer.identifies == 1  # resumed, not a new session
    assert supervisor.state.state == "running"
    assert supervisor.state.restarts == 0


async def test_rate_limit_is_honoured_by_the_library(
    jumping_clock: trio.testing.MockClock, harness: Any, discord_peer: DiscordPeer
) -> None:
    h = await harness({"discord": discord_settings(dm_policy="open")})
    await started(h, add_discord(h, discord_peer))
    peer = discord_peer
    peer.limit_next("POST", f"/channels/{DM_CHANNEL_ID}/messages", 3.0)
    await peer.dispatch("MESSAGE_CREATE", peer.message_payload("hi"))
    await peer.wait_for(lambda: peer.channel_messages(DM_CHANNEL_ID), 60)
    first, second = peer.rest_calls("POST", f"/channels/{DM_CHANNEL_ID}/messages")[:2]
    assert second.at - first.at >= 3.0
