"""The TUI against a real daemon, under Textual's headless pilot."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from aleph.client.feed import FeedState
from aleph.interfaces.tui.transcript import TranscriptView
from aleph.interfaces.tui.widgets import Banner, HistoryInput, SessionsPane, StatusBar, ToolPane
from tests.sessions.fakes import SlowEngine
from tests.tui.harness import Driver, driving


async def ready(tui: Driver) -> None:
    await tui.until(lambda: tui.controller.state is FeedState.CONNECTED)
    await tui.until(lambda: tui.controller.current is not None)


def shown(tui: Driver, widget: type[Any]) -> str:
    """The plain text a Static-based widget shows now."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(tui.app.query_one(widget).content)
    return console.export_text()


async def test_creates_a_session_sends_and_streams_the_answer(live: Any) -> None:
    # Slow enough to be seen mid-stream: each key the pilot presses waits for idle.
    live.daemon.sessions.engine = SlowEngine(delay=0.03, words=150)
    async with driving(live.url, live.token) as tui:
        await ready(tui)
        assert not tui.app.query_one(Banner).display
        await tui.type("hello there")
        transcript = tui.app.query_one(TranscriptView)
        # The answer is on screen while it streams, before it is finished.
        await tui.until(lambda: transcript.live_size > 0)
        assert tui.model().run_id is not None
        await tui.until(lambda: [e.kind for e in tui.model().entries] == ["user", "assistant"])
        assert tui.model().entries[1].text.startswith("w0 w1 ")
        await tui.until(lambda: transcript.live_size == 0)
        assert "tok/s" in shown(tui, StatusBar)
        assert "ping" in shown(tui, StatusBar)
        # The input keeps a history: up brings the last line back.
        await tui.press("up")
        assert tui.app.query_one(HistoryInput).value == "hello there"


async def test_cancel_stops_the_run(live: Any) -> None:
    live.daemon.sessions.engine = SlowEngine(delay=0.05, words=400)
    async with driving(live.url, live.token) as tui:
        await ready(tui)
        await tui.type("long answer please")
        await tui.until(lambda: tui.model().live is not None and tui.model().live.deltas >= 2)
        await tui.press("escape")
        await tui.until(lambda: any(e.kind == "notice" for e in tui.model().entries))
        kinds = [e.kind for e in tui.model().entries]
        assert kinds == ["user", "assistant", "notice"]  # the partial answer is kept
        assert "cancelled" in tui.model().entries[-1].text
        assert tui.model().run_id is None


async def test_new_session_switch_and_unread_marks(live: Any) -> None:
    async with driving(live.url, live.token) as tui:
        await ready(tui)
        first = tui.controller.current
        await tui.type("in the first")
        await tui.until(lambda: len(tui.model().entries) == 2)
        await tui.press("ctrl+n")
        await tui.until(lambda: tui.controller.current not in (None, first))
        second = tui.controller.current
        assert tui.model().entries == []
        # Another client talks in the first session: it gets an unread mark.
        async with live.connect() as other:
            await other.call("session.send", {"session_id": first, "text": "from elsewhere"})
        await tui.until(lambda: tui.controller.sessions[first].unread == 1)
        # The pane redraws on the app's next refresh, not with the count.
        pane = tui.app.query_one(SessionsPane)
        await tui.until(lambda: "● 1" in str(pane.get_option(first or "").prompt))
        # ctrl+down moves to the next session in the list (of two: the other one).
        await tui.press("ctrl+down")
        await tui.until(lambda: tui.controller.current == first)
        assert tui.controller.sessions[first].unread == 0
        texts = [e.text for e in tui.model().entries]
        assert texts == [
            "in the first",
            "[echo] in the first",
            "from elsewhere",
            "[echo] from elsewhere",
        ]
        assert second in tui.controller.sessions


async def test_sessions_made_and_deleted_elsewhere_show_up(live: Any) -> None:
    async with driving(live.url, live.token, list_interval=0.1) as tui:
        await ready(tui)
        async with live.connect() as other:
            made = await other.call("session.create", {"title": "from my phone"})
            made_id = made["session_id"]
            await tui.until(lambda: made_id in tui.controller.sessions)
            assert tui.controller.sessions[made_id].title == "from my phone"
            await other.call("session.delete", {"session_id": made_id})
            await tui.until(lambda: made_id not in tui.controller.sessions)


async def test_clear_and_delete(live: Any) -> None:
    async with driving(live.url, live.token) as tui:
        await ready(tui)
        doomed = tui.controller.current
        await tui.type("soon gone")
        await tui.until(lambda: len(tui.model().entries) == 2)
        await tui.press("ctrl+l")
        await tui.until(lambda: tui.model().entries == [])
        await tui.press("f8")
        await tui.press("y")
        # The last session was deleted: a new one takes its place.
        await tui.until(lambda: tui.controller.current not in (None, doomed))
        listed = await tui.controller.feed.call("session.list")
        assert doomed not in [s["session_id"] for s in listed["sessions"]]


async def test_tool_calls_show_in_the_tool_pane(live: Any) -> None:
    async with driving(live.url, live.token) as tui:
        await ready(tui)
        await tui.type('/tool calculator {"expression": "6*7"}')
        await tui.until(lambda: bool(tui.model().tools) and tui.model().tools[0].finished)
        await tui.until(lambda: "calculator" in shown(tui, ToolPane))
        assert "42" in shown(tui, ToolPane)


async def test_rate_limits_are_shown_and_the_text_is_sent_later(start_daemon: Any) -> None:
    live = await start_daemon(limits={"session_messages_per_minute": 1})
    async with driving(live.url, live.token) as tui:
        await ready(tui)
        await tui.type("one")
        await tui.type("two")
        await tui.until(lambda: "rate limited" in shown(tui, StatusBar))
        assert tui.controller.pending(tui.controller.current or "") == ["two"]
        assert "waiting to send" in shown(tui, StatusBar)


async def test_help_screen_opens_and_closes(live: Any) -> None:
    async with driving(live.url, live.token) as tui:
        await ready(tui)
        await tui.press("f1")
        await tui.until(lambda: type(tui.app.screen).__name__ == "HelpScreen")
        await tui.press("escape")
        await tui.until(lambda: type(tui.app.screen).__name__ == "Screen")
