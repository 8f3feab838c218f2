"""A fake Discord (REST API and gateway) on 127.0.0.1 that speaks the wire format.

Point discord.py at it with ``discord.http.Route.BASE = peer.api_base`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(peer.gateway_url)``
(:meth:`DiscordPeer.patch_discord`).

Gateway (trio-websocket, JSON text frames, no compression): HELLO, heartbeat
and ACK, IDENTIFY -> READY then GUILD_CREATE, RESUME -> RESUMED with the
missed events replayed; :meth:`dispatch` sends an event to the bot and
:meth:`reconnect` sends op 7 RECONNECT, which makes the bot disconnect and
resume. REST: users/@me, oauth2/applications/@me (a wrong token gets 401),
the application's command overwrite, channel messages (create and edit),
typing, interaction callbacks and the interaction webhook (original response
and follow-ups), and attachment downloads. :meth:`limit_next` answers the
next REST call of a route with a 429 that the library must honour.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import attrs
import orjson
import trio
import trio_websocket

from tests.peers.bot_http import Changes, HttpRequest, HttpResponse, json_response, serve_http

__all__ = ["APP_ID", "BOT_ID", "CHANNEL_ID", "DM_CHANNEL_ID", "GUILD_ID", "DiscordPeer"]

TOKEN = "discord-test-token"
BOT_ID, APP_ID, GUILD_ID, CHANNEL_ID, DM_CHANNEL_ID = 9000, 9001, 5000, 5001, 6000
BOT = {"id": str(BOT_ID), "username": "aleph", "discriminator": "0", "global_name": "Aleph",
       "avatar": None, "bot": True}  # fmt: skip


def user(user_id: int = 42, name: str = "alice") -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0",
            "global_name": name.title(), "avatar": None}  # fmt: skip


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@attrs.frozen
class RestCall:
    method: str
    path: str
    body: Any
    at: float


@attrs.define(eq=False)
class DiscordPeer:
    token: str = TOKEN
    port: int = 0
    gateway_port: int = 0
    calls: list[RestCall] = attrs.Factory(list)
    messages: dict[str, dict[str, Any]] = attrs.Factory(dict)  # id -> message
    edits: list[tuple[str, float]] = attrs.Factory(list)  # (message id, time)
    files: dict[str, bytes] = attrs.Factory(dict)
    originals: dict[str, dict[str, Any]] = attrs.Factory(dict)  # interaction token -> message
    identifies: int = 0
    resumes: int = 0
    heartbeats: int = 0
    limited: dict[str, float] = attrs.Factory(dict)  # "METHOD path-prefix" -> retry_after
    _seq: int = 0
    _events: list[dict[str, Any]] = attrs.Factory(list)
    _ws: trio_websocket.WebSocketConnection | None = None
    _ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(100_000))
    changes: Changes = attrs.Factory(Changes)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}/"

    def patch_discord(self) -> Callable[[], None]:
        """Point discord.py at this peer; returns the function that undoes it."""
        import discord.gateway
        import discord.http
        import yarl

        old = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

        def undo() -> None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old

        return undo

    async def serve(
        self, *, task_status: trio.TaskStatus[DiscordPeer] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            self.port = await nursery.start(serve_http, self._rest)
            server = await nursery.start(
                trio_websocket.serve_websocket, self._gateway, "127.0.0.1", 0, None
            )
            self.gateway_port = server.port
            task_status.started(self)

    # -- what tests do -------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], Any], limit: float = 10.0) -> Any:
        """Wait (bounded) until predicate() is truthy; returns its value."""
        return await self.changes.wait_for(predicate, limit)

    def channel_messages(self, channel_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["channel_id"] == str(channel_id)]

    def rest_calls(self, method: str, contains: str) -> list[RestCall]:
        return [c for c in self.calls if c.method == method and contains in c.path]

    def limit_next(self, method: str, path_part: str, retry_after: float) -> None:
        self.limited[f"{method} {path_part}"] = retry_after

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a dispatch event (kept for a resume) to the connected bot."""
        self._seq += 1
        frame = {"op": 0, "t": event, "s": self._seq, "d": data}
        self._events.append(frame)
        if self._ws is not None:
            await self._ws.send_message(orjson.dumps(frame).decode())

    async def reconnect(self) -> None:
        """Op 7: the bot must drop the connection and resume its session."""
        assert self._ws is not None
        await self._ws.send_message(orjson.dumps({"op": 7, "d": None}).decode())

    def message_payload(
        self,
        content: str,
        *,
        guild: bool = False,
        user_id: int = 42,
        mention: bool = False,
        attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        message_id = str(next(self._ids))
        payload: dict[str, Any] = {
            "id": message_id, "type": 0, "content": content, "author": user(user_id),
            "channel_id": str(CHANNEL_ID if guild else DM_CHANNEL_ID), "timestamp": now_iso(),
            "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": [BOT] if mention else [], "mention_roles": [], "attachments": [],
            "embeds": [], "pinned": False, "flags": 0,
        }  # fmt: skip
        if guild:
            payload["guild_id"] = str(GUILD_ID)
            payload["member"] = {
                "roles": [],
                "joined_at": now_iso(),
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        for index, (name, mime, data) in enumerate(attachments):
            file_id = f"{message_id}{index}"
            self.files[f"{file_id}/{name}"] = data
            url = f"http://127.0.0.1:{self.port}/attachments/{file_id}/{name}"
            payload["attachments"].append(
                {"id": file_id, "filename": name, "size": len(data), "url": url,
                 "proxy_url": url, "content_type": mime}
            )  # fmt: skip
        return payload

    def interaction_payload(
        self, name: str, options: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return {
            "id": str(next(self._ids)), "application_id": str(APP_ID), "type": 2,
            "data": {"id": "1", "name": name, "type": 1,
                     "options": [{"name": k, "type": 3, "value": v}
                                 for k, v in (options or {}).items()]},
            "channel_id": str(DM_CHANNEL_ID), "channel": {"id": str(DM_CHANNEL_ID), "type": 1},
            "user": user(), "token": f"itoken{next(self._ids)}", "version": 1,
            "locale": "en-US", "app_permissions": "0", "entitlements": [],
            "authorizing_integration_owners": {}, "context": 1, "attachment_size_limit": 10485760,
        }  # fmt: skip

    # -- gateway -------------------------------------------------------------

    async def _send(self, ws: trio_websocket.WebSocketConnection, frame: dict[str, Any]) -> None:
        await ws.send_message(orjson.dumps(frame).decode())

    async def _gateway(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await self._send(ws, {"op": 10, "d": {"heartbeat_interval": 41250}})
            while True:
                message = orjson.loads(await ws.get_message())
                await self._gateway_op(ws, message)
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            if self._ws is ws:
                self._ws = None
            self.changes.notify()

    async def _gateway_op(self, ws: trio_websocket.WebSocketConnection, message: Any) -> None:
        op, data = message.get("op"), message.get("d")
        if op == 1:
            self.heartbeats += 1
            await self._send(ws, {"op": 11})
        elif op == 2:
            if data.get("token") != self.token:
                await ws.aclose(4004, "Authentication failed.")
                return
            self.identifies += 1
            self._ws = ws
            await self.dispatch("READY", {
                "v": 10, "user": BOT, "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
                "session_id": "session-1", "resume_gateway_url": self.gateway_url,
                "application": {"id": str(APP_ID), "flags": 0}, "private_channels": [],
            })  # fmt: skip
            await self.dispatch("GUILD_CREATE", self._guild())
        elif op == 6:
            self.resumes += 1
            self._ws = ws
            for frame in self._events:
                if frame["s"] > int(data.get("seq") or 0):
                    await self._send(ws, frame)
            self._seq += 1
            await self._send(ws, {"op": 0, "t": "RESUMED", "s": self._seq, "d": {}})
        self.changes.notify()

    def _guild(self) -> dict[str, Any]:
        return {
            "id": str(GUILD_ID), "name": "Test guild", "icon": None, "owner_id": "42",
            "roles": [{"id": str(GUILD_ID), "name": "@everyone", "permissions": "1071698660929",
                       "position": 0, "color": 0, "hoist": False, "managed": False,
                       "mentionable": False, "flags": 0}],
            "emojis": [], "stickers": [], "features": [], "member_count": 2,
            "members": [{"user": BOT, "roles": [], "joined_at": now_iso(), "deaf": False,
                         "flags": 0, "mute": False}],
            "channels": [{"id": str(CHANNEL_ID), "type": 0, "name": "general", "position": 0,
                          "permission_overwrites": [], "guild_id": str(GUILD_ID)}],
            "threads": [], "presences": [], "voice_states": [], "large": False,
            "unavailable": False, "joined_at": now_iso(), "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0,
            "system_channel_flags": 0, "premium_tier": 0, "nsfw_level": 0,
            "preferred_locale": "en-US", "afk_timeout": 300,
        }  # fmt: skip

    # -- REST ----------------------------------------------------------------

    async def _rest(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/attachments/"):
            data = self.files.get(request.path.removeprefix("/attachments/"))
            return (
                (200, [("content-type", "application/octet-stream")], data)
                if data
                else (404, [], b"")
            )
        path = request.path.removeprefix("/api/v10")
        auth = request.headers.get("authorization", "")
        webhook = path.startswith(("/webhooks/", "/interactions/"))
        if not webhook and auth != f"Bot {self.token}":
            return json_response(401, {"message": "401: Unauthorized", "code": 0})  # type: ignore[no-any-return]
        self.calls.append(RestCall(request.method, path, request.body, trio.current_time()))
        self.changes.notify()
        for key, retry_after in list(self.limited.items()):
            method, _, part = key.partition(" ")
            if method == request.method and part in path:
                del self.limited[key]
                body = {"message": "You are being rate limited.", "retry_after": retry_after,
                        "global": False}  # fmt: skip
                # discord.py treats a 429 without "Via" as a Cloudflare ban and gives up.
                headers = [("retry-after", str(retry_after)), ("x-ratelimit-scope", "user"),
                           ("via", "1.1 google")]  # fmt: skip
                return json_response(429, body, headers)  # type: ignore[no-any-return]
        return await self._route(request.method, path, request)

    def _message(self, channel_id: str, content: str, **extra: Any) -> dict[str, Any]:
        message = {
            "id": str(next(self._ids)), "type": 0, "channel_id": channel_id, "content": content,
            "author": BOT, "timestamp": now_iso(), "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [],
            "embeds": [], "pinned": False, "flags": 0, **extra,
        }  # fmt: skip
        self.messages[message["id"]] = message
        return message

    def _edit(self, message_id: str, body: Any) -> HttpResponse:
        message = self.messages.get(message_id)
        if message is None:
            return json_response(404, {"message": "Unknown Message", "code": 10008})  # type: ignore[no-any-return]
        content = str(body.get("content", message["content"]))
        if len(content) > 2000:
            return json_response(400, {"message": "Invalid Form Body", "code": 50035})  # type: ignore[no-any-return]
        message["content"], message["edited_timestamp"] = content, now_iso()
        self.edits.append((message_id, trio.current_time()))
        return json_response(200, message)  # type: ignore[no-any-return]

    async def _route(self, method: str, path: str, request: HttpRequest) -> HttpResponse:
        parts = path.strip("/").split("/")
        body = request.body if isinstance(request.body, dict) else {}
        ok: Callable[[Any], HttpResponse] = lambda value: json_response(200, value)  # noqa: E731
        if (method, path) == ("GET", "/users/@me"):
            return ok(BOT)
        if (method, path) == ("GET", "/oauth2/applications/@me"):
            return ok({"id": str(APP_ID), "name": "Aleph", "icon": None, "description": "",
                       "bot_public": True, "bot_require_code_grant": False, "owner": user(),
                       "verify_key": "00", "flags": 0, "team": None, "summary": ""})  # fmt: skip
        if method == "PUT" and parts[:1] == ["applications"] and parts[-1] == "commands":
            commands = request.body if isinstance(request.body, list) else []
            return ok([{**c, "id": str(next(self._ids)), "application_id": str(APP_ID),
                        "version": "1", "type": c.get("type", 1)} for c in commands])  # fmt: skip
        if parts[:1] == ["channels"] and parts[2:3] == ["messages"]:
            if method == "POST" and len(parts) == 3:
                content = str(body.get("content", ""))
                if len(content) > 2000:
                    return json_response(400, {"message": "Invalid Form Body", "code": 50035})  # type: ignore[no-any-return]
                return ok(self._message(parts[1], content))
            if method == "PATCH" and len(parts) == 4:
                return self._edit(parts[3], body)
        if parts[:1] == ["channels"] and parts[2:3] == ["typing"]:
            return 204, [], b""
        if parts[:1] == ["interactions"] and parts[-1] == "callback":
            response = {"interaction": {"id": parts[1], "type": 2,
                                        "response_message_loading": True},
                        "resource": {"type": body.get("type", 5)}}  # fmt: skip
            return ok(response)
        if parts[:1] == ["webhooks"] and len(parts) >= 3:
            token = parts[2]
            if method == "PATCH" and parts[-1] == "@original":
                original = self.originals.get(token)
                if original is None:
                    original = self._message(str(DM_CHANNEL_ID), "", interaction_token=token)
                    self.originals[token] = original
                return self._edit(original["id"], body)
            if method == "PATCH" and len(parts) == 5:
                return self._edit(parts[4], body)
            if method == "POST" and len(parts) == 3:
                return ok(self._message(str(DM_CHANNEL_ID), str(body.get("content", "")),
                                        interaction_token=token))  # fmt: skip
        return json_response(404, {"message": f"no route {method} {path}", "code": 0})  # type: ignore[no-any-return]
