"""SessionModel: history pages and events into one transcript (sans-IO)."""

from __future__ import annotations

from typing import Any

from aleph.interfaces.tui.model import SessionModel


def ev(kind: str, run_id: str | None = "r_1", **data: Any) -> dict[str, Any]:
    return {"type": kind, "run_id": run_id, "data": data}


def msg(number: int, role: str = "user", run_id: str | None = None) -> dict[str, Any]:
    return {"id": f"m_{number}", "role": role, "text": f"text {number}", "run_id": run_id}


def test_a_run_streams_then_becomes_a_message() -> None:
    model = SessionModel("s_1")
    model.apply(ev("message.user", message_id="m_1", text="hi"), 0.0)
    model.apply(ev("run.started"), 0.0)
    for word in ("[echo] ", "hi"):
        model.apply(ev("run.delta", text=word), 0.5)
    assert model.live is not None
    assert (model.live.text, model.live.deltas) == ("[echo] hi", 2)
    assert model.rate(1.0) == 2.0
    assert model.apply(ev("message.assistant", message_id="m_2", text="[echo] hi"), 1.0)
    model.apply(ev("run.finished", usage={"output_tokens": 4}), 2.0)
    assert model.live is None
    assert model.run_id is None
    assert [(e.kind, e.text) for e in model.entries] == [("user", "hi"), ("assistant", "[echo] hi")]
    assert model.back == 2
    assert model.rate(3.0) == 2.0  # the last run's: 4 tokens in 2 s


def test_a_message_in_both_a_page_and_an_event_is_shown_once() -> None:
    model = SessionModel("s_1")
    model.apply(ev("message.user", message_id="m_3", text="text 3"), 0.0)
    model.load_page([msg(1), msg(2, "assistant"), msg(3)], has_more=True, older=False)
    assert [e.message_id for e in model.entries] == ["m_1", "m_2", "m_3"]
    assert model.loaded
    assert model.has_more
    assert model.oldest_id == "m_1"
    generation = model.generation
    added = model.load_page([msg(0)], has_more=False, older=True)
    assert added == 1
    assert model.front == 1
    assert model.generation == generation
    assert model.entries[0].message_id == "m_0"
    assert not model.has_more


def test_cancel_keeps_the_partial_answer_and_says_so() -> None:
    model = SessionModel("s_1")
    model.apply(ev("run.started"), 0.0)
    model.apply(ev("run.delta", text="half an"), 0.1)
    model.apply(ev("run.cancelled", reason="cancelled"), 0.2)
    assert [(e.kind, e.text) for e in model.entries] == [
        ("assistant", "half an"),
        ("notice", "run cancelled (cancelled)"),
    ]
    assert model.live is None


def test_tools_are_tracked_from_start_to_result() -> None:
    model = SessionModel("s_1")
    model.apply(ev("tool.started", call_id="c1", name="calculator", arguments={"x": 1}), 0.0)
    assert not model.tools[0].finished
    model.apply(ev("tool.finished", call_id="c1", result={"value": 42}), 0.1)
    call = model.tools[0]
    assert (call.name, call.result, call.finished) == ("calculator", {"value": 42}, True)


def test_clear_and_reset_start_a_new_generation() -> None:
    model = SessionModel("s_1")
    model.load_page([msg(1)], has_more=False, older=False)
    first = model.generation
    model.apply(ev("session.cleared", None, cleared=1), 0.0)
    assert model.entries == []
    assert model.generation == first + 1
    model.reset()
    assert not model.loaded
    assert model.generation == first + 2


def test_a_failed_run_is_news_and_a_notice() -> None:
    model = SessionModel("s_1")
    assert model.apply(ev("run.failed", error={"message": "down"}), 0.0)
    assert model.entries[-1].kind == "notice"
