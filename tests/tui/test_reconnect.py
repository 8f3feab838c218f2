"""The TUI keeps going across a daemon restart: banner, typed text kept, resume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from aleph.client.feed import FeedState
from aleph.config import Config
from aleph.daemon import Daemon
from aleph.interfaces.tui.widgets import Banner
from tests.tui.harness import driving


@asynccontextmanager
async def daemon_on(config: Config) -> AsyncIterator[Daemon]:
    """A daemon that is stopped gracefully (and waited for) when the block ends."""
    async with trio.open_nursery() as nursery:
        daemon = Daemon(config, None)
        await nursery.start(daemon.run)
        try:
            yield daemon
        finally:
            daemon.stop_requested.set()


def port_of(daemon: Daemon) -> int:
    return int(daemon.gateway.listen_addresses[0].rsplit(":", 1)[1].split("/")[0])


async def test_reconnects_and_resumes_after_the_daemon_restarts(make_config: Any) -> None:
    # A short grace: stopping waits for it (some services only stop at its end).
    config = make_config(daemon={"shutdown_grace": 0.2})
    async with daemon_on(config) as first:
        port = port_of(first)
    # The same state and the same port: the restarted daemon is "the" daemon.
    config = attrs.evolve(config, gateway=attrs.evolve(config.gateway, port=port))
    token = (config.state_dir() / "owner_token").read_text().strip()
    url = f"ws://127.0.0.1:{port}{config.gateway.path}"
    async with daemon_on(config) as daemon:
        restarted = daemon
        async with driving(url, token) as tui:
            await tui.until(lambda: tui.controller.current is not None)
            await tui.type("before")
            await tui.until(lambda: len(tui.model().entries) == 2)
            restarted.stop_requested.set()
            await tui.until(lambda: tui.controller.state is not FeedState.CONNECTED)
            banner = tui.app.query_one(Banner)
            await tui.until(lambda: banner.display)
            # Typed while the daemon is down: kept, shown as waiting, sent on return.
            await tui.type("while away")
            assert tui.controller.pending(tui.controller.current or "") == ["while away"]
            async with daemon_on(config):
                await tui.until(lambda: tui.controller.state is FeedState.CONNECTED)
                await tui.until(lambda: len(tui.model().entries) == 4, within=20)
                assert not banner.display
                texts = [e.text for e in tui.model().entries]
                assert texts == ["before", "[echo] before", "while away", "[echo] while away"]
                assert tui.controller.outbox == []
                # A graceful restart keeps the epoch: resumed, not reloaded.
                cursor = tui.controller.feed.cursors[tui.controller.current or ""]
                assert cursor.epoch is not None
                assert cursor.last_seq is not None
                assert tui.controller.feed.connections == 2
