"""`aleph tui`: the Textual app, its panes, key bindings and redraw loop.

:class:`AlephTui` only draws and dispatches: the state and the protocol
live in :class:`~aleph.interfaces.tui.controller.TuiController` (Trio),
whose actions the app awaits through ``trio_asyncio.trio_as_aio``. The
controller calls :meth:`AlephTui.request_draw` on every change; the app
redraws at most every :data:`FRAME` seconds, so a fast stream of tokens
costs one transcript append per frame (see
:mod:`aleph.interfaces.tui.transcript`).

Runs inside ``trio_asyncio.open_loop()``: see :mod:`aleph.interfaces.tui.run`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import trio
import trio_asyncio  # type: ignore[import-untyped]
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Footer, OptionList

from aleph.interfaces.tui.controller import TuiController
from aleph.interfaces.tui.screens import ConfirmScreen, HelpScreen
from aleph.interfaces.tui.styles import STYLES
from aleph.interfaces.tui.transcript import TranscriptView
from aleph.interfaces.tui.widgets import Banner, HistoryInput, SessionsPane, StatusBar, ToolPane

__all__ = ["FRAME", "AlephTui"]

FRAME = 0.05  # seconds between redraws at most


class AlephTui(App[None]):
    """Sessions | transcript + input | tools, a status bar and a footer of keys."""

    CSS = STYLES
    TITLE = "Aleph"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "new_session", "New session"),
        Binding("escape", "cancel_run", "Cancel run"),
        Binding("ctrl+l", "clear", "Clear"),
        Binding("f8", "delete", "Delete"),
        Binding("ctrl+o", "load_older", "Older", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("ctrl+up", "switch(-1)", "Previous session", show=False),
        Binding("ctrl+down", "switch(1)", "Next session", show=False),
        Binding("ctrl+r", "reconnect", "Reconnect", show=False),
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    class Changed(Message):
        """The controller's state changed: redraw soon."""

    def __init__(self, controller: TuiController) -> None:
        super().__init__()
        self.controller = controller
        self.draws = 0
        self.drawn = asyncio.Event()  # set after each redraw; tests wait on it
        self._draw_wanted = False
        self._last_draw = 0.0
        self._drawing = asyncio.Lock()
        self._loading_older = False

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        with Horizontal(id="main"):
            yield SessionsPane(id="sessions")
            with Vertical(id="centre"):
                yield TranscriptView(id="transcript")
                yield HistoryInput(placeholder="Message (enter to send, f1 for help)", id="input")
            with VerticalScroll(id="tools-box"):
                yield ToolPane(id="tools")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sessions").border_title = "Sessions"
        self.query_one("#transcript").border_title = "Transcript"
        self.query_one("#tools-box").border_title = "Tools"
        self.controller.on_change = self.request_draw
        self.controller.on_returned = self.query_one(HistoryInput).give_back
        self.query_one(HistoryInput).focus()
        self.request_draw()

    # -- drawing ------------------------------------------------------------

    def request_draw(self) -> None:
        """Ask for a redraw (cheap, callable from Trio tasks; coalesced)."""
        if not self._draw_wanted:
            self._draw_wanted = True
            self.post_message(self.Changed())

    async def on_aleph_tui_changed(self, message: Changed) -> None:
        wait = self._last_draw + FRAME - time.monotonic()
        if wait > 0:
            self.set_timer(wait, self.draw)
        else:
            await self.draw()

    async def draw(self) -> None:
        """Redraw every pane from the controller's state."""
        async with self._drawing:
            self._draw_wanted = False
            self._last_draw = time.monotonic()
            try:
                behind = await self._draw_panes()
            except NoMatches:
                return  # starting, or closing with its widgets gone: nothing to draw on
            self.draws += 1
            self.drawn.set()
            self.drawn = asyncio.Event()
            if behind:
                self.request_draw()  # the rest of a burst of text, next frame

    async def _draw_panes(self) -> bool:
        """Draw; True if the transcript has more streamed text to show."""
        c = self.controller
        model = c.sessions.get(c.current or "")
        self.query_one(Banner).show(c.state, c.state_detail, c.feed.attempts)
        self.query_one(SessionsPane).show(list(c.sessions.values()), c.current)
        pending = c.pending(c.current) if c.current else []
        transcript = self.query_one(TranscriptView)
        await transcript.sync(model, pending)
        self.query_one(ToolPane).show(model)
        rate = model.rate(trio.current_time()) if model is not None else None
        self.query_one(StatusBar).show(c.state, c.latency_s, rate, c.notice, len(c.outbox))
        self.sub_title = model.label if model is not None else ""
        return transcript.behind

    # -- actions ------------------------------------------------------------

    async def _act(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run a controller action (a Trio function); failures become a notice."""
        return await trio_asyncio.trio_as_aio(self.controller.attempt)(fn, *args)

    async def on_history_input_sent(self, message: HistoryInput.Sent) -> None:
        await self._act(self.controller.send, message.text)

    async def on_option_list_option_selected(self, message: OptionList.OptionSelected) -> None:
        if message.option.id is not None:
            await self._act(self.controller.switch, message.option.id)
            self.query_one(HistoryInput).focus()

    async def action_new_session(self) -> None:
        await self._act(self.controller.create)
        self.query_one(HistoryInput).focus()

    async def action_cancel_run(self) -> None:
        await self._act(self.controller.cancel)

    async def action_clear(self) -> None:
        await self._act(self.controller.clear)

    async def action_delete(self) -> None:
        model = self.controller.sessions.get(self.controller.current or "")
        if model is None:
            return

        async def answered(yes: bool | None) -> None:
            if yes:
                await self._act(self.controller.delete)

        await self.push_screen(ConfirmScreen(f"Delete the session “{model.label}”?"), answered)

    async def action_load_older(self) -> None:
        if self._loading_older:
            return
        self._loading_older = True
        try:
            await self._act(self.controller.load_older)
        finally:
            self._loading_older = False

    async def action_page_up(self) -> None:
        transcript = self.query_one(TranscriptView)
        if transcript.scroll_y <= 0:
            await self.action_load_older()
        else:
            transcript.scroll_page_up()

    async def action_switch(self, step: int) -> None:
        pane = self.query_one(SessionsPane)
        if pane.option_count == 0:
            return
        index = ((pane.highlighted or 0) + step) % pane.option_count
        option_id = pane.get_option_at_index(index).id
        if option_id is not None:
            await self._act(self.controller.switch, option_id)

    async def action_reconnect(self) -> None:
        await trio_asyncio.trio_as_aio(_sync)(self.controller.feed.reconnect_now)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def on_transcript_view_reached_top(self, message: TranscriptView.ReachedTop) -> None:
        await self.action_load_older()


async def _sync(fn: Callable[[], None]) -> None:
    """Run a synchronous Trio-side call from a Trio task (trio_as_aio needs async)."""
    fn()
