"""Rate limits on session.send: one token bucket per session and one per user.

A send costs one token from both buckets, or none when either is empty (so a
refused send never uses up the other bucket). Guests get the stricter of the
two rates for their per-user bucket. Time is `now` from the caller, in the
daemon `trio.current_time()`, so tests run it under a mock clock.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from aleph.security.limits import TokenBucket
from aleph.security.tokens import Principal

__all__ = ["SendLimits"]


@attrs.define(eq=False)
class SendLimits:
    session_per_minute: float
    user_per_minute: float
    max_keys: int = 100_000
    _buckets: OrderedDict[tuple[str, str], TokenBucket] = attrs.field(
        factory=OrderedDict, init=False
    )

    def _bucket(self, key: tuple[str, str], rate: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[key] = TokenBucket(rate, 60.0)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def take(self, session_id: str, principal: Principal, now: float) -> float | None:
        """None if the send may go ahead (tokens taken), else seconds to wait."""
        user_rate = self.user_per_minute
        if not principal.is_owner:
            user_rate = min(user_rate, self.session_per_minute)
        buckets = (
            self._bucket(("session", session_id), self.session_per_minute),
            self._bucket(("user", principal.id), user_rate),
        )
        waits = []
        for bucket in buckets:
            bucket.take(now, 0.0)  # refill to now
            if bucket.tokens < 1.0:
                waits.append((1.0 - bucket.tokens) * bucket.per / bucket.rate)
        if waits:
            return max(waits)
        for bucket in buckets:
            bucket.take(now)
        return None

    def forget_session(self, session_id: str) -> None:
        self._buckets.pop(("session", session_id), None)
