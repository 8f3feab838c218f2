"""Timestamps on the wire: ISO-8601 in UTC with milliseconds and a Z.

Every event carries one (``2026-11-22T10:00:00.000Z``), so formatting is on
the hot path: the date-and-time part is formatted once per second and cached
(strftime per call was the largest single cost of a ``system.ping``, see
docs/performance.md).
"""

from __future__ import annotations

import time

__all__ = ["iso_utc", "utc_now_iso"]

_cached: tuple[int, str] = (-1, "")


def iso_utc(timestamp: float) -> str:
    """Wall-clock seconds since the epoch as 2026-11-22T10:00:00.000Z."""
    global _cached
    # Round to the microsecond first, as datetime does: 0.123 is 0.12299... in binary.
    second, micros = divmod(round(timestamp * 1_000_000), 1_000_000)
    if second != _cached[0]:
        _cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)))
    return f"{_cached[1]}{micros // 1000:03d}Z"


def utc_now_iso() -> str:
    """Now, as :func:`iso_utc` formats it."""
    return iso_utc(time.time())
