"""The TUI's state and actions, on the Trio side of the trio-asyncio bridge.

:class:`TuiController` owns the :class:`~aleph.client.feed.SessionFeed` (the
protocol code `aleph chat` shares) and one :class:`SessionModel` per
session. It is the feed's listener: events update the models, and every
change calls `on_change` (the app then redraws, at most every 50 ms). Its
async actions (send, create, switch, cancel ...) are Trio functions the
Textual app awaits through ``trio_asyncio.trio_as_aio``.

What the user typed is never lost: :meth:`TuiController.send` puts it in an
outbox that is delivered in order, with an idempotency key, whenever the
feed is connected (again), and survives disconnections; a send the server
refuses for good comes back through `on_returned` for the input box.

Failures of actions become a :attr:`notice` for the status bar, never an
exception in the UI.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from aleph.client.connection import CallFailed
from aleph.client.feed import Disconnected, FeedState, LoginRefused, SessionFeed
from aleph.interfaces.tui.model import SessionModel

__all__ = ["Outgoing", "TuiController"]

log = logging.getLogger(__name__)

HISTORY_PAGE = 50
RATE_LIMITED = -32004


@attrs.define(eq=False)
class Outgoing:
    """A message typed by the user and not yet accepted by the gateway."""

    session_id: str
    text: str
    key: str = attrs.Factory(lambda: "tui-" + secrets.token_hex(8))


@attrs.define(eq=False)
class TuiController:
    """Sessions, outbox and connection status (see the module doc)."""

    url: str
    token: str | None
    on_change: Callable[[], None] = lambda: None
    on_returned: Callable[[str], None] = lambda text: None
    feed: SessionFeed = attrs.field(init=False)
    sessions: dict[str, SessionModel] = attrs.Factory(dict)
    current: str | None = None
    outbox: list[Outgoing] = attrs.Factory(list)
    state: FeedState = FeedState.CONNECTING
    state_detail: str = ""
    latency_s: float | None = None
    notice: str = ""
    list_interval: float = 15.0  # seconds between session.list polls
    _nursery: trio.Nursery | None = None
    _delivering: bool = False

    def __attrs_post_init__(self) -> None:
        self.feed = SessionFeed(self.url, self.token, self)

    # -- running ------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the feed until :meth:`aclose`; the caller's nursery owns this task."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._run_feed)
            nursery.start_soon(self._poll_sessions)
            task_status.started()

    async def _run_feed(self) -> None:
        with contextlib.suppress(LoginRefused):  # the banner says so; the app stays up
            await self.feed.run()

    async def aclose(self) -> None:
        await self.feed.aclose()

    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self.attempt, fn, *args)

    async def attempt(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run an action; a failure becomes the notice (and None), never an exception."""
        try:
            return await fn(*args)
        except Disconnected as exc:
            self._tell(f"not connected ({exc})")
        except CallFailed as exc:
            self._tell(_explain(exc))
        return None

    def _tell(self, notice: str) -> None:
        self.notice = notice
        self.on_change()

    # -- FeedListener -------------------------------------------------------

    def feed_state(self, state: FeedState, detail: str) -> None:
        self.state, self.state_detail = state, detail
        if state is FeedState.CONNECTED:
            self._spawn(self.refresh)
        self.on_change()

    def session_event(self, session_id: str, event: dict[str, Any]) -> None:
        model = self.sessions.get(session_id)
        if model is None:
            return
        news = model.apply(event, trio.current_time())
        if news and session_id != self.current:
            model.unread += 1
        self.on_change()

    def session_reset(self, session_id: str) -> None:
        model = self.sessions.get(session_id)
        if model is not None:
            model.reset()
            if session_id == self.current:
                self._spawn(self.load_latest, session_id)
        self.on_change()

    def session_gone(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        if self.current == session_id:
            self.current = next(iter(self.sessions), None)
            if self.current is not None:
                self._spawn(self.switch, self.current)
        self.on_change()

    def latency(self, seconds: float) -> None:
        self.latency_s = seconds
        self.on_change()

    # -- actions ------------------------------------------------------------

    async def refresh(self) -> None:
        """After every (re)connection: the session list, subscriptions, the outbox."""
        await self.sync_sessions()
        if self.current is None:
            if not self.sessions:
                await self.create()
            else:
                latest = max(self.sessions.values(), key=lambda m: m.updated_at)
                await self.switch(latest.session_id)
        elif not self.sessions[self.current].loaded:
            await self.load_latest(self.current)
        self.on_change()
        self._spawn(self._deliver)

    async def sync_sessions(self) -> None:
        """Take in session.list: new sessions are watched, those gone are dropped."""
        listed: dict[str, Any] = await self.feed.call("session.list")
        seen = set()
        for info in listed["sessions"]:
            session_id = str(info["session_id"])
            seen.add(session_id)
            model = self.sessions.setdefault(session_id, SessionModel(session_id))
            model.describe(info)
            await self.feed.watch(session_id)
        for session_id in [s for s in self.sessions if s not in seen]:
            self.feed.forget(session_id)
            self.session_gone(session_id)
        self.on_change()

    async def _poll_sessions(self) -> None:
        """Sessions made or deleted by other clients show up within list_interval."""
        while True:
            await trio.sleep(self.list_interval)
            if self.feed.state is FeedState.CONNECTED:
                await self.attempt(self.sync_sessions)

    async def create(self, title: str = "") -> str:
        result = await self.feed.create({"title": title} if title else {})
        session_id = str(result["session_id"])
        model = SessionModel(session_id, title=title, type=str(result.get("type", "owner")))
        model.updated_at = str(result.get("created_at", ""))
        model.loaded = True  # a new session has no history to load
        self.sessions[session_id] = model
        self.current = session_id
        self.on_change()
        return session_id

    async def switch(self, session_id: str) -> None:
        model = self.sessions[session_id]
        self.current, model.unread = session_id, 0
        self.on_change()
        if not model.loaded:
            await self.load_latest(session_id)

    async def load_latest(self, session_id: str) -> None:
        params = {"session_id": session_id, "limit": HISTORY_PAGE}
        page: dict[str, Any] = await self.feed.call("session.history", params)
        model = self.sessions.get(session_id)
        if model is not None:
            model.load_page(page["messages"], bool(page["has_more"]), older=False)
            self.on_change()

    async def load_older(self) -> int:
        """The page before the oldest loaded message; how many messages it added."""
        model = self.sessions.get(self.current or "")
        if model is None or not model.has_more or model.oldest_id is None:
            return 0
        params = {"session_id": model.session_id, "limit": HISTORY_PAGE, "before": model.oldest_id}
        page: dict[str, Any] = await self.feed.call("session.history", params)
        added = model.load_page(page["messages"], bool(page["has_more"]), older=True)
        self.on_change()
        return added

    async def delete(self) -> None:
        session_id = self.current
        if session_id is None:
            return
        await self.feed.call("session.delete", {"session_id": session_id})
        self.feed.forget(session_id)
        self.session_gone(session_id)
        if self.current is None:
            await self.create()

    async def clear(self) -> None:
        if self.current is not None:
            await self.feed.call("session.clear", {"session_id": self.current})

    async def cancel(self) -> bool:
        if self.current is None:
            return False
        result: dict[str, Any] = await self.feed.call(
            "session.cancel", {"session_id": self.current}
        )
        return bool(result.get("cancelled"))

    async def send(self, text: str) -> None:
        """Queue `text` for the current session; delivered whenever connected."""
        if self.current is None or not text.strip():
            return
        self.outbox.append(Outgoing(self.current, text))
        self.on_change()
        self._spawn(self._deliver)

    async def _deliver(self) -> None:
        """Send the outbox in order; stops while disconnected (refresh restarts it)."""
        if self._delivering:
            return
        self._delivering = True
        try:
            while self.outbox and self.feed.state is FeedState.CONNECTED:
                item = self.outbox[0]
                params = {"session_id": item.session_id, "text": item.text}
                try:
                    await self.feed.call("session.send", params | {"idempotency_key": item.key})
                except Disconnected:
                    return
                except CallFailed as exc:
                    self._tell(_explain(exc))
                    if exc.code == RATE_LIMITED:
                        retry_ms = (exc.data or {}).get("retry_after_ms", 1000)
                        await trio.sleep(retry_ms / 1000)
                        continue
                    self.outbox.pop(0)
                    self.on_returned(item.text)
                    continue
                self.outbox.pop(0)
                if self.notice.startswith("rate limited"):
                    self.notice = ""
                self.on_change()
        finally:
            self._delivering = False

    def pending(self, session_id: str) -> list[str]:
        """Texts typed in `session_id` and not yet accepted, oldest first."""
        return [item.text for item in self.outbox if item.session_id == session_id]


def _explain(exc: CallFailed) -> str:
    if exc.code == RATE_LIMITED:
        retry = (exc.data or {}).get("retry_after_ms", 0) / 1000
        return f"rate limited: retrying in {retry:.1f} s"
    return f"{exc.message} ({exc.code})"
