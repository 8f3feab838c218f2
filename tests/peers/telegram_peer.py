"""A fake Telegram Bot API on 127.0.0.1 that speaks the real wire format.

Point python-telegram-bot at it with ``ApplicationBuilder().base_url(peer.base_url)
.base_file_url(peer.base_file_url)``. It implements what the adapter uses:
getMe, deleteWebhook, getUpdates (a real long poll), setMyCommands,
sendMessage, editMessageText, sendChatAction, answerInlineQuery, getFile and
file downloads. ``parse_mode=HTML`` is checked like Telegram does (known
tags, balanced, entities) and the visible text is limited to 4,096 UTF-16
units; an edit to the same text fails with "message is not modified"; a
wrong token gets 401; :meth:`TelegramPeer.flood` makes the next calls of a
method fail with 429 and ``retry_after``.

Tests push updates (:meth:`message`, :meth:`inline_query`) and wait for the
bot's calls (:meth:`wait_for`); every call is kept in :attr:`calls` with the
Trio time it arrived.
"""

from __future__ import annotations

import itertools
import re
import time
import urllib.parse
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import attrs
import orjson
import trio

from tests.peers.bot_http import Changes, HttpRequest, HttpResponse, json_response, serve_http

__all__ = ["Call", "TelegramPeer"]

TOKEN = "123456:TEST-token"
BOT = {"id": 777, "is_bot": True, "first_name": "Aleph", "username": "aleph_test_bot"}
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                "span", "tg-spoiler", "blockquote", "tg-emoji"}  # fmt: skip


class _EntityParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.error = self.error or f'unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.error = self.error or f'unexpected end tag "{tag}"'

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> tuple[str, str | None]:
    """(visible text, error) as Telegram's HTML entity parser would see it."""
    if re.search(r"<(?![a-zA-Z/])", text):
        return text, 'unexpected "<"; use &lt;'
    parser = _EntityParser()
    parser.feed(text)
    parser.close()
    if parser.stack and not parser.error:
        parser.error = f'can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
    return "".join(parser.text), parser.error


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@attrs.frozen
class Call:
    method: str
    params: dict[str, Any]
    at: float  # trio.current_time()


@attrs.define(eq=False)
class Sent:
    chat_id: int
    message_id: int
    text: str  # visible text
    raw: str  # as sent, with markup
    parse_mode: str | None
    edits: int = 0


