"""The TUI's smaller widgets: sessions list, tools, status bar, banner, input.

Each renders from the :class:`~aleph.interfaces.tui.controller.TuiController`
state it is handed (:meth:`show`), so the app can redraw them all in one
place; none talks to the network.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from aleph.client.feed import FeedState
from aleph.interfaces.tui.model import SessionModel, ToolCall

__all__ = ["Banner", "HistoryInput", "SessionsPane", "StatusBar", "ToolPane"]


class SessionsPane(OptionList):
    """The sessions, newest first, with unread counts; selecting one switches to it."""

    _shown: tuple[Any, ...] = ()

    def show(self, sessions: list[SessionModel], current: str | None) -> None:
        ordered = sorted(sessions, key=lambda m: (m.updated_at, m.session_id), reverse=True)
        key = tuple((m.session_id, m.label, m.unread, m.run_id is None) for m in ordered)
        if (key, current) == self._shown:
            return  # redrawing an option list costs a frame's worth of time
        self._shown = (key, current)
        prompts = [_session_prompt(m, m.session_id == current) for m in ordered]
        ids = [m.session_id for m in ordered]
        existing = [self.get_option_at_index(i).id for i in range(self.option_count)]
        if existing != ids:
            self.set_options(Option(p, id=i) for p, i in zip(prompts, ids, strict=True))
        else:
            for index, prompt in enumerate(prompts):
                self.replace_option_prompt_at_index(index, prompt)
        if current in ids:
            self.highlighted = ids.index(current)


def _session_prompt(model: SessionModel, current: bool) -> Text:
    text = Text("▸ " if current else "  ", style="bold" if current else "")
    text.append(model.label[:40], style="bold" if current else "")
    if model.type != "owner":
        text.append(f" [{model.type}]", style="dim")
    if model.unread:
        text.append(f"  ● {model.unread}", style="bold yellow")
    if model.run_id is not None:
        text.append("  …", style="cyan")
    return text


class ToolPane(Static):
    """The current session's tool calls and their results, latest last."""

    _shown: tuple[Any, ...] = ()

    def show(self, model: SessionModel | None) -> None:
        calls = model.tools[-30:] if model is not None else []
        key = tuple((id(c), c.finished) for c in calls)
        if key == self._shown and self._shown:
            return
        self._shown = key
        if not calls:
            self.update(Text("no tool calls yet", style="dim"))
            return
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(width=1)
        table.add_column(ratio=1)
        for call in calls:
            table.add_row(*_tool_row(call))
        self.update(table)


def _tool_row(call: ToolCall) -> tuple[Text, Text]:
    if not call.finished:
        mark = Text("…", style="cyan")
    elif call.error:
        mark = Text("✗", style="bold red")
    else:
        mark = Text("✓", style="green")
    body = Text(call.name, style="bold")
    if call.arguments:
        body.append(" " + _short(call.arguments), style="dim")
    if call.finished:
        body.append("\n→ " + _short(call.error or call.result))
    return mark, body


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class StatusBar(Static):
    """Connection state, latency, tokens per second, and the latest notice."""

    def show(
        self,
        state: FeedState,
        latency: float | None,
        rate: float | None,
        notice: str,
        outbox: int,
    ) -> None:
        marks = {
            FeedState.CONNECTED: ("●", "green"),
            FeedState.CONNECTING: ("◌", "yellow"),
            FeedState.DISCONNECTED: ("○", "red"),
            FeedState.FAILED: ("✗", "red"),
        }
        mark, colour = marks[state]
        text = Text(f"{mark} {state.value}", style=colour)
        if latency is not None and state is FeedState.CONNECTED:
            text.append(f"  ping {latency * 1000:.0f} ms")
        if rate is not None:
            text.append(f"  {rate:.0f} tok/s")
        if outbox:
            text.append(f"  {outbox} waiting to send", style="yellow")
        if notice:
            text.append(f"  {notice}", style="bold yellow")
        _update(self, text)


class Banner(Static):
    """Shown only while disconnected: why, and that nothing typed is lost."""

    def show(self, state: FeedState, detail: str, attempts: int) -> None:
        if state is FeedState.CONNECTED:
            self.display = False
            return
        self.display = True
        if state is FeedState.FAILED:
            message = f"Cannot log in: {detail}. Check the token, then restart aleph tui."
        elif state is FeedState.CONNECTING and attempts == 0:
            message = f"Connecting to {detail}…"
        else:
            message = (
                f"Disconnected ({detail}). Reconnecting by itself (attempt {attempts + 1}),"
                " ctrl+r to retry now. What you type is kept and sent once connected."
            )
        _update(self, Text(message))


def _update(widget: Static, text: Text) -> None:
    """Update only when the text changed (a redraw is not free)."""
    if getattr(widget, "_aleph_shown", None) != text.plain:
        widget._aleph_shown = text.plain  # type: ignore[attr-defined]
        widget.update(text)


class HistoryInput(Input):
    """An input line with history: up and down walk through what was sent."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "older", "Previous input", show=False),
        Binding("down", "newer", "Next input", show=False),
    ]

    class Sent(Message):
        """The user pressed enter on a non-empty line."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, history_size: int = 500, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history: list[str] = []
        self.history_size = history_size
        self._index: int | None = None  # None: editing the draft
        self._draft = ""

    def action_older(self) -> None:
        if not self.history:
            return
        if self._index is None:
            self._draft, self._index = self.value, len(self.history)
        self._index = max(0, self._index - 1)
        self._show(self.history[self._index])

    def action_newer(self) -> None:
        if self._index is None:
            return
        self._index += 1
        if self._index >= len(self.history):
            self._index = None
            self._show(self._draft)
        else:
            self._show(self.history[self._index])

    def _show(self, value: str) -> None:
        self.value = value
        self.cursor_position = len(value)

    async def action_submit(self) -> None:
        text = self.value
        if not text.strip():
            return
        if not self.history or self.history[-1] != text:
            self.history.append(text)
            del self.history[: -self.history_size]
        self._index, self._draft = None, ""
        self.value = ""
        self.post_message(self.Sent(text))

    def give_back(self, text: str) -> None:
        """A send the server refused for good: put it back unless the user typed anew."""
        if not self.value:
            self._show(text)
