"""The Telegram bot, end to end: real python-telegram-bot against the fake Bot API."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from tests.interfaces.conftest import add_telegram, started, telegram_settings
from tests.peers.telegram_peer import TelegramPeer


async def test_dm_pairing_from_request_to_first_answer(
    jumping_clock: trio.testing.MockClock, harness: Any, telegram_peer: TelegramPeer
) -> None:
    h = await harness({"telegram": telegram_settings()})
    supervisor = add_telegram(h, telegram_peer)
    await started(h, supervisor)
    peer = telegram_peer

    peer.message("hello there")
    sent = await peer.wait_for(lambda: peer.chat_messages(42))
    assert "aleph ctl pairing approve" in sent[0].text
    (request,) = await h.pairing.pending()
    assert request.channel_key == "telegram:42"
    assert request.code in sent[0].text
    assert h.engine.requests == []

    await h.pairing.approve(request.code)
    await peer.wait_for(lambda: len(peer.chat_messages(42)) == 2)
    assert "paired" in peer.chat_messages(42)[1].text

    peer.message("what is 2+2?")
    await peer.wait_for(lambda: any(m.text == "echo: what is 2+2?" for m in peer.chat_messages(42)))
    (request_,) = h.engine.requests
    assert request_.channel == "telegram:42"
    assert request_.session_type == "paired"


async def test_group_message_needs_a_mention_or_a_reply(
    jumping_clock: trio.testing.MockClock, harness: Any, telegram_peer: TelegramPeer
) -> None:
    h = await harness({"telegram": telegram_settings(group_policy="open")})
    await started(h, add_telegram(h, telegram_peer))
    peer, group = telegram_peer, -100123

    peer.message("just chatting", chat_id=group, group=True)
    peer.message("@aleph_test_bot what time is it?", chat_id=group, group=True)
    answer = await peer.wait_for(lambda: peer.chat_messages(group))
    assert answer[0].text == "echo: what time is it?"
    assert [r.text for r in h.engine.requests] == ["what time is it?"]
    reply = peer.calls_of("sendMessage")[-1].params
    assert "reply_parameters" in reply  # answers in groups quote the question

    peer.message("and tomorrow?", chat_id=group, group=True, reply_to_bot=True)
    await peer.wait_for(lambda: len(peer.chat_messages(group)) == 2)
    assert peer.chat_messages(group)[1].text == "echo: and tomorrow?"
    assert h.engine.requests[0].channel == f"telegram:{group}"


async def test_photo_and_document_reach_the_model(
    jumping_clock: trio.testing.MockClock, harness: Any, telegram_peer: TelegramPeer
) -> None:
    h = await harness({"telegram": telegram_settings(dm_policy="open")})
    await started(h, add_telegram(h, telegram_peer))
    peer = telegram_peer
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 500
    peer.message("what is this?", photo=jpeg)
    await peer.wait_for(lambda: h.engine.requests)
    (photo,) = h.engine.requests[0].attachments
    assert (photo.name, photo.mime_type, photo.data) == ("photo.jpg", "image/jpeg", jpeg)
    assert h.engine.requests[0].text == "what is this?"
    assert [c.params["file_id"] for c in peer.calls_of("getFile")] == ["photo-big"]

    peer.message("summarise", document=("notes.txt", "text/plain", b"line one\nline two\n"))
    await peer.wait_for(lambda: len(h.engine.requests) == 2)
    (doc,) = h.engine.requests[1].attachments
    assert (doc.name, doc.mime_type, doc.data) == (
        "notes.txt",
        "text/plain",
        b"line one\nline two\n",
    )


async def test_flood_control_retry_after_is_honoured(
    jumping_clock: trio.testing.MockClock, harness: Any, telegram_peer: TelegramPeer
) -> None:
    h = await harness({"telegram": telegram_settings(dm_policy="open")})
    await started(h, add_telegram(h, telegram_peer))
    peer = telegram_peer
    peer.flood("sendMessage", 7)
    peer.message("hello")
    await peer.wait_for(lambda: peer.chat_messages(42), 60)
    first, second = peer.calls_of("sendMessage")[:2]
    assert second.at - first.at >= 7.0
    assert peer.chat_messages(42)[0].text == "echo: hello"


async def test_formatting_is_escaped_and_falls_back_to_plain_text(
    jumping_clock: trio.testing.MockClock, harness: Any, telegram_peer: TelegramPeer
) -> None:
    h = await harness({"telegram": telegram_settings(dm_policy="open")})
    await started(h, add_telegram(h, telegram_peer))
    peer = telegram_peer
    peer.message("is 1 < 2 & **bold** <b>?")
    (sent,) = await peer.wait_for(lambda: peer.chat_messages(42))
    assert sent.parse_mode == "HTML"
    assert sent.text == "echo: is 1 < 2 & bold <b>?"
    peer.refuse_html = 1
    peer.message("`code` and more")
    await peer.wait_for(lambda: len(peer.chat_messages(42)) == 2)
    fallback = peer.chat_messages(42)[1]
    assert (fallback.parse_mode, fallback.text) == (None, "echo: `code` and more")


async def test_commands_act_on_the_paired_session(
    jumping_clock: trio.testing.MockClock, harness: Any, telegram_peer: TelegramPeer
) -> None:
    h = await harness({"telegram": telegram_settings(dm_policy="allowlist", allow_users=["42"])})
    await started(h, add_telegram(h, telegram_peer))
    peer = telegram_peer

    def last() -> str:
        return peer.chat_messages(42)[-1].text

    async def say(text: str, count: int) -> str:
        peer.message(text)
        await peer.wait_for(lambda: len(peer.chat_messages(42)) == count)
        return last()

    assert "/new starts a new conversation" in await say("/start", 1)
    assert await say("remember 7", 2) == "echo: remember 7"
    assert await say("/history", 3) == "you: remember 7\naleph: echo: remember 7"
    assert await say("/clear@aleph_test_bot", 4) == "Cleared 2 messages."
    assert await say("/history", 5) == "No messages yet."
    assert await say("/cancel", 6) == "Nothing is running."
    assert await say("/new", 7) == "Started a new conversation."
    peer.message("/start@some_other_bot")
    assert await say("still here?", 8) == "echo: still here?"


async def test_strangers_are_refused_under_allowlist(
    jumping_clock: trio.testing.MockClock, harness: Any, telegram_peer: TelegramPeer
) -> None:
    h = await harness({"telegram": telegram_settings(dm_policy="allowlist", allow_users=["1"])})
    await started(h, add_telegram(h, telegram_peer))
    telegram_peer.message("let me in")
    (sent,) = await telegram_peer.wait_for(lambda: telegram_peer.chat_messages(42))
    assert sent.text == "Sorry, this is a private assistant."
    assert h.engine.requests == []
    assert await h.pairing.pending() == []


async def test_rate_limited_users_get_a_polite_reply(
    jumping_clock: trio.testing.MockClock, harness: Any, telegram_peer: TelegramPeer
) -> None:
    h = await harness({"telegram": telegram_settings(dm_policy="open")}, user_per_minute=2)
    await started(h, add_telegram(h, telegram_peer))
    peer = telegram_peer
    for text in ("one", "two", "three", "four"):
        peer.message(text)
    await peer.wait_for(lambda: len(peer.chat_messages(42)) == 3)
    texts = [m.text for m in peer.chat_messages(42)]
    assert [t for t in texts if t.startswith("echo")] == ["echo: one", "echo: two"]
    (polite,) = [t for t in texts if not t.startswith("echo")]  # one notice, not two
    assert polite.startswith("You're sending messages faster than I can answer.")
    assert len(h.engine.requests) == 2


async def test_inline_query_gets_a_short_answer(
    jumping_clock: trio.testing.MockClock, harness: Any, telegram_peer: TelegramPeer
) -> None:
    h = await harness({"telegram": telegram_settings(dm_policy="allowlist", allow_users=["42"])})
    await started(h, add_telegram(h, telegram_peer))
    peer = telegram_peer
    peer.inline_query("capital of France?")
    (call,) = await peer.wait_for(lambda: peer.calls_of("answerInlineQuery"))
    (result,) = call.params["results"]
    assert result["input_message_content"]["message_text"] == "echo: capital of France?"
    peer.inline_query("who are you?", user_id=99, username="mallory")
    await peer.wait_for(lambda: len(peer.calls_of("answerInlineQuery")) == 2)
    (refused,) = peer.calls_of("answerInlineQuery")[1].params["results"]
    assert "private" in refused["input_message_content"]["message_text"]


@pytest.mark.parametrize(
    ("policy", "role"),
    [
        ({"dm_policy": "open"}, "guest"),  # a stranger let in by the open policy
        ({"dm_policy": "open", "allow_users": ["42"]}, "owner"),
        ({"dm_policy": "allowlist", "allow_users": ["42"]}, "owner"),
    ],
)
async def test_only_trusted_users_get_the_owners_tools(
    jumping_clock: trio.testing.MockClock,
    harness: Any,
    telegram_peer: TelegramPeer,
    policy: dict[str, Any],
    role: str,
) -> None:
    h = await harness({"telegram": telegram_settings(**policy)})
    await started(h, add_telegram(h, telegram_peer))
    telegram_peer.message("which tools may I use?")
    await telegram_peer.wait_for(lambda: h.engine.requests)
    assert h.engine.requests[0].role == role
