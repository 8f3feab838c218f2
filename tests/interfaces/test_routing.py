"""The routing rules, without any bot library: who reaches which paired session."""

from __future__ import annotations

import pytest

from aleph.interfaces.events import Command, MessageIn, Target
from aleph.interfaces.routing import (
    AccessPolicy,
    Deliver,
    Ignore,
    Pair,
    Refuse,
    channel_key,
    decide,
    parse_channel_key,
)

DM = Target("telegram", "42", "dm")
GROUP = Target("telegram", "-100123", "group")


def msg(target: Target = DM, user: str = "42", **flags: bool) -> MessageIn:
    return MessageIn(target, user, "@alice", "hi", **flags)


def never(key: str) -> bool:
    return False


def test_dm_from_a_stranger_gets_a_pairing_offer_by_default() -> None:
    assert decide(msg(), AccessPolicy(), never) == Pair("telegram:42")


def test_paired_dm_is_delivered() -> None:
    assert decide(msg(), AccessPolicy(), {"telegram:42"}.__contains__) == Deliver("telegram:42")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (AccessPolicy(dm_policy="open"), Deliver("telegram:42", trusted=False)),
        (AccessPolicy(dm_policy="disabled"), Ignore("direct messages are disabled")),
        (AccessPolicy(dm_policy="allowlist"), Refuse("Sorry, this is a private assistant.")),
        (
            AccessPolicy(dm_policy="allowlist", allow_users=frozenset({"42"})),
            Deliver("telegram:42"),
        ),
        (AccessPolicy(allow_users=frozenset({"42"})), Deliver("telegram:42")),
    ],
)
def test_dm_policies(policy: AccessPolicy, expected: object) -> None:
    assert decide(msg(), policy, never) == expected


OPEN_GROUP = Deliver("telegram:-100123", trusted=False)  # let in by the open policy


def test_group_needs_a_mention_a_reply_or_a_command() -> None:
    policy = AccessPolicy(group_policy="open")
    assert isinstance(decide(msg(GROUP), policy, never), Ignore)
    assert decide(msg(GROUP, mentioned=True), policy, never) == Deliver(
        "telegram:-100123", trusted=False
    )
    assert decide(msg(GROUP, replied_to_bot=True), policy, never) == Deliver(
        "telegram:-100123", trusted=False
    )
    command = Command(GROUP, "42", "@alice", "new")
    assert decide(command, policy, never) == OPEN_GROUP
    loose = AccessPolicy(group_policy="open", require_mention=False)
    assert decide(msg(GROUP), loose, never) == OPEN_GROUP


def test_groups_are_paired_as_a_whole_or_per_user() -> None:
    assert decide(msg(GROUP, mentioned=True), AccessPolicy(), never) == Pair("telegram:-100123")
    per_user = AccessPolicy(group_policy="open", group_sessions="per_user")
    assert decide(msg(GROUP, mentioned=True), per_user, never) == Deliver(
        "telegram:-100123:42", trusted=False
    )


def test_only_strangers_let_in_by_an_open_policy_are_untrusted() -> None:
    policy = AccessPolicy(dm_policy="open")
    assert decide(msg(), policy, never) == Deliver("telegram:42", trusted=False)
    paired = {"telegram:42"}.__contains__
    assert decide(msg(), policy, paired) == Deliver("telegram:42", trusted=True)
    listed = AccessPolicy(dm_policy="open", allow_users=frozenset({"42"}))
    assert decide(msg(), listed, never) == Deliver("telegram:42", trusted=True)
    assert decide(msg(), AccessPolicy(), paired) == Deliver("telegram:42", trusted=True)


def test_group_allowlist_by_chat_and_silence_for_strangers() -> None:
    policy = AccessPolicy(group_policy="allowlist", allow_chats=frozenset({"-100123"}))
    assert decide(msg(GROUP, "7", mentioned=True), policy, never) == Deliver("telegram:-100123")
    other = Target("telegram", "-100999", "group")
    assert isinstance(decide(msg(other, mentioned=True), policy, never), Ignore)


def test_channel_keys_round_trip() -> None:
    policy = AccessPolicy(group_sessions="per_user")
    for target, user in ((DM, "42"), (GROUP, "42"), (Target("discord", "987", "group"), "5")):
        key = channel_key(target, user, policy)
        assert parse_channel_key(key) == (target.platform, target.chat_id)
