"""Writing the persistent sessions' events to the store, in batches.

The event log hands every event of an ``owner`` or ``paired`` session to
:meth:`EventFlusher.add` (synchronous, never blocks); :meth:`EventFlusher.serve`
writes what accumulated every :data:`FLUSH_DELAY` seconds while events flow,
in one transaction, and prunes what is beyond the retention. Events are sent
to clients before they are written: the flusher never delays an answer.

Failures: a failed write is logged and remembered (:attr:`failed`); the hub
then does not mark the store clean at the stop, so the next start gives the
sessions new epochs rather than resuming over a hole.
"""

from __future__ import annotations

import logging

import attrs
import trio

from aleph.sessions.store import SessionStore

__all__ = ["FLUSH_DELAY", "EventFlusher"]

log = logging.getLogger(__name__)

FLUSH_DELAY = 0.05  # seconds events wait to be written together


@attrs.define(eq=False)
class EventFlusher:
    store: SessionStore
    retention: int
    failed: bool = False
    _pending: list[tuple[str, int, str]] = attrs.Factory(list)
    _wanted: trio.Event = attrs.Factory(trio.Event)

    def add(self, session_id: str, seq: int, frame: str) -> None:
        self._pending.append((session_id, seq, frame))
        self._wanted.set()

    async def serve(self) -> None:
        """Flush in batches until cancelled (the hub flushes once more at its stop)."""
        while True:
            await self._wanted.wait()
            await trio.sleep(FLUSH_DELAY)
            self._wanted = trio.Event()
            await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            with trio.CancelScope(shield=True):
                await self.store.flush_events(batch, self.retention)
        except Exception:
            self.failed = True
            log.exception("could not store %d session events", len(batch))