@attrs.define(eq=False)
class TelegramPeer:
    token: str = TOKEN
    port: int = 0
    calls: list[Call] = attrs.Factory(list)
    updates: list[dict[str, Any]] = attrs.Factory(list)
    messages: dict[tuple[int, int], Sent] = attrs.Factory(dict)
    files: dict[str, tuple[str, bytes]] = attrs.Factory(dict)  # file_id -> (path, data)
    floods: dict[str, list[int]] = attrs.Factory(dict)
    refuse_html: int = 0  # refuse the next N HTML texts as unparsable (to test the fallback)
    _update_ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))
    _message_ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1000))
    changes: Changes = attrs.Factory(Changes)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def serve(
        self, *, task_status: trio.TaskStatus[TelegramPeer] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            self.port = await nursery.start(serve_http, self._handle)
            task_status.started(self)

    # -- what tests do -------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], Any], limit: float = 10.0) -> Any:
        """Wait (bounded) until predicate() is truthy; returns its value."""
        return await self.changes.wait_for(predicate, limit)

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def chat_messages(self, chat_id: int) -> list[Sent]:
        return [sent for (chat, _), sent in sorted(self.messages.items()) if chat == chat_id]

    def flood(self, method: str, *retry_after: int) -> None:
        """The next len(retry_after) calls of `method` get 429 with these retry_after."""
        self.floods.setdefault(method, []).extend(retry_after)

    def push(self, update: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self.updates.append({"update_id": update_id, **update})
        self.changes.notify()
        return update_id

    def message(
        self,
        text: str = "",
        *,
        chat_id: int = 42,
        user_id: int = 42,
        username: str = "alice",
        group: bool = False,
        reply_to_bot: bool = False,
        photo: bytes | None = None,
        document: tuple[str, str, bytes] | None = None,
    ) -> int:
        """Push a message update; returns its message_id."""
        message_id = next(self._message_ids)
        user = {
            "id": user_id,
            "is_bot": False,
            "first_name": username.title(),
            "username": username,
        }
        chat: dict[str, Any] = (
            {"id": chat_id, "type": "supergroup", "title": "Test group"}
            if group
            else {"id": chat_id, "type": "private", "first_name": username.title()}
        )
        body: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "chat": chat,
                                "from": user}  # fmt: skip
        entities = []
        if text.startswith("/"):
            entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
        mention = "@" + str(BOT["username"])
        if mention in text:
            entities.append({"type": "mention", "offset": utf16(text[: text.index(mention)]),
                             "length": utf16(mention)})  # fmt: skip
        key = "caption" if photo is not None or document is not None else "text"
        if text:
            body[key] = text
            if entities:
                body[f"{key}_entities" if key == "caption" else "entities"] = entities
        if reply_to_bot:
            body["reply_to_message"] = {"message_id": 1, "date": int(time.time()), "chat": chat,
                                        "from": BOT, "text": "earlier answer"}  # fmt: skip
        if photo is not None:
            self.files["photo-big"] = ("photos/file_1.jpg", photo)
            body["photo"] = [
                {"file_id": "photo-small", "file_unique_id": "ps", "width": 90, "height": 90,
                 "file_size": 100},
                {"file_id": "photo-big", "file_unique_id": "pb", "width": 800, "height": 600,
                 "file_size": len(photo)},
            ]  # fmt: skip
            self.files["photo-small"] = ("photos/file_0.jpg", photo[:100])
        if document is not None:
            name, mime, data = document
            self.files["doc-1"] = (f"documents/{name}", data)
            body["document"] = {"file_id": "doc-1", "file_unique_id": "d1", "file_name": name,
                                "mime_type": mime, "file_size": len(data)}  # fmt: skip
        self.push({"message": body})
        return message_id

    def inline_query(self, text: str, *, user_id: int = 42, username: str = "alice") -> str:
        query_id = f"q{next(self._update_ids)}"
        user = {
            "id": user_id,
            "is_bot": False,
            "first_name": username.title(),
            "username": username,
        }
        self.push({"inline_query": {"id": query_id, "from": user, "query": text, "offset": ""}})
        return query_id

    # -- the Bot API ---------------------------------------------------------

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/file/bot"):
            return self._download(request.path)
        prefix, _, method = request.path.removeprefix("/bot").rpartition("/")
        if prefix != self.token:
            return json_response(
                401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
        params = dict(request.body) if isinstance(request.body, dict) else {}
        self.calls.append(Call(method, params, trio.current_time()))
        self.changes.notify()
        waits = self.floods.get(method)
        if waits:
            retry_after = waits.pop(0)
            return json_response(429, {
                "ok": False, "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            })  # fmt: skip
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return self._error(404, "Not Found")
        result = await handler(params)
        if isinstance(result, tuple):
            return result  # type: ignore[return-value]
        return json_response(200, {"ok": True, "result": result})

    def _error(self, code: int, description: str) -> HttpResponse:
        return json_response(code, {"ok": False, "error_code": code, "description": description})  # type: ignore[no-any-return]

    def _download(self, path: str) -> HttpResponse:
        token, _, file_path = urllib.parse.unquote(path.removeprefix("/file/bot")).partition("/")
        for stored_path, data in self.files.values():
            if token == self.token and stored_path == file_path:
                return 200, [("content-type", "application/octet-stream")], data
        return 404, [], b"not found"

    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return {**BOT, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": True}  # fmt: skip

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_setMyCommands(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates:
            with trio.move_on_after(float(params.get("timeout") or 0)):
                while not self.updates:
                    await self.changes.wait()
        return self.updates[: int(params.get("limit") or 100)]

    def _check_text(self, params: dict[str, Any]) -> tuple[str, HttpResponse | None]:
        raw = str(params.get("text", ""))
        visible, error = raw, None
        if params.get("parse_mode") == "HTML":
            visible, error = parse_html(raw)
            if self.refuse_html > 0:
                self.refuse_html -= 1
                error = error or "can't find end of the entity starting at byte offset 0"
        if error:
            return visible, self._error(400, f"Bad Request: can't parse entities: {error}")
        if not visible.strip():
            return visible, self._error(400, "Bad Request: message text is empty")
        if utf16(visible) > 4096:
            return visible, self._error(400, "Bad Request: message is too long")
        return visible, None

    def _message_json(self, sent: Sent) -> dict[str, Any]:
        chat = {"id": sent.chat_id, "type": "private" if sent.chat_id > 0 else "supergroup"}
        if sent.chat_id < 0:
            chat["title"] = "Test group"
        return {"message_id": sent.message_id, "date": int(time.time()), "chat": chat,
                "from": BOT, "text": sent.text}  # fmt: skip

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        visible, error = self._check_text(params)
        if error:
            return error
        chat_id = int(params["chat_id"])
        sent = Sent(chat_id, next(self._message_ids), visible, params["text"],
                    params.get("parse_mode"))  # fmt: skip
        self.messages[(chat_id, sent.message_id)] = sent
        return self._message_json(sent)

    async def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        key = (int(params["chat_id"]), int(params["message_id"]))
        sent = self.messages.get(key)
        if sent is None:
            return self._error(400, "Bad Request: message to edit not found")
        visible, error = self._check_text(params)
        if error:
            return error
        if visible == sent.text and params["text"] == sent.raw:
            return self._error(400, "Bad Request: message is not modified: specified new "
                               "message content and reply markup are exactly the same")  # fmt: skip
        sent.text, sent.raw, sent.parse_mode = visible, params["text"], params.get("parse_mode")
        sent.edits += 1
        return self._message_json(sent)

    async def _api_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_answerInlineQuery(self, params: dict[str, Any]) -> Any:
        params["results"] = orjson.loads(params["results"])
        return True

    async def _api_getFile(self, params: dict[str, Any]) -> Any:
        found = self.files.get(str(params.get("file_id")))
        if found is None:
            return self._error(400, "Bad Request: invalid file_id")
        path, data = found
        return {"file_id": params["file_id"], "file_unique_id": "u" + str(params["file_id"]),
                "file_size": len(data), "file_path": path}  # fmt: skip
