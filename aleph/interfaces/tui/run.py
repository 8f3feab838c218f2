"""Running the TUI: Textual (asyncio) inside Trio through trio-asyncio.

:func:`running_tui` is the one composition of the parts, used by `aleph
tui` and the tests alike: open the trio-asyncio loop, start the
:class:`~aleph.interfaces.tui.controller.TuiController` (the Trio client
shared with `aleph chat`) in a nursery, run the app, and on the way out
close the connection and cancel what is left. :func:`main` is what the CLI
calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio_asyncio  # type: ignore[import-untyped]

from aleph.interfaces.tui.app import AlephTui
from aleph.interfaces.tui.controller import TuiController

__all__ = ["main", "running_tui"]


@asynccontextmanager
async def running_tui(url: str, token: str | None, **options: Any) -> AsyncIterator[AlephTui]:
    """An app with its controller (`options` for it) running; the caller runs the app."""
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        controller = TuiController(url, token, **options)
        await nursery.start(controller.run)
        try:
            yield AlephTui(controller)
        finally:
            await controller.aclose()
            nursery.cancel_scope.cancel()


async def _serve(url: str, token: str | None) -> None:
    async with running_tui(url, token) as app:
        await trio_asyncio.aio_as_trio(app.run_async)()


def main(url: str, token: str | None) -> int:
    """Run the TUI in this terminal until the user quits; the exit status."""
    trio.run(_serve, url, token)
    return 0
