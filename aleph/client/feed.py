"""A connection to the gateway that reconnects by itself and resumes sessions.

:class:`SessionFeed` owns one :class:`~aleph.client.connection.GatewayClient`
at a time. :meth:`SessionFeed.run` connects, logs in, (re)subscribes every
watched session from where it stood (``after_seq`` + ``epoch``, judged by a
:class:`~aleph.client.stream.SessionCursor` each), hands the events on in
order with duplicates dropped, measures latency with ``system.ping``, and
when the socket drops waits a bounded backoff and does it all again.

What the owner of the feed sees goes through a :class:`FeedListener`:
connection state changes, each new event, and ``session_reset`` when a
session's events could not be resumed (``-32010``, or a gap): the listener
then reloads ``session.history``. Calls made while disconnected fail at once
with :class:`Disconnected`; a refused login stops the feed with
:class:`LoginRefused`.

Shared by `aleph chat` and the TUI; the TUI drives it from Textual through
trio-asyncio.
"""

from __future__ import annotations

import enum
import logging
import math
from typing import Any, Protocol

import attrs
import trio
import trio_websocket

from aleph.client.connection import CallFailed, GatewayClient, connect
from aleph.client.stream import RESUME_GAP, SessionCursor, Verdict

__all__ = ["Disconnected", "FeedListener", "FeedState", "LoginRefused", "SessionFeed"]

log = logging.getLogger(__name__)

NOT_FOUND = -32003
NOT_AUTHENTICATED = -32001
FORBIDDEN = -32002


class Disconnected(Exception):
    """The feed has no connection right now (or lost it during the call)."""


class LoginRefused(Exception):
    """The gateway refused the token: retrying would not help."""


_DROPPED = (
    OSError,
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    Disconnected,
    CallFailed,
)


class FeedState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    FAILED = "failed"


class FeedListener(Protocol):
    """What the feed tells its owner; called from the feed's Trio tasks, never blocking."""

    def feed_state(self, state: FeedState, detail: str) -> None: ...

    def session_event(self, session_id: str, event: dict[str, Any]) -> None: ...

    def session_reset(self, session_id: str) -> None: ...

    def session_gone(self, session_id: str) -> None: ...

    def latency(self, seconds: float) -> None: ...


