from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from aleph.timestamps import iso_utc


def reference(timestamp: float) -> str:
    when = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def test_known_values() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1763805600.123) == "2025-11-22T10:00:00.123Z"
    assert iso_utc(1763805600.9999996) == "2025-11-22T10:00:01.000Z"


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_matches_datetime_and_the_cache_never_leaks_a_stale_second(timestamp: float) -> None:
    assert iso_utc(timestamp) == reference(timestamp)
    assert iso_utc(timestamp + 1.0) == reference(timestamp + 1.0)
