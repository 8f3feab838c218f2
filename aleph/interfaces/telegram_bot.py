"""The Telegram adapter (DESIGN.md's BotHandler): python-telegram-bot inside Trio.

:class:`TelegramBotHandler` runs one PTB ``Application`` on the bridge's
asyncio loop: long polling (``getUpdates``), every update handled by one
callback that translates it into a frozen event (:func:`translate`) and hands
it to the core on the inbound Trio channel. Photos and documents are fetched
(``getFile``) and become attachments, up to a size limit. Outbound actions are
carried out with HTTP 429 ``retry_after`` honoured and HTML formatting that
falls back to plain text when Telegram's parser rejects it.

:meth:`TelegramBotHandler.run` returns only by cancellation; a rejected token
(``InvalidToken``) or any start-up failure propagates to the bridge's
supervisor, which reports it and retries with backoff. Network trouble while
polling is retried by PTB itself and reported in :attr:`problem`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import warnings
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import attrs
import trio
import trio_asyncio  # type: ignore[import-untyped]

# PTB 22 is moving its time periods from int seconds to timedelta and warns on every
# int it builds (even inside RetryAfter's constructor); opt in to the new behaviour.
os.environ.setdefault("PTB_TIMEDELTA", "true")

from telegram import (
    Bot,
    BotCommand,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from aleph.engine.api import Attachment
from aleph.interfaces.events import (
    AnswerInline,
    ChatKind,
    Command,
    EditText,
    Inbound,
    InlineQuery,
    MessageIn,
    Outbound,
    SendText,
    Target,
    Typing,
)
from aleph.interfaces.formatting import telegram_html

__all__ = ["COMMANDS", "TelegramBotHandler", "translate"]

log = logging.getLogger(__name__)

T = TypeVar("T")

COMMANDS = {
    "start": "Say hello (and pair this chat)",
    "new": "Start a new conversation",
    "clear": "Forget this conversation",
    "history": "Show the last messages",
    "cancel": "Stop the answer being written",
}
MAX_RETRIES = 3  # 429s honoured per action before giving up
MAX_CONCURRENT_ACTIONS = 16


def describe_user(user: Any) -> str:
    if user is None:
        return "unknown"
    name = " ".join(part for part in (user.first_name, user.last_name) if part)
    return f"@{user.username} ({name})" if user.username else name or str(user.id)


def _mentions(message: Message, username: str, bot_id: int) -> tuple[bool, str]:
    """(mentioned, text without the mention) for a message's text or caption."""
    text = message.text or message.caption or ""
    entities = message.parse_entities() if message.text else message.parse_caption_entities()
    handle = f"@{username}".lower()
    mentioned = False
    for entity, value in entities.items():
        by_name = entity.type == MessageEntity.MENTION and value.lower() == handle
        by_id = entity.type == MessageEntity.TEXT_MENTION and entity.user is not None
        if by_name or (by_id and entity.user is not None and entity.user.id == bot_id):
            mentioned = True
    if mentioned:
        text = " ".join(word for word in text.split(" ") if word.lower() != handle)
    return mentioned, text.strip()


def translate(update: Update, username: str, bot_id: int) -> Inbound | MessageIn | None:
    """The frozen event for an update (attachments still to fetch), or None to ignore."""
    if update.inline_query is not None:
        query = update.inline_query
        asker = query.from_user
        return InlineQuery("telegram", query.id, str(asker.id), describe_user(asker), query.query)
    message = update.message or update.channel_post
    if message is None:
        return None
    chat = message.chat
    user = message.from_user
    user_id = str(user.id if user else chat.id)
    kind: ChatKind = "dm" if chat.type == "private" else "group"
    target = Target("telegram", str(chat.id), kind, reply_to=str(message.message_id))
    text = message.text or message.caption or ""
    if text.startswith("/"):
        head, _, rest = text[1:].partition(" ")
        name, _, addressee = head.partition("@")
        if addressee and addressee.lower() != username.lower():
            return None  # a command for another bot in the group
        if name.lower() in COMMANDS:
            return Command(target, user_id, describe_user(user), name.lower(), rest.strip())
    mentioned, text = _mentions(message, username, bot_id)
    reply = message.reply_to_message
    replied = bool(reply and reply.from_user and reply.from_user.id == bot_id)
    return MessageIn(
        target, user_id, describe_user(user), text, str(message.message_id), mentioned, replied
    )


