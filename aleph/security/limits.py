"""Rate limits: token buckets, a bounded per-key limiter, and the login lockout.

All three are sans-IO: every method takes `now` (seconds on one monotonic
clock, in the daemon `trio.current_time()`), so tests drive them with a mock
clock and nothing here sleeps or reads a clock itself.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable

import attrs

__all__ = ["KeyedLimiter", "LoginLockout", "TokenBucket"]


@attrs.define(eq=False)
class TokenBucket:
    """`rate` tokens a `per` seconds, bursting up to `capacity` (default: `rate`)."""

    rate: float
    per: float = 60.0
    capacity: float = attrs.field(default=attrs.Factory(lambda self: self.rate, takes_self=True))
    tokens: float = attrs.field(default=attrs.Factory(lambda self: self.capacity, takes_self=True))
    updated: float | None = None

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(
                self.capacity, self.tokens + (now - self.updated) * self.rate / self.per
            )
        self.updated = now if self.updated is None else max(self.updated, now)

    def take(self, now: float, cost: float = 1.0) -> float | None:
        """Take `cost` tokens: None on success, else the seconds to wait before retrying."""
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return None
        return (cost - self.tokens) * self.per / self.rate


@attrs.define(eq=False)
class KeyedLimiter:
    """One bucket per key (a session, a user), keeping at most `max_keys` of them.

    The least recently used bucket is forgotten first; a forgotten key starts
    again with a full bucket, which errs on the side of the user.
    """

    rate: float
    per: float = 60.0
    max_keys: int = 100_000
    _buckets: OrderedDict[Hashable, TokenBucket] = attrs.field(factory=OrderedDict, init=False)

    def take(self, key: Hashable, now: float, cost: float = 1.0) -> float | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.per)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now, cost)

    def reconfigure(self, rate: float) -> None:
        """Apply a new rate to every bucket (config reload)."""
        self.rate = rate
        for bucket in self._buckets.values():
            bucket.rate = bucket.capacity = rate
            bucket.tokens = min(bucket.tokens, rate)


@attrs.define(eq=False)
class LoginLockout:
    """After `failures` failed logins from one address within `window` seconds,
    refuse logins from it for `lockout` seconds (loopback included)."""

    failures: int = 5
    window: float = 60.0
    lockout: float = 300.0
    max_addresses: int = 100_000
    _recent: OrderedDict[str, deque[float]] = attrs.field(factory=OrderedDict, init=False)
    _locked_until: dict[str, float] = attrs.field(factory=dict, init=False)

    def retry_after(self, address: str, now: float) -> float | None:
        """Seconds until `address` may try again, or None if it may try now."""
        until = self._locked_until.get(address)
        if until is None:
            return None
        if now >= until:
            del self._locked_until[address]
            return None
        return until - now

    def failed(self, address: str, now: float) -> None:
        attempts = self._recent.get(address)
        if attempts is None:
            attempts = self._recent[address] = deque()
            if len(self._recent) > self.max_addresses:
                self._recent.popitem(last=False)
        self._recent.move_to_end(address)
        attempts.append(now)
        while attempts and attempts[0] <= now - self.window:
            attempts.popleft()
        if len(attempts) >= self.failures:
            self._locked_until[address] = now + self.lockout
            attempts.clear()

    def succeeded(self, address: str) -> None:
        self._recent.pop(address, None)
