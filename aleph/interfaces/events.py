"""What crosses the bridge: frozen inbound events and outbound actions.

An adapter turns what its bot library parsed into an :class:`Inbound` (a
message, a command or an inline query) and sends it to the core on a Trio
memory channel; the core answers with :class:`Outbound` actions on another.
Actions that produce something (the id of a sent message) carry a
:class:`Reply` the adapter resolves; the core awaits it, which also keeps the
actions of one chat in order. Nothing here imports asyncio or a bot library.

Failures of an action arrive as :class:`ActionFailed` from :meth:`Reply.wait`.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import trio

from aleph.engine.api import Attachment

__all__ = [
    "ActionFailed",
    "AnswerInline",
    "ChatKind",
    "Command",
    "EditText",
    "Inbound",
    "InlineQuery",
    "MessageIn",
    "Outbound",
    "Platform",
    "Reply",
    "SendText",
    "Target",
    "Typing",
]

Platform = Literal["telegram", "discord"]
ChatKind = Literal["dm", "group"]  # a Telegram group/supergroup/channel, a guild channel


class ActionFailed(Exception):
    """An outbound action could not be done; the message is safe to log."""


@attrs.define(eq=False)
class Reply:
    """The result slot of one action: set once by the adapter, awaited by the core."""

    _done: trio.Event = attrs.Factory(trio.Event)
    value: Any = None
    error: str | None = None

    def resolve(self, value: Any) -> None:
        if not self._done.is_set():
            self.value = value
            self._done.set()

    def fail(self, error: str) -> None:
        if not self._done.is_set():
            self.error = error
            self._done.set()

    async def wait(self) -> Any:
        await self._done.wait()
        if self.error is not None:
            raise ActionFailed(self.error)
        return self.value


@attrs.frozen
class Target:
    """Where an answer goes: a chat, and for a Discord slash command its interaction."""

    platform: Platform
    chat_id: str
    kind: ChatKind = "dm"
    reply_to: str | None = None  # the message answered, if the platform threads replies
    interaction: str | None = None  # an adapter-side handle for a deferred interaction


@attrs.frozen
class MessageIn:
    """A message to the bot, already translated from the platform's types."""

    target: Target
    user_id: str
    user_name: str  # for the operator: "@alice (Alice Liddell)"
    text: str
    message_id: str = ""
    mentioned: bool = False  # the bot was @-mentioned (or addressed by a slash command)
    replied_to_bot: bool = False
    attachments: tuple[Attachment, ...] = ()
    refused_attachments: tuple[str, ...] = ()  # names of files too large to fetch


@attrs.frozen
class Command:
    """A bot command: /start, /new, /clear, /history, /cancel (or /ask with `text`)."""

    target: Target
    user_id: str
    user_name: str
    name: str
    text: str = ""
    mentioned: bool = True


@attrs.frozen
class InlineQuery:
    """A Telegram inline query (`@bot question` in any chat): one short answer."""

    platform: Platform
    query_id: str
    user_id: str
    user_name: str
    text: str


Inbound = MessageIn | Command | InlineQuery


@attrs.frozen
class SendText:
    """Send a new message; the reply's value is the new message's id (str)."""

    target: Target
    text: str
    reply: Reply = attrs.field(factory=Reply, eq=False)
    plain: bool = False  # no formatting at all (system notices)


@attrs.frozen
class EditText:
    """Replace a sent message's text; resolves to None."""

    target: Target
    message_id: str
    text: str
    reply: Reply = attrs.field(factory=Reply, eq=False)


@attrs.frozen
class Typing:
    """Show "typing..." in the chat for a few seconds; resolves to None."""

    target: Target
    reply: Reply = attrs.field(factory=Reply, eq=False)


@attrs.frozen
class AnswerInline:
    """Answer an inline query with one article; resolves to None."""

    platform: Platform
    query_id: str
    title: str
    text: str
    reply: Reply = attrs.field(factory=Reply, eq=False)


Outbound = SendText | EditText | Typing | AnswerInline
