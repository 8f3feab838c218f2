from __future__ import annotations

import time

from aleph.security.limits import KeyedLimiter, LoginLockout, TokenBucket
from aleph.security.tokens import TokenRecord, TokenRegistry, hash_token, new_token


def test_bucket_bursts_to_capacity_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=20, per=60.0)
    assert all(bucket.take(0.0) is None for _ in range(20))
    wait = bucket.take(0.0)
    assert wait is not None
    assert abs(wait - 3.0) < 1e-9  # one token every 3 s
    assert bucket.take(2.9) is not None
    assert bucket.take(3.0) is None


def test_keyed_limiter_is_per_key_and_bounded() -> None:
    limiter = KeyedLimiter(rate=1, per=60.0, max_keys=2)
    assert limiter.take("a", 0) is None
    assert limiter.take("a", 0) is not None
    assert limiter.take("b", 0) is None
    assert limiter.take("c", 0) is None  # evicts "a", the least recently used
    assert limiter.take("a", 0) is None


def test_lockout_after_five_failures_in_a_minute_for_five_minutes() -> None:
    lockout = LoginLockout(failures=5, window=60.0, lockout=300.0)
    for second in range(4):
        lockout.failed("10.0.0.1", float(second))
    assert lockout.retry_after("10.0.0.1", 4.0) is None
    lockout.failed("10.0.0.1", 4.0)
    assert lockout.retry_after("10.0.0.1", 4.0) == 300.0
    assert lockout.retry_after("10.0.0.2", 4.0) is None
    assert lockout.retry_after("10.0.0.1", 303.9) is not None
    assert lockout.retry_after("10.0.0.1", 304.0) is None


def test_failures_spread_beyond_the_window_do_not_lock() -> None:
    lockout = LoginLockout(failures=5, window=60.0, lockout=300.0)
    for index in range(10):
        lockout.failed("a", index * 20.0)  # only 3 within any minute
    assert lockout.retry_after("a", 200.0) is None


def test_tokens_are_long_random_and_verified_by_hash_only() -> None:
    token = new_token()
    assert len(token) >= 40
    assert token != new_token()
    registry = TokenRegistry()
    registry.add(TokenRecord("t1", "phone", "guest", hash_token(token), 0.0, expires_at=100.0))
    principal = registry.verify(token, now=50.0)
    assert principal is not None
    assert (principal.id, principal.role, principal.token_id) == ("guest:phone", "guest", "t1")
    assert registry.verify(token, now=100.0) is None  # expired
    assert registry.verify(token + "x", now=50.0) is None
    assert token not in repr(registry.records())
    registry.remove("t1")
    assert registry.verify(token, now=time.time()) is None
