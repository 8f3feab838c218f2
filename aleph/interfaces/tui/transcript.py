"""The transcript pane: a session's messages, and its answer as it streams.

:class:`TranscriptView` mirrors a :class:`~aleph.interfaces.tui.model.SessionModel`
incrementally. :meth:`TranscriptView.sync` mounts only the entries added at
either end since the last call (the model counts them), hands only the new
part of the streaming answer to its :class:`AnswerView`, and keeps the
reader's place: it follows the bottom while the reader is there, and stays on
the same lines when an older page is put in above. The app calls it at most
every 50 ms, so a long answer costs one update per frame, not one per token;
and a frame shows at most :data:`STEP` more characters of it (:attr:`behind`
asks for another frame), so a burst of text never stalls the screen.

Answers are Markdown rendered by Rich into a few plain widgets, not one
widget per block: an :class:`AnswerView` cuts its text at block boundaries
(blank lines outside code fences) into chunks of about :data:`CHUNK`
characters, each rendered once; only the unfinished tail is rendered again
on each frame. Layout and rendering costs stay flat however long the answer
grows (20,000 tokens and more).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import Markdown
from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Size
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from aleph.interfaces.tui.model import Entry, SessionModel

__all__ = ["CHUNK", "AnswerView", "TranscriptView", "settle_point"]

CHUNK = 1500  # characters of Markdown rendered together
FORCE = 4 * CHUNK  # a tail this long with no block boundary is cut at a line or a space
SHOWN_TEXT = 4000  # characters shown of a user message, a tool result or a notice
STEP = 4 * CHUNK  # characters of a streaming answer put on screen per frame, at most


def settle_point(text: str, start: int, minimum: int = CHUNK) -> int:
    """Where to end the next chunk of `text[start:]`, or `start` if not yet.

    A chunk ends after a blank line outside a code fence and holds at least
    `minimum` characters. A tail of FORCE characters with no such line is
    cut at its last line break, else its last space, so that it stays short.
    """
    fenced, cut, position = False, start, start
    while position < len(text):
        end = text.find("\n", position)
        if end < 0:
            break
        line = text[position:end]
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not line.strip() and not fenced and end + 1 - start >= minimum:
            cut = end + 1
            break
        position = end + 1
    if cut == start and len(text) - start >= FORCE:
        tail = text[start:]
        split = max(tail.rfind("\n"), tail.rfind(" "))
        cut = start + (split + 1 if split > 0 else len(tail))
    return cut


class RenderedMarkdown:
    """Markdown that Rich renders once per width (Textual asks twice: to measure
    the height, then to draw)."""

    def __init__(self, text: str) -> None:
        self.markdown = Markdown(text, code_theme="monokai", hyperlinks=True)
        self._lines: dict[tuple[int, bool | None], list[Segment]] = {}

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        key = (options.max_width, options.no_wrap)
        if key not in self._lines:
            self._lines[key] = list(console.render(self.markdown, options))
        yield from self._lines[key]


def _markdown(text: str) -> RenderedMarkdown:
    return RenderedMarkdown(text)


class Fixed(Static):
    """A Static whose content never changes, so neither does its height at a
    given width: measured once, not on every layout (Textual would otherwise
    render it again each time to measure it)."""

    def __init__(self, content: Any, *, classes: str = "") -> None:
        super().__init__(content, classes=classes, markup=False)
        self._heights: dict[int, int] = {}

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if width not in self._heights:
            self._heights[width] = super().get_content_height(container, viewport, width)
        return self._heights[width]


class Chunk(Fixed):
    """A settled piece of an answer, as Markdown."""

    def __init__(self, text: str, *, classes: str = "") -> None:
        super().__init__(_markdown(text), classes=classes)


class AnswerView(Vertical):
    """An answer's Markdown, in chunks rendered once and a tail rendered per frame."""

    DEFAULT_CSS = """
    AnswerView { height: auto; }
    AnswerView > Static { height: auto; }
    """

    def __init__(self, text: str = "", *, final: bool = True, classes: str = "") -> None:
        super().__init__(classes=classes)
        self.text, self._settled, self.final = "", 0, final
        self._first: list[str] = self._take(text)
        self._tail = Static(_markdown(text[self._settled :]) if text else "", classes="tail")

    def _take(self, text: str) -> list[str]:
        """Move the settled chunks of `text` out of the tail (all of it when final)."""
        self.text, chunks = text, []
        while self._settled < len(text):
            cut = settle_point(text, self._settled)
            if cut == self._settled:
                if not self.final:
                    break
                cut = len(text)
            chunks.append(text[self._settled : cut])
            self._settled = cut
        return chunks

    def compose(self) -> ComposeResult:
        for chunk in self._first:
            yield Chunk(chunk)
        yield self._tail

    async def finish(self, text: str) -> None:
        """Show the final `text` and render what is left of the tail as a chunk."""
        self.final = True
        await self.grow(text)
        self.remove_class("live")

    async def grow(self, text: str) -> None:
        """Show `text` (which extends what is shown)."""
        chunks = self._take(text)
        if chunks:
            await self.mount_all([Chunk(c) for c in chunks], before=self._tail)
        self._tail.update(_markdown(text[self._settled :]))


