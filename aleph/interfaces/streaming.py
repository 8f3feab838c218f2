"""Streaming an answer into chat messages: what to send or edit, and when.

Sans-IO and library-free. A chat platform shows a streamed answer as one
message edited as text arrives, and as several once it outgrows the
platform's limit. :class:`StreamPlan` remembers what each sent message
shows and gives the next operation (send a new message, or edit one) for
the answer's current text. :class:`EditThrottle` spaces the operations so
that a chat never sees more than one every `interval` seconds: Telegram asks
for at most one message per second per chat and 20 per minute in a group;
Discord's per-channel message bucket is 5 per 5 seconds.

Time is passed in (`now`, seconds on one monotonic clock) so tests drive it
without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from aleph.interfaces.formatting import split_text

__all__ = ["EditOp", "EditThrottle", "SendOp", "StreamOp", "StreamPlan"]


@attrs.frozen
class SendOp:
    index: int  # which chunk of the answer this new message holds
    text: str


@attrs.frozen
class EditOp:
    index: int
    text: str


StreamOp = SendOp | EditOp


@attrs.define
class EditThrottle:
    """At most one operation every `interval` seconds."""

    interval: float
    last: float | None = None
    count: int = 0

    def wait_time(self, now: float) -> float:
        """Seconds to wait before the next operation may go (0.0: now)."""
        if self.last is None:
            return 0.0
        return max(0.0, self.last + self.interval - now)

    def record(self, now: float) -> None:
        self.last = now
        self.count += 1

    def push_back(self, now: float, delay: float) -> None:
        """The platform asked to wait `delay` seconds (HTTP 429): nothing before then."""
        self.last = max(self.last or now, now + delay - self.interval)


@attrs.define
class StreamPlan:
    """The messages of one answer: what each shows, and what to do next."""

    limit: int
    measure: Callable[[str], int] = len
    shown: list[str] = attrs.Factory(list)

    def next_op(self, text: str) -> StreamOp | None:
        """The first operation that brings the chat closer to showing `text`, or None."""
        chunks = split_text(text, self.limit, self.measure) if text.strip() else []
        for index, chunk in enumerate(chunks):
            if index >= len(self.shown):
                return SendOp(index, chunk)
            if self.shown[index] != chunk:
                return EditOp(index, chunk)
        return None

    def done(self, op: StreamOp) -> None:
        """Record that `op` was carried out."""
        if isinstance(op, SendOp):
            assert op.index == len(self.shown), "sends happen in order"
            self.shown.append(op.text)
        else:
            self.shown[op.index] = op.text
