"""StreamPlan and EditThrottle: what to send or edit, and when, as plain functions."""

from __future__ import annotations

from aleph.interfaces.streaming import EditOp, EditThrottle, SendOp, StreamPlan


def _apply(plan: StreamPlan, text: str) -> list[SendOp | EditOp]:
    ops = []
    while (op := plan.next_op(text)) is not None:
        ops.append(op)
        plan.done(op)
    return ops


def test_first_text_is_sent_then_edited() -> None:
    plan = StreamPlan(100)
    assert _apply(plan, "") == []
    assert _apply(plan, "Hel") == [SendOp(0, "Hel")]
    assert _apply(plan, "Hello") == [EditOp(0, "Hello")]
    assert _apply(plan, "Hello") == []


def test_overflow_freezes_the_first_message_and_starts_another() -> None:
    plan = StreamPlan(30)  # 22 characters once room for fences is kept
    _apply(plan, "one two three four")
    ops = _apply(plan, "one two three four five six seven")
    assert ops == [EditOp(0, "one two three four "), SendOp(1, "five six seven")]
    assert _apply(plan, "one two three four five six seven eight") == [
        EditOp(1, "five six seven eight")
    ]


def test_throttle_spaces_operations() -> None:
    throttle = EditThrottle(1.5)
    assert throttle.wait_time(10.0) == 0.0
    throttle.record(10.0)
    assert throttle.wait_time(10.5) == 1.0
    assert throttle.wait_time(12.0) == 0.0
    throttle.push_back(12.0, 5.0)
    assert throttle.wait_time(12.0) == 5.0
