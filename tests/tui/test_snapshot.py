"""The main screen, drawn from a fixed state and compared with a saved SVG.

The state is made by hand (no daemon, no clock, no ids that change), so the
picture is the same on every run. After a deliberate change of the look,
run with ALEPH_UPDATE_SNAPSHOTS=1 to save the new picture, look at it, and
commit it. The same picture is docs/tui.svg (the README's screenshot).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import trio_asyncio

from aleph.client.feed import FeedState
from aleph.interfaces.tui.app import AlephTui
from aleph.interfaces.tui.controller import TuiController
from aleph.interfaces.tui.model import SessionModel
from tests.tui.harness import piloting

SNAPSHOTS = Path(__file__).with_name("snapshots")
DOCS = Path(__file__).parents[2] / "docs"

ANSWER = """\
## Three ways to stream

1. **WebSocket** events, each with a `seq`
2. Server-sent events
3. Long polling

```python
async for event in feed:
    print(event["seq"], event["type"])
```

The gateway numbers every event, so a client that drops can resume with
`after_seq` and miss nothing."""


def ev(kind: str, run_id: str | None, **data: Any) -> dict[str, Any]:
    return {"type": kind, "run_id": run_id, "data": data, "ts": "2026-11-22T10:00:00.000Z"}


def demo_controller() -> TuiController:
    """A controller in a fixed state, connected to nothing."""
    controller = TuiController("ws://127.0.0.1:2135/ws", None)
    controller.state, controller.latency_s = FeedState.CONNECTED, 0.004
    sessions = [
        ("s_1", "Streaming protocols", "2026-11-22T10:00:00.000Z", 0),
        ("s_2", "Trip to Lisbon", "2026-11-22T09:00:00.000Z", 2),
        ("s_3", "Refactor the parser", "2026-11-21T18:00:00.000Z", 0),
    ]
    for session_id, title, updated, unread in sessions:
        model = SessionModel(session_id, title=title, updated_at=updated, unread=unread)
        model.loaded = True
        controller.sessions[session_id] = model
    model = controller.sessions["s_1"]
    model.apply(ev("message.user", "r_1", message_id="m_1", text="How can a client stream?"), 0)
    model.apply(ev("run.started", "r_1"), 0.0)
    model.apply(
        ev(
            "tool.started",
            "r_1",
            call_id="c1",
            name="calculator",
            arguments={"expression": "2**10"},
        ),
        0.1,
    )
    model.apply(
        ev("tool.finished", "r_1", call_id="c1", result={"expression": "2**10", "value": 1024}), 0.2
    )
    model.apply(
        ev(
            "tool.started",
            "r_1",
            call_id="c2",
            name="current_time",
            arguments={"timezone": "Europe/Lisbon"},
        ),
        0.3,
    )
    model.apply(ev("tool.finished", "r_1", call_id="c2", error="no network in the demo"), 0.4)
    model.apply(ev("message.assistant", "r_1", message_id="m_2", text=ANSWER), 1.0)
    model.apply(ev("run.finished", "r_1", usage={"output_tokens": 96}), 1.5)
    model.apply(ev("message.user", "r_2", message_id="m_3", text="And in Trio?"), 2.0)
    model.apply(ev("run.started", "r_2"), 2.0)
    model.apply(ev("run.delta", "r_2", text="Open a nursery, then "), 2.1)
    model.run_id = None  # no live rate: it would depend on the clock
    controller.current = "s_1"
    controller.outbox = []
    return controller


async def test_main_screen_matches_the_saved_snapshot() -> None:
    async with trio_asyncio.open_loop():
        app = AlephTui(demo_controller())
        async with piloting(app) as tui:
            await tui.until(lambda: app.draws > 0 and app.query_one("#transcript").live_size > 0)
            await tui.call(tui.pilot.pause)
            svg = app.export_screenshot(title="aleph tui")
    saved = SNAPSHOTS / "main_screen.svg"
    if os.environ.get("ALEPH_UPDATE_SNAPSHOTS"):
        saved.write_text(svg)
        (DOCS / "tui.svg").write_text(svg)
    got = SNAPSHOTS / "main_screen.got.svg"
    if svg != saved.read_text():
        got.write_text(svg)
        raise AssertionError(f"the main screen changed: compare {got} with {saved}")
    got.unlink(missing_ok=True)
