"""A long streamed answer: edits at a throttled rate, then split across messages.

Run under a MockClock that jumps ahead only when the process has been idle
for a moment of real time (the peers answer over real sockets, so a clock
that jumped at once would time their requests out). The figure this prints
(`-s`) is the one in the bots' closing note: message operations per minute
in one chat during a 2,000-token answer streamed at 50 tokens a second.
"""

from __future__ import annotations

import itertools
from typing import Any

import trio
import trio.testing

from tests.interfaces.conftest import (
    add_discord,
    add_telegram,
    discord_settings,
    started,
    telegram_settings,
)
from tests.peers.discord_peer import DM_CHANNEL_ID, DiscordPeer
from tests.peers.telegram_peer import TelegramPeer

TOKENS = 2000


def _rate(times: list[float]) -> tuple[float, int, float]:
    """(operations per minute overall, most in any 60 s window, smallest gap)."""
    span = times[-1] - times[0]
    per_minute = (len(times) - 1) / span * 60 if span > 0 else float(len(times))
    most = max(sum(1 for t in times if start <= t < start + 60) for start in times)
    gap = min(b - a for a, b in itertools.pairwise(times))
    return per_minute, most, gap


def _words(text: str) -> list[str]:
    return text.split()


async def test_telegram_long_answer_is_edited_then_split(
    harness: Any, telegram_peer: TelegramPeer, jumping_clock: trio.testing.MockClock
) -> None:
    h = await harness({"telegram": telegram_settings(dm_policy="open")})
    supervisor = add_telegram(h, telegram_peer)
    await started(h, supervisor)
    peer = telegram_peer
    h.engine.tokens, h.engine.per_step, h.engine.delay = TOKENS, 50, 1.0
    peer.message("long answer please")
    expected = [f"word{i}" for i in range(TOKENS)]
    with trio.fail_after(600):  # virtual seconds
        await peer.wait_for(
            lambda: sum(len(_words(m.text)) for m in peer.chat_messages(42)) == TOKENS, 600
        )
    messages = peer.chat_messages(42)
    assert [w for m in messages for w in _words(m.text)] == expected
    assert len(messages) >= 3
    assert all(len(m.text) <= 4096 for m in messages)
    assert sum(m.edits for m in messages) >= 10
    ops = [c.at for c in peer.calls if c.method in ("sendMessage", "editMessageText")]
    per_minute, most, gap = _rate(ops)
    print(
        f"\ntelegram: {len(messages)} messages, {sum(m.edits for m in messages)} edits; "
        f"{len(ops)} sends+edits in {ops[-1] - ops[0]:.1f} s for {TOKENS} tokens: "
        f"{per_minute:.1f}/min, at most {most} in any 60 s, smallest gap {gap:.2f} s "
        f"(limit: about 1 message/s per chat = 60/min)"
    )
    assert gap >= 1.5 - 1e-6
    assert most <= 60


async def test_telegram_group_edits_stay_under_twenty_a_minute(
    harness: Any, telegram_peer: TelegramPeer, jumping_clock: trio.testing.MockClock
) -> None:
    h = await harness({"telegram": telegram_settings(group_policy="open")})
    supervisor = add_telegram(h, telegram_peer)
    await started(h, supervisor)
    peer = telegram_peer
    h.engine.tokens, h.engine.per_step, h.engine.delay = 600, 50, 1.0
    peer.message("long one @aleph_test_bot", chat_id=-100500, group=True)
    with trio.fail_after(600):
        await peer.wait_for(
            lambda: sum(len(_words(m.text)) for m in peer.chat_messages(-100500)) == 600, 600
        )
    ops = [c.at for c in peer.calls if c.method in ("sendMessage", "editMessageText")]
    per_minute, most, gap = _rate(ops)
    print(f"\ntelegram group: {per_minute:.1f}/min, at most {most} in 60 s (limit 20/min)")
    assert most <= 20
    assert gap >= 3.0 - 1e-6


async def test_discord_long_answer_is_edited_then_split(
    harness: Any, discord_peer: DiscordPeer, jumping_clock: trio.testing.MockClock
) -> None:
    h = await harness({"discord": discord_settings(dm_policy="open")})
    supervisor = add_discord(h, discord_peer)
    await started(h, supervisor)
    peer = discord_peer
    h.engine.tokens, h.engine.per_step, h.engine.delay = TOKENS, 50, 1.0
    await peer.dispatch("MESSAGE_CREATE", peer.message_payload("long answer please"))
    expected = [f"word{i}" for i in range(TOKENS)]

    def words() -> list[str]:
        return [w for m in peer.channel_messages(DM_CHANNEL_ID) for w in _words(m["content"])]

    with trio.fail_after(600):
        await peer.wait_for(lambda: len(words()) == TOKENS, 600)
    messages = peer.channel_messages(DM_CHANNEL_ID)
    assert words() == expected
    assert len(messages) >= 5
    assert all(len(m["content"]) <= 2000 for m in messages)
    assert len(peer.edits) >= 10
    ops = sorted(
        [c.at for c in peer.calls if c.method == "POST" and c.path.endswith("/messages")]
        + [at for _, at in peer.edits]
    )
    per_minute, most, gap = _rate(ops)
    print(
        f"\ndiscord: {len(messages)} messages, {len(peer.edits)} edits; "
        f"{len(ops)} sends+edits in {ops[-1] - ops[0]:.1f} s for {TOKENS} tokens: "
        f"{per_minute:.1f}/min, at most {most} in any 60 s, smallest gap {gap:.2f} s "
        f"(limit: 5 per 5 s per channel = 60/min)"
    )
    assert gap >= 1.2 - 1e-6
    assert most <= 60