def _retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB warns about its int/timedelta migration
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


@attrs.define(eq=False)
class TelegramBotHandler:
    token: str
    base_url: str = ""  # a Bot API server; empty: Telegram's own
    base_file_url: str = ""
    max_attachment_bytes: int = 5 * 1_048_576
    poll_timeout: float = 30.0
    fetch_unaddressed: bool = False  # fetch files of group messages not for us
    name: str = "telegram"
    username: str = ""
    problem: str | None = None  # the last polling error, while it lasts
    _app: Any = None
    _inbound: trio.MemorySendChannel[Inbound] | None = None

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        builder = ApplicationBuilder().token(self.token)
        if self.base_url:
            builder = builder.base_url(self.base_url)
            builder = builder.base_file_url(
                self.base_file_url or self.base_url.replace("/bot", "/file/bot")
            )
        return builder.get_updates_read_timeout(self.poll_timeout + 10.0).build()

    async def _aio(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        result: T = await trio_asyncio.aio_as_trio(partial(fn, *args, **kwargs))()
        return result

    async def run(
        self,
        inbound: trio.MemorySendChannel[Inbound],
        outbound: trio.MemoryReceiveChannel[Outbound],
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Log in, poll and serve outbound actions until cancelled (or failed)."""
        app = self._app = self._build()
        self._inbound = inbound
        app.add_handler(TypeHandler(Update, self._on_update))
        try:
            await self._aio(app.initialize)  # getMe: InvalidToken here
        except BaseException:
            # The HTTP clients are open by now; Application.shutdown would skip them.
            with trio.CancelScope(shield=True), trio.move_on_after(5.0):
                await self._aio(app.bot.shutdown)
            raise
        try:
            self.username = app.bot.username
            await self._aio(app.start)
            assert app.updater is not None  # the builder makes one unless told not to
            await self._aio(
                app.updater.start_polling,
                timeout=dt.timedelta(seconds=self.poll_timeout),
                allowed_updates=["message", "channel_post", "inline_query"],
                error_callback=self._polling_error,
            )
            await self._set_commands(app.bot)
            log.info("telegram: polling as @%s", self.username)
            task_status.started(self.username)
            slots = trio.CapacityLimiter(MAX_CONCURRENT_ACTIONS)
            async with trio.open_nursery() as nursery:
                async for action in outbound:
                    await slots.acquire_on_behalf_of(action)
                    nursery.start_soon(self._perform, action, slots)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5.0):
                await self._stop(app)

    async def _stop(self, app: Any) -> None:
        for step in (app.updater.stop, app.stop, app.shutdown):
            try:
                await self._aio(step)
            except (RuntimeError, TelegramError) as exc:
                log.debug("telegram: %s while stopping", exc)

    async def _set_commands(self, bot: Bot) -> None:
        try:
            commands = [BotCommand(name, text) for name, text in COMMANDS.items()]
            await self._aio(bot.set_my_commands, commands)
        except TelegramError as exc:
            log.info("telegram: could not set the command list: %s", exc)

    def _polling_error(self, exc: TelegramError) -> None:
        self.problem = str(exc)
        log.warning("telegram: polling failed, retrying: %s", exc)

    # -- inbound (runs on the asyncio loop) ----------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.problem = None
        try:
            event = translate(update, self.username, context.bot.id)
            if isinstance(event, MessageIn) and self._wants_files(event):
                message = update.message or update.channel_post
                assert message is not None
                event = await self._with_files(event, message)
            if event is not None and self._inbound is not None:
                await trio_asyncio.trio_as_aio(self._inbound.send)(event)
        except Exception:
            log.exception("telegram: could not handle update %s", update.update_id)

    def _wants_files(self, event: MessageIn) -> bool:
        addressed = event.mentioned or event.replied_to_bot or event.target.kind == "dm"
        return addressed or self.fetch_unaddressed

    async def _with_files(self, event: MessageIn, message: Message) -> MessageIn:
        wanted: list[tuple[Any, str, str, int | None]] = []
        if message.photo:
            photo = message.photo[-1]  # the largest size
            wanted.append((photo, "photo.jpg", "image/jpeg", photo.file_size))
        if message.document:
            doc = message.document
            name, mime = doc.file_name or "document", doc.mime_type or "application/octet-stream"
            wanted.append((doc, name, mime, doc.file_size))
        attachments, refused = [], []
        for item, name, mime, size in wanted:
            if size is not None and size > self.max_attachment_bytes:
                refused.append(name)
                continue
            try:
                file = await item.get_file()
                data = bytes(await file.download_as_bytearray())
            except TelegramError as exc:
                log.info("telegram: could not fetch %s: %s", name, exc)
                refused.append(name)
                continue
            if len(data) > self.max_attachment_bytes:
                refused.append(name)
            else:
                attachments.append(Attachment(name, mime, data))
        if not wanted:
            return event
        return attrs.evolve(
            event, attachments=tuple(attachments), refused_attachments=tuple(refused)
        )

    # -- outbound (Trio) -----------------------------------------------------

    async def _perform(self, action: Outbound, slots: trio.CapacityLimiter) -> None:
        try:
            action.reply.resolve(await self._with_retries(action))
        except TelegramError as exc:
            action.reply.fail(str(exc))
        except Exception as exc:
            log.exception("telegram: %s failed", type(action).__name__)
            action.reply.fail(f"internal error: {type(exc).__name__}")
        finally:
            slots.release_on_behalf_of(action)

    async def _with_retries(self, action: Outbound) -> Any:
        for attempt in range(MAX_RETRIES + 1):
            try:
                return await self._do(action)
            except RetryAfter as exc:
                if attempt == MAX_RETRIES:
                    raise
                wait = _retry_after_seconds(exc)
                log.info("telegram: flood control, waiting %.0f s", wait)
                await trio.sleep(wait)
        raise AssertionError("unreachable")

    async def _do(self, action: Outbound) -> Any:
        bot: Bot = self._app.bot
        if isinstance(action, SendText):
            return await self._send(bot, action)
        if isinstance(action, EditText):
            return await self._edit(bot, action)
        if isinstance(action, Typing):
            await self._aio(bot.send_chat_action, int(action.target.chat_id), ChatAction.TYPING)
            return None
        if isinstance(action, AnswerInline):
            result = InlineQueryResultArticle(
                id="1",
                title=action.title[:60],
                input_message_content=InputTextMessageContent(action.text[:4096]),
                description=action.text[:200],
            )
            await self._aio(
                bot.answer_inline_query, action.query_id, [result], cache_time=0, is_personal=True
            )
            return None
        raise TypeError(f"unknown action {type(action).__name__}")

    async def _send(self, bot: Bot, action: SendText) -> str:
        target = action.target
        kwargs: dict[str, Any] = {}
        if target.reply_to is not None and target.kind == "group":
            kwargs["reply_parameters"] = ReplyParameters(
                int(target.reply_to), allow_sending_without_reply=True
            )
        chat = int(target.chat_id)
        if not action.plain:
            try:
                message = await self._aio(
                    bot.send_message,
                    chat,
                    telegram_html(action.text),
                    parse_mode=ParseMode.HTML,
                    **kwargs,
                )
                return str(message.message_id)
            except BadRequest as exc:
                if "parse" not in str(exc).lower():
                    raise
                log.info("telegram: formatting rejected, sending plain text: %s", exc)
        message = await self._aio(bot.send_message, chat, action.text, **kwargs)
        return str(message.message_id)

    async def _edit(self, bot: Bot, action: EditText) -> None:
        chat, message_id = int(action.target.chat_id), int(action.message_id)
        try:
            try:
                await self._aio(
                    bot.edit_message_text,
                    telegram_html(action.text),
                    chat,
                    message_id,
                    parse_mode=ParseMode.HTML,
                )
            except BadRequest as exc:
                if "parse" not in str(exc).lower():
                    raise
                await self._aio(bot.edit_message_text, action.text, chat, message_id)
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise
