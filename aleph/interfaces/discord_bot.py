"""The Discord adapter (DESIGN.md's ChannelManager): discord.py inside Trio.

:class:`DiscordChannelManager` runs one ``discord.Client`` on the bridge's
asyncio loop: it logs in (REST), registers the slash commands /ask, /new,
/clear and /cancel for the application (``CommandTree.sync``), connects to
the gateway (reconnecting and resuming by itself) and translates messages in
direct messages and guild channels, and slash commands, into frozen events
for the core. Slash commands are deferred at once ("thinking..."), and the
answer replaces the deferred response, with follow-ups beyond 2,000
characters. Attachments are downloaded up to a size limit. Rate limits are
honoured by discord.py itself (it waits on 429 and on its bucket headers).

The message-content intent is privileged: without it Discord still sends the
text of direct messages and of messages that mention the bot, which is all
the bot needs while ``require_mention`` is on. Turn on
``discord.message_content_intent`` (and the switch in the developer portal)
to read unaddressed guild messages.

:meth:`DiscordChannelManager.run` returns only by cancellation; a rejected
token (``LoginFailure``) or a gateway that refuses us propagates to the
bridge's supervisor.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import attrs
import trio
import trio_asyncio  # type: ignore[import-untyped]

with warnings.catch_warnings():
    # discord.py's voice support imports audioop, deprecated in 3.11; we use no voice.
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    from discord import app_commands

from aleph.engine.api import Attachment
from aleph.interfaces.events import (
    AnswerInline,
    ChatKind,
    Command,
    EditText,
    Inbound,
    MessageIn,
    Outbound,
    SendText,
    Target,
    Typing,
)
from aleph.interfaces.formatting import close_open_fence

__all__ = ["DiscordChannelManager"]

log = logging.getLogger(__name__)

T = TypeVar("T")

REMEMBERED = 500  # sent messages kept for editing; older ones are edited by id
SLASH = {
    "ask": "Ask Aleph something",
    "new": "Start a new conversation",
    "clear": "Forget this conversation",
    "cancel": "Stop the answer being written",
}


def describe_user(user: Any) -> str:
    display = getattr(user, "global_name", None) or user.name
    return f"@{user.name} ({display})"


@attrs.define(eq=False)
class DiscordChannelManager:
    token: str
    max_attachment_bytes: int = 5 * 1_048_576
    message_content_intent: bool = False
    sync_commands: bool = True
    fetch_unaddressed: bool = False  # fetch attachments of group messages not for us
    guild_ready_timeout: float = 2.0
    name: str = "discord"
    _client: Any = None
    _inbound: trio.MemorySendChannel[Inbound] | None = None
    _sent: OrderedDict[str, Any] = attrs.Factory(OrderedDict)
    _interactions: OrderedDict[str, Any] = attrs.Factory(OrderedDict)
    _answered: set[str] = attrs.Factory(set)

    async def _aio(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        result: T = await trio_asyncio.aio_as_trio(partial(fn, *args, **kwargs))()
        return result

    def _make_client(
        self, ready: trio.Event
    ) -> tuple[discord.Client, app_commands.CommandTree[Any]]:
        intents = discord.Intents.default()
        intents.message_content = self.message_content_intent
        client = discord.Client(
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=self.guild_ready_timeout,
        )
        tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)

        async def on_ready() -> None:
            ready.set()

        async def on_message(message: discord.Message) -> None:
            await self._on_message_event(message)

        client.event(on_ready)  # discord.py finds handlers by their names
        client.event(on_message)
        self._add_commands(tree)
        return client, tree

    def _add_commands(self, tree: app_commands.CommandTree[Any]) -> None:
        @app_commands.describe(prompt="What to ask")
        async def ask(interaction: discord.Interaction, prompt: str) -> None:
            await self._on_slash(interaction, "ask", prompt)

        tree.add_command(app_commands.Command(name="ask", description=SLASH["ask"], callback=ask))
        for name in ("new", "clear", "cancel"):

            async def simple(interaction: discord.Interaction, _name: str = name) -> None:
                await self._on_slash(interaction, _name)

            command: app_commands.Command[Any, ..., None] = app_commands.Command(
                name=name, description=SLASH[name], callback=simple
            )
            tree.add_command(command)

    async def run(
        self,
        inbound: trio.MemorySendChannel[Inbound],
        outbound: trio.MemoryReceiveChannel[Outbound],
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Log in, connect, serve outbound actions until cancelled (or failed)."""
        ready = trio.Event()
        client, tree = self._make_client(ready)
        self._client, self._inbound = client, inbound
        try:
            await self._aio(client.login, self.token)  # LoginFailure here
            if self.sync_commands:
                await self._aio(tree.sync)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._connect, client)
                await ready.wait()
                log.info("discord: connected as %s", client.user)
                task_status.started(str(client.user))
                async for action in outbound:
                    nursery.start_soon(self._perform, action)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5.0):
                await self._aio(client.close)

    async def _connect(self, client: discord.Client) -> None:
        await self._aio(client.connect, reconnect=True)
        raise ConnectionError("the Discord gateway connection ended")

    # -- inbound (runs on the asyncio loop) ----------------------------------

    async def _hand_over(self, event: Inbound) -> None:
        if self._inbound is not None:
            await trio_asyncio.trio_as_aio(self._inbound.send)(event)

    async def _on_message_event(self, message: discord.Message) -> None:
        try:
            await self.on_message(message)
        except Exception:
            log.exception("discord: could not handle message %s", message.id)

    async def on_message(self, message: discord.Message) -> None:
        me = self._client.user
        if me is None or message.author.bot:
            return
        kind: ChatKind = "dm" if message.guild is None else "group"
        mentioned = any(u.id == me.id for u in message.mentions)
        text = message.content
        if mentioned:
            text = re.sub(rf"<@!?{me.id}>", "", text).strip()
        resolved = message.reference.resolved if message.reference else None
        replied = isinstance(resolved, discord.Message) and resolved.author.id == me.id
        target = Target("discord", str(message.channel.id), kind, reply_to=str(message.id))
        event = MessageIn(
            target, str(message.author.id), describe_user(message.author), text,
            str(message.id), mentioned, replied,
        )  # fmt: skip
        if message.attachments and (kind == "dm" or mentioned or replied or self.fetch_unaddressed):
            event = await self._with_files(event, message)
        await self._hand_over(event)

    async def _with_files(self, event: MessageIn, message: discord.Message) -> MessageIn:
        attachments, refused = [], []
        for item in message.attachments:
            if item.size > self.max_attachment_bytes:
                refused.append(item.filename)
                continue
            try:
                data = await item.read()
            except discord.HTTPException as exc:
                log.info("discord: could not fetch %s: %s", item.filename, exc)
                refused.append(item.filename)
                continue
            mime = (item.content_type or "application/octet-stream").split(";")[0]
            attachments.append(Attachment(item.filename, mime, data))
        return attrs.evolve(
            event, attachments=tuple(attachments), refused_attachments=tuple(refused)
        )

    async def _on_slash(self, interaction: discord.Interaction, name: str, text: str = "") -> None:
        await interaction.response.defer(thinking=True)
        handle = str(interaction.id)
        self._interactions[handle] = interaction
        while len(self._interactions) > REMEMBERED:
            old, _ = self._interactions.popitem(last=False)
            self._answered.discard(old)
        kind: ChatKind = "group" if interaction.guild_id else "dm"
        target = Target("discord", str(interaction.channel_id), kind, interaction=handle)
        user = interaction.user
        await self._hand_over(Command(target, str(user.id), describe_user(user), name, text))

    # -- outbound (Trio) -----------------------------------------------------

    async def _perform(self, action: Outbound) -> None:
        try:
            action.reply.resolve(await self._do(action))
        except discord.DiscordException as exc:
            action.reply.fail(str(exc)[:300])
        except Exception as exc:
            log.exception("discord: %s failed", type(action).__name__)
            action.reply.fail(f"internal error: {type(exc).__name__}")

    def _remember(self, message: Any) -> str:
        key = str(message.id)
        self._sent[key] = message
        while len(self._sent) > REMEMBERED:
            self._sent.popitem(last=False)
        return key

    async def _do(self, action: Outbound) -> Any:
        if isinstance(action, SendText):
            text = discord.utils.escape_markdown(action.text) if action.plain else action.text
            return await self._send(action.target, close_open_fence(text))
        if isinstance(action, EditText):
            await self._edit(action.target, action.message_id, close_open_fence(action.text))
            return None
        if isinstance(action, Typing):
            channel = self._client.get_partial_messageable(int(action.target.chat_id))

            async def typing() -> None:
                await channel.typing()

            await self._aio(typing)
            return None
        if isinstance(action, AnswerInline):
            raise TypeError("Discord has no inline queries")
        raise TypeError(f"unknown action {type(action).__name__}")

    async def _send(self, target: Target, text: str) -> str:
        interaction = self._interactions.get(target.interaction or "")
        if interaction is not None:
            if target.interaction not in self._answered:
                self._answered.add(str(target.interaction))
                message = await self._aio(interaction.edit_original_response, content=text)
            else:
                message = await self._aio(interaction.followup.send, text, wait=True)
            return self._remember(message)
        channel = self._client.get_partial_messageable(int(target.chat_id))
        reference = None
        if target.reply_to is not None and target.kind == "group":
            reference = discord.MessageReference(
                message_id=int(target.reply_to),
                channel_id=int(target.chat_id),
                fail_if_not_exists=False,
            )
        message = await self._aio(channel.send, text, reference=reference)
        return self._remember(message)

    async def _edit(self, target: Target, message_id: str, text: str) -> None:
        message = self._sent.get(message_id)
        if message is None:
            channel = self._client.get_partial_messageable(int(target.chat_id))
            message = channel.get_partial_message(int(message_id))
        await self._aio(message.edit, content=text)
