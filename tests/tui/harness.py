"""Driving the TUI from a Trio test: Textual's pilot through trio-asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
import trio_asyncio
from textual.pilot import Pilot

from aleph.interfaces.tui import running_tui
from aleph.interfaces.tui.app import AlephTui
from aleph.interfaces.tui.controller import TuiController

SIZE = (120, 36)


@attrs.define(eq=False)
class Driver:
    """The app under a headless pilot, with Trio-side helpers."""

    app: AlephTui
    pilot: Pilot[None]

    @property
    def controller(self) -> TuiController:
        return self.app.controller

    async def press(self, *keys: str) -> None:
        await trio_asyncio.aio_as_trio(self.pilot.press)(*keys)

    async def type(self, text: str) -> None:
        """Type `text` key by key, then enter."""
        keys = ["space" if char == " " else char for char in text]
        await self.press(*keys, "enter")

    async def until(self, predicate: Callable[[], bool], within: float = 15) -> None:
        """Wait, redraw by redraw, until `predicate` holds (bounded)."""
        with trio.fail_after(within):
            while True:
                drawn = self.app.drawn
                if predicate():
                    return
                await trio_asyncio.aio_as_trio(drawn.wait)()

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call an asyncio-side (app) coroutine function from the test."""
        return await trio_asyncio.aio_as_trio(fn)(*args)

    def model(self) -> Any:
        return self.controller.sessions[self.controller.current or ""]

    def transcript_text(self) -> str:
        return "\n".join(entry.text for entry in self.model().entries)


async def _hold(
    app: AlephTui, size: tuple[int, int], ready: trio.Event, done: asyncio.Event, out: list[Any]
) -> None:
    # run_test must be entered and left in one asyncio task (its context vars).
    async with app.run_test(size=size) as pilot:
        out.append(pilot)
        ready.set()
        await done.wait()


@asynccontextmanager
async def piloting(app: AlephTui, size: tuple[int, int] = SIZE) -> AsyncIterator[Driver]:
    """Run `app` headless under a pilot (inside an open trio-asyncio loop)."""
    async with trio.open_nursery() as nursery:
        ready, done, out = trio.Event(), asyncio.Event(), []
        nursery.start_soon(trio_asyncio.aio_as_trio(_hold), app, size, ready, done, out)
        with trio.fail_after(15):
            await ready.wait()
        try:
            yield Driver(app, out[0])
        finally:
            done.set()


@asynccontextmanager
async def driving(
    url: str, token: str | None, size: tuple[int, int] = SIZE, **options: Any
) -> AsyncIterator[Driver]:
    """`async with driving(live.url, live.token) as tui:` an app connected to the daemon."""
    async with running_tui(url, token, **options) as app, piloting(app, size) as tui:
        yield tui