def entry_widget(entry: Entry) -> Widget:
    """The widget for one finished entry."""
    if entry.kind == "assistant":
        if len(entry.text) <= CHUNK:  # most answers: one widget, not three
            return Chunk(entry.text, classes="assistant")
        return AnswerView(entry.text, classes="assistant")
    text = entry.text if entry.kind != "tool" else "tool: " + entry.text
    if len(text) > SHOWN_TEXT:
        cut = len(text) - SHOWN_TEXT
        text = f"{text[:SHOWN_TEXT]}… ({cut:,} more characters, in the history)"
    return Fixed(Text(text), classes=entry.kind)


class TranscriptView(VerticalScroll):
    """The messages of the session shown (see the module doc)."""

    DEFAULT_CSS = """
    TranscriptView #more { color: $text-muted; text-style: italic; }
    """

    class ReachedTop(Message):
        """The reader scrolled to the top and older messages remain."""

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value <= 0 < old_value and self.shown is not None and self.shown.has_more:
            self.post_message(self.ReachedTop())

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown: SessionModel | None = None
        self._generation = -1
        self._front = self._back = 0
        self._live: AnswerView | None = None
        self._live_run: str | None = None
        self._live_size = 0
        self.behind = False  # more streamed text waits for the next frame
        self._pending = Static("", id="pending", markup=False)
        self._more = Static("", id="more", markup=False)

    def compose(self) -> ComposeResult:
        yield self._more
        yield self._pending

    @property
    def at_bottom(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 1

    async def sync(self, model: SessionModel | None, pending: list[str]) -> None:
        """Bring the view up to date with `model` and the texts not yet sent."""
        follow = self.at_bottom
        if model is not self.shown or model is None or model.generation != self._generation:
            await self._rebuild(model)
            follow = True
        assert model is not None or self.shown is None
        if model is not None:
            await self._grow(model)
            await self._stream(model)
            more = "↑ older messages: ctrl+o or scroll up" if model.has_more else ""
            self._more.update(more)
            self._more.display = bool(more)
        self._pending.update(Text("\n".join(f"⧗ sending: {t}" for t in pending), style="dim"))
        self._pending.display = bool(pending)
        if follow:
            self.scroll_end(animate=False, immediate=True)

    async def _rebuild(self, model: SessionModel | None) -> None:
        for child in list(self.children):
            if child not in (self._more, self._pending):
                await child.remove()
        self.shown, self._live, self._live_run, self._live_size = model, None, None, 0
        if model is None:
            self._generation = -1
            return
        self._generation, self._front, self._back = model.generation, model.front, model.back
        self.behind = False
        if model.entries:
            await self.mount_all([entry_widget(e) for e in model.entries], before=self._pending)

    async def _grow(self, model: SessionModel) -> None:
        if model.front > self._front:
            added = model.entries[: model.front - self._front]
            before_height = self.virtual_size.height
            offset = self.scroll_y
            await self.mount_all([entry_widget(e) for e in added], after=self._more)
            self._front = model.front
            self.call_after_refresh(self._keep_place, before_height, offset)
        while self._back < model.back:
            entry = model.entries[len(model.entries) - (model.back - self._back)]
            if self._adopts(entry, model):
                assert self._live is not None
                # The streamed answer is already on screen: finish it in place
                # (rather than render all of it again), once it has caught up.
                await self._advance(entry.text)
                if self.behind:
                    return
                await self._live.finish(entry.text)
                self._live, self._live_run, self._live_size = None, None, 0
            else:
                anchor = self._live if self._live is not None else self._pending
                await self.mount(entry_widget(entry), before=anchor)
            self._back += 1

    def _adopts(self, entry: Entry, model: SessionModel) -> bool:
        """Is `entry` the finished form of the answer being shown as it streamed?"""
        return (
            self._live is not None
            and entry.kind == "assistant"
            and entry.run_id == self._live_run
            and (model.live is None or model.live.run_id != self._live_run)
        )

    def _keep_place(self, before_height: int, offset: float) -> None:
        grown = self.virtual_size.height - before_height
        self.scroll_to(y=offset + grown, animate=False, immediate=True)

    async def _stream(self, model: SessionModel) -> None:
        live = model.live
        if self._back < model.back:
            return  # still catching up with an answer that has finished
        if live is None or live.run_id != self._live_run:
            if self._live is not None:  # the run ended unfinished (cleared, reset)
                await self._live.remove()
            self._live, self._live_run, self._live_size = None, None, 0
        if live is None:
            return
        if self._live is None:
            self._live = AnswerView(final=False, classes="assistant live")
            self._live_run = live.run_id
            await self.mount(self._live, before=self._pending)
        if live.size > self._live_size:
            await self._advance(live.text)

    async def _advance(self, text: str) -> None:
        """Show up to STEP more characters of the streaming answer `text`."""
        assert self._live is not None
        end = min(len(text), self._live_size + STEP)
        if end > self._live_size:
            await self._live.grow(text[:end])
            self._live_size = end
        self.behind = end < len(text)

    @property
    def live_size(self) -> int:
        """Characters of the streaming answer shown so far (for tests)."""
        return self._live_size