@attrs.define(eq=False)
class SessionFeed:
    """A self-healing connection with the sessions it watches (see module doc)."""

    url: str
    token: str | None
    listener: FeedListener
    ping_interval: float = 5.0
    backoff_min: float = 0.1
    backoff_max: float = 5.0
    call_timeout: float = 30.0
    cursors: dict[str, SessionCursor] = attrs.Factory(dict)
    state: FeedState = FeedState.CONNECTING
    client: GatewayClient | None = None
    attempts: int = 0  # connections tried since the last one that worked
    connections: int = 0  # connections made, for tests and the status bar
    closing: bool = False
    _changed: trio.Event = attrs.Factory(trio.Event)
    _wake_backoff: trio.Event = attrs.Factory(trio.Event)

    # -- for the owner ------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call on the current connection; Disconnected if there is none or it drops."""
        client = self.client
        if client is None:
            raise Disconnected(self.state.value)
        try:
            with trio.fail_after(self.call_timeout):
                return await client.call(method, params)
        except (trio_websocket.ConnectionClosed, trio.ClosedResourceError) as exc:
            raise Disconnected("connection lost") from exc
        except trio.TooSlowError as exc:
            raise Disconnected(f"{method}: no answer in {self.call_timeout:g} s") from exc

    async def create(self, params: dict[str, Any]) -> dict[str, Any]:
        """session.create, watching the new session from its first event."""
        result: dict[str, Any] = await self.call("session.create", params)
        cursor = SessionCursor(result["session_id"])
        cursor.created()
        self.cursors[cursor.session_id] = cursor
        return result

    async def watch(self, session_id: str) -> None:
        """Subscribe to a session (if not yet watched), now and after every reconnect."""
        if session_id in self.cursors:
            return
        self.cursors[session_id] = SessionCursor(session_id)
        if self.client is not None:
            await self._subscribe(self.cursors[session_id])

    def forget(self, session_id: str) -> None:
        """Stop following a session (deleted); its events are dropped from now on."""
        self.cursors.pop(session_id, None)

    async def aclose(self) -> None:
        """Close the connection and end :meth:`run` (no reconnect)."""
        self.closing = True
        self._wake_backoff.set()
        if self.client is not None:
            with trio.move_on_after(2):
                await self.client.ws.aclose()

    async def wait_state(self, state: FeedState) -> None:
        """Return once the feed is in `state` (for tests and start-up)."""
        while self.state is not state:
            await self._changed.wait()

    # -- the connection loop ------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve, reconnect, until :meth:`aclose` (LoginRefused ends it too)."""
        task_status.started()
        while not self.closing:
            self._set_state(FeedState.CONNECTING, self.url)
            detail, refused = "connection closed", None
            try:
                await self._serve_one()
            except* LoginRefused as group:
                refused = group.exceptions[0]
            except* _DROPPED as group:
                detail = _describe(group.exceptions[0])
            if refused is not None:
                self._set_state(FeedState.FAILED, str(refused))
                raise refused
            self.client = None
            self._set_state(FeedState.DISCONNECTED, detail)
            self.attempts += 1
            with trio.move_on_after(self._backoff()):
                await self._wake_backoff.wait()

    def reconnect_now(self) -> None:
        """Cut the current backoff short (the user asked to retry)."""
        self._wake_backoff.set()
        self._wake_backoff = trio.Event()

    def _backoff(self) -> float:
        return float(min(self.backoff_max, self.backoff_min * math.pow(2, self.attempts - 1)))

    async def _serve_one(self) -> None:
        try:
            async with connect(self.url) as client:
                if self.token is not None:
                    try:
                        await client.login(self.token)
                    except CallFailed as exc:
                        if exc.code == NOT_AUTHENTICATED:
                            raise LoginRefused(exc.message) from None
                        raise
                self.client = client
                for cursor in list(self.cursors.values()):
                    await self._subscribe(cursor)
                self.attempts = 0
                self.connections += 1
                self._set_state(FeedState.CONNECTED, self.url)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._ping, nursery.cancel_scope)
                    await self._read(client)
                    nursery.cancel_scope.cancel()
        finally:
            self.client = None

    async def _subscribe(self, cursor: SessionCursor) -> None:
        """(Re)subscribe one session; on a resume gap, reset it and start afresh."""
        try:
            result = await self.call("session.subscribe", cursor.subscribe_params())
        except CallFailed as exc:
            if exc.code == RESUME_GAP:
                self._reset(cursor)
                result = await self.call("session.subscribe", cursor.subscribe_params())
            elif exc.code in (NOT_FOUND, FORBIDDEN):
                self.forget(cursor.session_id)
                self.listener.session_gone(cursor.session_id)
                return
            else:
                raise
        if self.cursors.get(cursor.session_id) is cursor:
            cursor.subscribed(result)

    def _reset(self, cursor: SessionCursor) -> None:
        cursor.reset()
        self.listener.session_reset(cursor.session_id)

    async def _read(self, client: GatewayClient) -> None:
        async for message in client.notifications:
            if message.get("method") != "session.event":
                continue
            event = message.get("params") or {}
            cursor = self.cursors.get(str(event.get("session_id")))
            if cursor is None:
                continue
            verdict = cursor.accept(event)
            if verdict is Verdict.NEW:
                self.listener.session_event(cursor.session_id, event)
            elif verdict is Verdict.GAP:
                log.info("gap in %s's events: reloading", cursor.session_id)
                self._reset(cursor)
                client.nursery.start_soon(self._subscribe, cursor)

    async def _ping(self, scope: trio.CancelScope) -> None:
        """system.ping every ping_interval; reports the round trip."""
        while True:
            started = trio.current_time()
            try:
                await self.call("system.ping")
            except Disconnected:
                scope.cancel()
                return
            self.listener.latency(trio.current_time() - started)
            await trio.sleep(self.ping_interval)

    def _set_state(self, state: FeedState, detail: str) -> None:
        self.state = state
        self._changed.set()
        self._changed = trio.Event()
        self.listener.feed_state(state, detail)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio_websocket.ConnectionClosed):
        reason = exc.reason
        return f"closed ({reason.code} {reason.reason or ''})".strip() if reason else "closed"
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return f"refused (HTTP {exc.status_code})"
    return str(exc) or type(exc).__name__
