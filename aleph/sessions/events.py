"""A session's event log: numbering, retention, fan-out and resume.

:class:`EventLog` gives every event of one session the next ``seq`` (no
gaps, no duplicates), encodes its ``session.event`` notification once, keeps
the last `retention` frames in a ring, and sends the same text to every live
subscriber. Appending is synchronous: nothing can run between numbering an
event and handing it to the subscribers, so every subscriber sees the same
order.

Resume (:meth:`EventLog.subscribe` with `after_seq`) registers the client as
*replaying*: live fan-out skips it, and :meth:`EventLog.replay` copies the
ring to it from `after_seq` on, waiting for room in the client's bounded
queue, until it has caught up; in the same step (no checkpoint in between)
it turns live. Events that arrive during the replay are therefore sent once,
by the replay, and none is missed. A replaying client that falls out of the
ring is closed with 1008, like any slow consumer.

Text deltas (:meth:`EventLog.delta`) are merged: a delta that comes less
than `delta_interval` seconds after the previous ``run.delta`` of the session
is held and goes out joined with whatever follows it, as one ``run.delta``,
when the interval is up (:meth:`EventLog.serve_deltas`, run by the session's
runner, keeps that promise when nothing follows) or as soon as any other
event is appended (so the order of events never changes). A model that
streams slower than the interval (every real one, at the default of 0.5 ms)
gets one ``run.delta`` per delta, at once; a provider that bursts thousands
of tokens a second gets at most one frame per interval per session, which
is what keeps the gateway's cost per token flat (docs/performance.md).

Failures: :class:`ResumeGap` (-32010) when the events after `after_seq` are
gone or the epoch differs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import orjson
import trio

from aleph.gateway.client import CLOSE_SLOW_CONSUMER, Client
from aleph.protocol.errors import ResumeGap
from aleph.timestamps import utc_now_iso

__all__ = ["EventLog", "Subscriber"]


@attrs.define(eq=False)
class Subscriber:
    client: Client
    cursor: int  # the last seq this client was sent
    live: bool


@attrs.define(eq=False)
class EventLog:
    """One session's numbered events; `on_append(seq, frame)` sees each (persistence)."""

    session_id: str
    epoch: str
    retention: int
    last_seq: int = 0
    on_append: Callable[[int, str], None] | None = None
    delta_interval: float = 0.0  # seconds between two run.delta events (see delta)
    subscribers: dict[str, Subscriber] = attrs.Factory(dict)
    _ring: deque[str] = attrs.field(init=False)
    _held: list[str] = attrs.Factory(list)  # delta text not sent yet
    _held_run: str | None = None
    _last_delta: float = -math.inf  # trio.current_time() of the last run.delta
    _holding: trio.Event = attrs.Factory(trio.Event)  # set while text is held

    def __attrs_post_init__(self) -> None:
        self._ring = deque(maxlen=self.retention)

    def load(self, frames: list[tuple[int, str]]) -> None:
        """Fill the ring with stored (seq, frame), oldest first, ending at last_seq."""
        self._ring.clear()
        expected = self.last_seq - len(frames) + 1
        for offset, (seq, frame) in enumerate(frames):
            if seq != expected + offset:
                # A hole (cannot happen unless the table was edited): keep only the tail.
                self._ring.clear()
                continue
            self._ring.append(frame)

    @property
    def oldest_seq(self) -> int:
        """The oldest retained seq (last_seq + 1 when nothing is retained)."""
        return self.last_seq - len(self._ring) + 1

    def frame(self, seq: int) -> str:
        return self._ring[seq - self.oldest_seq]

    def append(self, kind: str, run_id: str | None, data: dict[str, Any]) -> int:
        """Number, encode, retain and fan out one event; returns its seq."""
        if self._held:
            self.flush_delta()
        return self._append(kind, run_id, data)

    def delta(self, run_id: str, text: str) -> None:
        """Append ``run.delta {text}`` now, or hold it to merge (module docstring)."""
        if self._held and run_id != self._held_run:
            self.flush_delta()
        self._held.append(text)
        self._held_run = run_id
        if trio.current_time() - self._last_delta >= self.delta_interval:
            self.flush_delta()
        else:
            self._holding.set()

    def flush_delta(self) -> None:
        """Append the held delta text, if any, as one ``run.delta``."""
        if not self._held:
            return
        held, self._held = self._held, []
        text = held[0] if len(held) == 1 else "".join(held)
        self._last_delta = trio.current_time()
        self._append("run.delta", self._held_run, {"text": text})

    async def serve_deltas(self) -> None:
        """Send held text when its interval is up; runs beside the session's runner."""
        while True:
            await self._holding.wait()
            self._holding = trio.Event()
            await trio.sleep_until(self._last_delta + self.delta_interval)
            self.flush_delta()

    def _append(self, kind: str, run_id: str | None, data: dict[str, Any]) -> int:
        seq = self.last_seq + 1
        params = {
            "session_id": self.session_id,
            "seq": seq,
            "type": kind,
            "run_id": run_id,
            "data": data,
            "ts": utc_now_iso(),
        }
        frame = orjson.dumps(
            {"jsonrpc": "2.0", "method": "session.event", "params": params}
        ).decode()
        self.last_seq = seq
        self._ring.append(frame)
        for subscriber in self.subscribers.values():
            if subscriber.live:
                subscriber.cursor = seq
                subscriber.client.send(frame)
        if self.on_append is not None:
            self.on_append(seq, frame)
        return seq

    def subscribe(
        self, client: Client, after_seq: int | None = None, epoch: str | None = None
    ) -> Subscriber:
        """Register `client`; with `after_seq`, as replaying from there (see replay)."""
        if after_seq is None:
            subscriber = Subscriber(client, self.last_seq, live=True)
        else:
            if epoch is not None and epoch != self.epoch:
                raise ResumeGap(
                    "the session's event stream was restarted (epoch changed);"
                    " reload session.history",
                    {"oldest_seq": self.oldest_seq},
                )
            if after_seq < self.oldest_seq - 1 or after_seq > self.last_seq or after_seq < 0:
                raise ResumeGap(data={"oldest_seq": self.oldest_seq})
            subscriber = Subscriber(client, after_seq, live=after_seq == self.last_seq)
        self.subscribers[client.id] = subscriber
        return subscriber

    def unsubscribe(self, client_id: str) -> bool:
        return self.subscribers.pop(client_id, None) is not None

    async def replay(self, subscriber: Subscriber) -> None:
        """Send the retained events after the subscriber's cursor, then make it live."""
        client = subscriber.client
        try:
            while self.subscribers.get(client.id) is subscriber and not client.closing:
                if subscriber.cursor >= self.last_seq:
                    subscriber.live = True
                    return
                if subscriber.cursor < self.oldest_seq - 1:
                    client.close(CLOSE_SLOW_CONSUMER, "slow consumer: resume fell behind")
                    break
                frame = self.frame(subscriber.cursor + 1)
                try:
                    client.outbound.send_nowait(frame)
                except trio.WouldBlock:
                    await client.outbound.send(frame)
                subscriber.cursor += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        if self.subscribers.get(client.id) is subscriber:
            del self.subscribers[client.id]
