"""Heartbeats for every connection, from one task.

A sleeping task per connection costs about 3.3 KiB of memory each (measured
with 1,000 idle connections, docs/performance.md). Instead, :class:`Heartbeats`
keeps a heap of due times and one task, :meth:`Heartbeats.run`, that sleeps
until the earliest one. When a connection's ping is due it starts a short
ping task in that connection's own nursery (so the ping dies with the
connection): the ping must be answered within `client_timeout`, else the
client is closed with 1001; once answered, the next ping is due
`heartbeat_interval` later. Intervals and timeouts are read from the config
at each step, so a reload applies to the next ping.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from aleph.gateway.client import Client
    from aleph.gateway.server import Gateway

__all__ = ["Heartbeats"]

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001


@attrs.define(eq=False)
class _Beat:
    client: Client
    ping: Callable[[], Awaitable[bool]]  # True when the pong arrives, False if closed
    nursery: trio.Nursery


@attrs.define(eq=False)
class Heartbeats:
    gateway: Gateway
    _heap: list[tuple[float, int, _Beat]] = attrs.Factory(list)
    _order: itertools.count[int] = attrs.Factory(itertools.count)
    _wakeup: trio.Event = attrs.Factory(trio.Event)

    def add(
        self, client: Client, ping: Callable[[], Awaitable[bool]], nursery: trio.Nursery
    ) -> None:
        """Ping `client` every heartbeat_interval while its nursery lives.

        `ping` returns True once the pong arrives and False if the connection
        closed meanwhile (the heartbeat then stops)."""
        self._schedule(_Beat(client, ping, nursery))

    def _schedule(self, beat: _Beat) -> None:
        due = trio.current_time() + self.gateway.config.gateway.heartbeat_interval
        earliest = self._heap[0][0] if self._heap else math.inf
        heapq.heappush(self._heap, (due, next(self._order), beat))
        if due < earliest:
            self._wakeup.set()

    def __len__(self) -> int:
        return len(self._heap)

    async def run(self) -> None:
        """Start each ping when it is due; runs until cancelled."""
        while True:
            now = trio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, beat = heapq.heappop(self._heap)
                if not beat.client.closing:
                    # RuntimeError: the connection's nursery closed since.
                    with contextlib.suppress(RuntimeError):
                        beat.nursery.start_soon(self._ping, beat)
            self._wakeup = trio.Event()
            deadline = self._heap[0][0] if self._heap else math.inf
            with trio.move_on_at(deadline):
                await self._wakeup.wait()

    async def _ping(self, beat: _Beat) -> None:
        timeout = self.gateway.config.gateway.client_timeout
        with trio.move_on_after(timeout) as scope:
            if not await beat.ping():
                return
        if scope.cancelled_caught:
            log.info("closing %s: no pong within %ss", beat.client.id, timeout)
            beat.client.close(CLOSE_GOING_AWAY, "heartbeat timeout")
            return
        self._schedule(beat)
