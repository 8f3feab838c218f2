"""`aleph chat`: talk to the daemon from a terminal.

:class:`ChatApp` owns a :class:`~aleph.client.feed.SessionFeed` (which
reconnects and resumes by itself when the daemon restarts) and one current
session. It reads a line, sends it (with an idempotency key, retried once
the feed is back if the connection dropped), and streams the answer as it
arrives while no prompt is shown. Events of the current session from other
clients are shown too. Ctrl-C while an answer streams cancels that run; at
the prompt it clears the line; /quit or Ctrl-D leaves.

Failures: a refused token ends the chat with exit code 77 (EX_NOPERM); a
daemon that cannot be reached is retried until the user quits.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
from typing import Any

import attrs
import trio

from aleph.chat.terminal import INTERRUPTED, LinePrompt, write
from aleph.client.connection import CallFailed
from aleph.client.feed import Disconnected, FeedState, LoginRefused, SessionFeed

__all__ = ["ChatApp"]

log = logging.getLogger(__name__)

EX_NOPERM = 77
SEND_PATIENCE = 120.0  # seconds a message waits for the connection to come back
HELP = """commands:
  /new [title]      start a new session
  /sessions         list your sessions
  /switch N|ID      continue another session (number from /sessions, or its id)
  /history [N]      show the last N messages (default 20)
  /clear            forget this session's messages
  /cancel           stop the answer being written
  /quit             leave (Ctrl-D too); Ctrl-C stops a running answer
