"""A 5,000-message session: the latest page first, older pages on demand."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from aleph.interfaces.tui.controller import HISTORY_PAGE
from aleph.interfaces.tui.transcript import TranscriptView
from tests.tui.harness import driving

MESSAGES = 5000


async def long_session(live: Any) -> str:
    """A session with MESSAGES stored messages, written straight into its store."""
    async with live.connect() as client:
        session_id: str = (await client.call("session.create", {"title": "long"}))["session_id"]
    hub = live.daemon.sessions
    now = time.time()
    rows = [
        (session_id, "user" if n % 2 == 0 else "assistant", f"message {n}", "{}", now)
        for n in range(MESSAGES)
    ]

    def insert(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO session_messages (session_id, role, text, meta, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    await hub.store.db.write(insert)
    return session_id


async def test_a_long_history_loads_page_by_page(live: Any) -> None:
    session_id = await long_session(live)
    async with driving(live.url, live.token) as tui:
        await tui.until(lambda: tui.controller.current == session_id)
        model = tui.model()
        await tui.until(lambda: model.loaded)
        transcript = tui.app.query_one(TranscriptView)
        await tui.until(lambda: len(transcript.children) >= HISTORY_PAGE)
        assert len(model.entries) == HISTORY_PAGE
        assert model.has_more
        assert model.entries[-1].text == f"message {MESSAGES - 1}"
        # ctrl+o (or page up at the top) puts the page before in front.
        await tui.press("ctrl+o")
        await tui.until(lambda: len(model.entries) == 2 * HISTORY_PAGE)
        assert model.entries[0].text == f"message {MESSAGES - 2 * HISTORY_PAGE}"
        await tui.until(lambda: model.front == HISTORY_PAGE)
        # The view is still usable: a new message goes at the end.
        await tui.type("still responsive")
        await tui.until(lambda: model.entries[-1].text == "[echo] still responsive")
