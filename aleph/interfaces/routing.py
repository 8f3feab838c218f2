"""The routing rules: which chat reaches which paired session, and who may talk.

Sans-IO and library-free: the one place that decides, for a message or a
command that reached a bot, whether it is ignored, refused, answered with a
pairing code, or delivered to a paired session, and under which channel key
(``telegram:123456``, ``discord:987654``, or with ``group_sessions =
"per_user"`` ``telegram:-100123:42``).

Rules, in order:

1. In a group (a Telegram group or channel, a Discord guild channel) the bot
   answers only when it is @-mentioned, replied to, or sent a command, unless
   ``require_mention`` is false. Anything else is ignored silently.
2. The policy is ``dm_policy`` for direct messages and ``group_policy`` in
   groups: ``disabled`` ignores; ``open`` delivers; ``allowlist`` delivers only
   for users in ``allow_users`` (or, in groups, chats in ``allow_chats``);
   ``pairing`` (the default) also delivers for allow-listed users and for
   channels the owner has paired, and answers anyone else with a pairing code.
3. A stranger under ``allowlist`` gets a short refusal in a direct message and
   silence in a group.
4. Trust: a user who is allow-listed, or whose channel the owner approved, is
   trusted and their runs have the owner's role. Someone let in only because
   the policy is ``open`` is not: their runs have the guest role, so the engine
   offers them only the tools marked safe for guests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs

from aleph.interfaces.events import Command, MessageIn, Target

__all__ = [
    "AccessPolicy",
    "Decision",
    "Deliver",
    "Ignore",
    "Pair",
    "Policy",
    "Refuse",
    "channel_key",
    "decide",
    "parse_channel_key",
]

Policy = Literal["pairing", "allowlist", "open", "disabled"]

REFUSAL = "Sorry, this is a private assistant."


@attrs.frozen
class AccessPolicy:
    dm_policy: Policy = "pairing"
    group_policy: Policy = "pairing"
    allow_users: frozenset[str] = frozenset()
    allow_chats: frozenset[str] = frozenset()
    require_mention: bool = True
    group_sessions: Literal["per_chat", "per_user"] = "per_chat"


@attrs.frozen
class Ignore:
    reason: str


@attrs.frozen
class Refuse:
    text: str


@attrs.frozen
class Pair:
    channel_key: str


@attrs.frozen
class Deliver:
    channel_key: str
    trusted: bool = True  # False: let in by an "open" policy only; runs as a guest


Decision = Ignore | Refuse | Pair | Deliver


def channel_key(target: Target, user_id: str, policy: AccessPolicy) -> str:
    """The paired session's key: one per direct-message peer, per group (or per
    user within a group)."""
    key = f"{target.platform}:{target.chat_id}"
    if target.kind == "group" and policy.group_sessions == "per_user":
        key += f":{user_id}"
    return key


def parse_channel_key(key: str) -> tuple[str, str]:
    """(platform, chat id) of a channel key made by :func:`channel_key`."""
    platform, _, rest = key.partition(":")
    negative = rest.startswith("-")  # Telegram group ids are negative: "-100123:42"
    chat_id = rest[1:].partition(":")[0] if negative else rest.partition(":")[0]
    return platform, ("-" + chat_id) if negative else chat_id


def _addressed(event: MessageIn | Command) -> bool:
    if isinstance(event, Command):
        return event.mentioned
    return event.mentioned or event.replied_to_bot


def decide(
    event: MessageIn | Command, policy: AccessPolicy, is_paired: Callable[[str], bool]
) -> Decision:
    """What to do with one message or command; see the module docstring."""
    target = event.target
    group = target.kind == "group"
    if group and policy.require_mention and not _addressed(event):
        return Ignore("not addressed to the bot")
    mode = policy.group_policy if group else policy.dm_policy
    if mode == "disabled":
        return Ignore(f"{'group' if group else 'direct'} messages are disabled")
    key = channel_key(target, event.user_id, policy)
    allowed = event.user_id in policy.allow_users or (
        group and target.chat_id in policy.allow_chats
    )
    if allowed or (mode != "allowlist" and is_paired(key)):
        return Deliver(key)
    if mode == "open":
        return Deliver(key, trusted=False)
    if mode == "allowlist":
        return Ignore("not on the allowlist") if group else Refuse(REFUSAL)
    return Pair(key)
