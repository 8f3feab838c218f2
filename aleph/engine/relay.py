"""DeltaRelay: text deltas from the provider to `emit`, coalesced only under load.

The provider hands over each delta the moment its chunk is parsed
(:meth:`DeltaRelay.push`, which never waits). A relay task emits what has
accumulated: when the daemon keeps up, that is one delta per chunk, at once;
when it falls behind (a model streaming faster than the clients can be
written to), every delta that arrived in one network read goes out as one
``run.delta``, so the frame rate follows what the daemon can send instead of
a queue growing without bound. Nothing waits on a timer.

Every event of a run goes through :meth:`DeltaRelay.emit`, which first
flushes the pending text under the same lock, so a run's events keep their
order and the runner's `emit` is never called by two tasks at once.

:func:`serving_relay` runs the relay task for the duration of a run. A Trio
nursery reports even a plain cancellation as an exception group; the seam
(aleph/engine/api.py) promises the runner plain exceptions, so what leaves
it is unwrapped: the first error that is not a cancellation, else the
cancellation itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
import trio.lowlevel

from aleph.engine.api import Emit, EngineEvent, TextDelta

__all__ = ["DeltaRelay", "serving_relay"]

log = logging.getLogger(__name__)

YIELD_EVERY = 0.0005  # seconds of uninterrupted parsing before the relay gets a turn


@attrs.define(eq=False)
class DeltaRelay:
    _emit: Emit
    _pending: list[str] = attrs.Factory(list)
    _wakeup: trio.Event = attrs.Factory(trio.Event)
    _lock: trio.Lock = attrs.Factory(trio.Lock)
    _closed: bool = False
    _last_yield: float = 0.0

    async def push(self, delta: str) -> None:
        """Take one delta from the provider; it is emitted soon, in order.

        Chunks already buffered by the HTTP client are parsed without a
        checkpoint, so a fast provider's burst would all wait for the next
        network read; yielding every :data:`YIELD_EVERY` seconds of such a
        burst bounds how long a delta waits for the relay to send it.
        """
        self._pending.append(delta)
        self._wakeup.set()
        now = trio.current_time()
        if now - self._last_yield >= YIELD_EVERY:
            self._last_yield = now
            await trio.lowlevel.checkpoint()

    async def emit_text(self, delta: str) -> None:
        """Emit one delta now, in this task, never coalesced."""
        await self.emit(TextDelta(delta))

    async def emit(self, event: EngineEvent) -> None:
        """Emit a whole event after the text pending before it."""
        async with self._lock:
            await self._flush()
            await self._emit(event)

    async def _flush(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            await self._emit(TextDelta(text))

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def serve(self) -> None:
        while not self._closed:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            async with self._lock:
                await self._flush()


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    errors = [exc for exc in leaves if not isinstance(exc, trio.Cancelled)]
    for extra in errors[1:]:
        log.error("a second error in the same run was dropped: %r", extra)
    return errors[0] if errors else leaves[0]


@asynccontextmanager
async def serving_relay(emit: Emit) -> AsyncIterator[DeltaRelay]:
    """A relay whose task runs until the block ends; pending text is flushed then."""
    relay = DeltaRelay(emit)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay.serve)
            try:
                yield relay
            except Exception:
                # The run failed (the provider broke off): what it said is still shown.
                async with relay._lock:
                    await relay._flush()
                raise
            else:
                async with relay._lock:
                    await relay._flush()
            finally:
                relay.close()
    except BaseExceptionGroup as group:
        raise _first(group) from None
