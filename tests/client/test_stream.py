"""SessionCursor: where a client stands in a session's events (sans-IO)."""

from __future__ import annotations

from typing import Any

from aleph.client.stream import SessionCursor, Verdict


def event(seq: int) -> dict[str, Any]:
    return {"session_id": "s_1", "seq": seq, "type": "run.delta"}


def test_a_fresh_cursor_subscribes_without_a_position() -> None:
    assert SessionCursor("s_1").subscribe_params() == {"session_id": "s_1"}


def test_after_subscribing_it_resumes_from_the_last_seq_and_epoch() -> None:
    cursor = SessionCursor("s_1")
    cursor.subscribed({"epoch": "e_1", "last_seq": 7, "replayed": 0})
    assert cursor.accept(event(8)) is Verdict.NEW
    assert cursor.subscribe_params() == {"session_id": "s_1", "after_seq": 8, "epoch": "e_1"}


def test_replayed_events_already_seen_are_duplicates() -> None:
    cursor = SessionCursor("s_1", epoch="e_1", last_seq=5)
    cursor.subscribed({"epoch": "e_1", "last_seq": 9, "replayed": 4})
    assert cursor.last_seq == 5  # a resume keeps its place: the replay follows
    assert [cursor.accept(event(s)) for s in (5, 6, 6, 7)] == [
        Verdict.DUPLICATE,
        Verdict.NEW,
        Verdict.DUPLICATE,
        Verdict.NEW,
    ]


def test_a_jump_is_a_gap_and_does_not_move_the_cursor() -> None:
    cursor = SessionCursor("s_1", epoch="e_1", last_seq=5)
    assert cursor.accept(event(7)) is Verdict.GAP
    assert cursor.last_seq == 5


def test_an_event_that_overtakes_a_fresh_subscription_sets_the_start() -> None:
    cursor = SessionCursor("s_1")
    assert cursor.accept(event(12)) is Verdict.NEW
    cursor.subscribed({"epoch": "e_2", "last_seq": 11, "replayed": 0})
    assert (cursor.last_seq, cursor.epoch) == (12, "e_2")


def test_a_created_session_starts_at_zero_and_reset_forgets() -> None:
    cursor = SessionCursor("s_1")
    cursor.created()
    assert cursor.subscribe_params() == {"session_id": "s_1", "after_seq": 0}
    assert cursor.accept(event(1)) is Verdict.NEW
    cursor.reset()
    assert not cursor.positioned
    assert cursor.subscribe_params() == {"session_id": "s_1"}