"""
TERMINAL = ("run.finished", "run.failed", "run.cancelled")


@attrs.define(eq=False)
class ChatApp:
    url: str
    token: str | None
    prompt: LinePrompt
    session_id: str | None = None
    feed: SessionFeed = attrs.field(init=False)
    listed: list[str] = attrs.Factory(list)  # ids from the last /sessions, for /switch N
    waiting_run: str | None = None  # the run whose answer we are showing
    run_done: trio.Event = attrs.Factory(trio.Event)
    sending_text: str | None = None
    mid_line: bool = False
    refused: str | None = None
    down: bool = False  # the loss of the connection was announced

    def __attrs_post_init__(self) -> None:
        self.feed = SessionFeed(self.url, self.token, self)

    # -- FeedListener --------------------------------------------------------

    def feed_state(self, state: FeedState, detail: str) -> None:
        if state is FeedState.CONNECTED:
            self._line(f"[connected to {detail}]")
            self.down = False
        elif state is FeedState.DISCONNECTED and not self.down:
            self._line(f"[disconnected: {detail}; reconnecting]")
            self.down = True

    def session_event(self, session_id: str, event: dict[str, Any]) -> None:
        if session_id != self.session_id:
            return
        kind, data = event.get("type"), event.get("data") or {}
        if kind == "message.user":
            if data.get("text") != self.sending_text:
                self._line(f"[another client] {data.get('text', '')}")
        elif kind == "run.delta":
            write(str(data.get("text", "")))
            self.mid_line = True
        elif kind == "tool.started":
            self._line(f"[tool {data.get('name')} ...]")
        elif kind == "tool.finished":
            self._line(f"[tool {'failed' if 'error' in data else 'done'}]")
        elif kind == "session.cleared":
            self._line(f"[session cleared: {data.get('cleared', 0)} messages]")
        elif kind in TERMINAL:
            if kind == "run.failed":
                error = data.get("error") or {}
                self._line(f"[failed: {error.get('message', 'unknown error')}]")
            elif kind == "run.cancelled":
                self._line("[cancelled]")
            else:
                self._end_line()
            if event.get("run_id") == self.waiting_run:
                self.run_done.set()

    def session_reset(self, session_id: str) -> None:
        if session_id == self.session_id:
            self._line("[some events were lost (daemon restarted); see /history]")
            self.run_done.set()

    def session_gone(self, session_id: str) -> None:
        if session_id == self.session_id:
            self._line("[this session no longer exists: /new or /switch]")
            self.session_id = None
            self.run_done.set()

    def latency(self, seconds: float) -> None:
        pass

    # -- output --------------------------------------------------------------

    def _end_line(self) -> None:
        if self.mid_line:
            write("\n")
            self.mid_line = False

    def _line(self, text: str) -> None:
        self._end_line()
        write(text + "\n")

    # -- the loop ------------------------------------------------------------

    async def run(self) -> int:
        """Chat until /quit or end of input; the exit code."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._run_feed, nursery.cancel_scope)
            nursery.start_soon(self._watch_interrupts)
            self._line(f"aleph chat: connecting to {self.url} ... (/help for commands)")
            await self._ready()
            with self.prompt.output_context():
                while self.refused is None:
                    line = await self.prompt.read()
                    if line is None or line.strip() in ("/quit", "/exit"):
                        break
                    await self._handle(line)
            await self.feed.aclose()
            nursery.cancel_scope.cancel()
        if self.refused is not None:
            self._line(f"aleph chat: login refused ({self.refused}); check the token")
            return EX_NOPERM
        return 0

    async def _run_feed(self, scope: trio.CancelScope) -> None:
        try:
            await self.feed.run()
        except* LoginRefused as group:
            self.refused = str(group.exceptions[0])
            scope.cancel()

    async def _watch_interrupts(self) -> None:
        """Ctrl-C while an answer streams (no prompt shown): cancel that run."""
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                if self.waiting_run is not None:
                    self._line("^C")
                    await self._cancel()
                else:
                    self._line("(/quit to leave)")

    async def _ready(self) -> None:
        """Wait for the first connection, then pick or create a session."""
        await self.feed.wait_state(FeedState.CONNECTED)
        if self.session_id is not None:
            await self._attach(self.session_id)
            return
        sessions = (await self.feed.call("session.list", {}))["sessions"]
        if sessions:
            latest = max(sessions, key=lambda s: s["updated_at"])
            await self._attach(latest["session_id"])
        else:
            await self._new("")

    async def _handle(self, line: str) -> None:
        try:
            if line == INTERRUPTED:
                if self.waiting_run is None:
                    self._line("(/quit to leave)")
                return
            text = line.strip()
            if not text:
                return
            if text.startswith("/"):
                await self._command(text)
            else:
                await self._send(line)
        except Disconnected as exc:
            self._line(f"[not connected ({exc}); try again in a moment]")
        except CallFailed as exc:
            self._line(f"[error {exc.code}: {exc.message}]")

    async def _command(self, text: str) -> None:
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        if name == "/help":
            write(HELP)
        elif name == "/new":
            await self._new(arg)
        elif name == "/sessions":
            await self._list()
        elif name == "/switch":
            await self._switch(arg)
        elif name == "/history":
            await self._history(int(arg) if arg.isdigit() else 20)
        elif name == "/clear":
            result = await self.feed.call("session.clear", {"session_id": self._current()})
            self._line(f"[cleared {result['cleared']} messages]")
        elif name == "/cancel":
            await self._cancel()
        else:
            self._line(f"unknown command {name}; /help lists them")

    def _current(self) -> str:
        if self.session_id is None:
            raise Disconnected("no session: /new or /switch")
        return self.session_id

    async def _new(self, title: str) -> None:
        result = await self.feed.create({"title": title} if title else {})
        self._leave()
        self.session_id = result["session_id"]
        self._line(f"[new session {self.session_id}]")

    def _leave(self) -> None:
        if self.session_id is not None:
            self.feed.forget(self.session_id)

    async def _attach(self, session_id: str) -> None:
        if session_id != self.session_id:
            self._leave()
            if self.session_id is not None:
                with contextlib.suppress(CallFailed, Disconnected):
                    await self.feed.call("session.unsubscribe", {"session_id": self.session_id})
        self.session_id = session_id
        await self.feed.watch(session_id)
        self._line(f"[session {session_id}]")
        await self._history(6)

    async def _list(self) -> None:
        sessions = (await self.feed.call("session.list", {}))["sessions"]
        self.listed = [s["session_id"] for s in sessions]
        if not sessions:
            self._line("no sessions yet")
        for number, s in enumerate(sessions, 1):
            mark = "*" if s["session_id"] == self.session_id else " "
            title = s["title"] or "(untitled)"
            self._line(
                f"{mark}{number:3d}  {s['session_id']}  {title}  "
                f"{s['message_count']} messages, {s['updated_at']}"
            )

    async def _switch(self, arg: str) -> None:
        if arg.isdigit() and 1 <= int(arg) <= len(self.listed):
            arg = self.listed[int(arg) - 1]
        if not arg:
            self._line("usage: /switch N|ID (see /sessions)")
            return
        await self._attach(arg)

    async def _history(self, limit: int) -> None:
        params = {"session_id": self._current(), "limit": max(1, min(limit, 500))}
        page = await self.feed.call("session.history", params)
        for message in page["messages"]:
            who = {"user": "you", "assistant": "aleph", "tool": "tool"}.get(message["role"], "?")
            self._line(f"[{who}] {message['text']}")

    async def _cancel(self) -> None:
        if self.session_id is None:
            return
        params: dict[str, Any] = {"session_id": self.session_id}
        if self.waiting_run is not None:
            params["run_id"] = self.waiting_run
        try:
            result = await self.feed.call("session.cancel", params)
        except (Disconnected, CallFailed) as exc:
            self._line(f"[could not cancel: {exc}]")
            self.run_done.set()  # stop waiting for an answer we cannot stop
            return
        if not result.get("cancelled"):
            self._line("[nothing to cancel]")

    async def _send(self, text: str) -> None:
        """Send (retrying across a reconnect with the same key) and show the answer."""
        params = {
            "session_id": self._current(),
            "text": text,
            "idempotency_key": "chat-" + secrets.token_hex(8),
        }
        self.run_done = trio.Event()
        self.sending_text = text
        result: dict[str, Any] | None = None
        try:
            with trio.move_on_after(SEND_PATIENCE):
                while result is None:
                    try:
                        result = await self.feed.call("session.send", params)
                    except Disconnected:
                        await self.feed.wait_state(FeedState.CONNECTED)
            if result is None:
                raise Disconnected(f"the daemon did not come back within {SEND_PATIENCE:g} s")
            self.waiting_run = result["run_id"]
            await self.run_done.wait()
        finally:
            self.waiting_run = None
            self.sending_text = None
            self._end_line()
