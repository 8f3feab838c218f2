"""The stand-in for trio-websocket's message channel: the order of attach, messages and end."""

from __future__ import annotations

import trio
import trio.testing

from aleph.gateway.transport import _FrameSink


async def test_a_message_before_attach_waits_for_it() -> None:
    sink, seen, ended = _FrameSink(), [], []

    async def on_message(message: str | bytes) -> None:
        seen.append(message)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.send, "early")
        await trio.testing.wait_all_tasks_blocked()
        assert seen == []
        sink.attach(on_message, lambda: ended.append(True))
    await sink.send("late")
    assert seen == ["early", "late"]
    assert ended == []


async def test_an_end_before_attach_is_passed_on_once_attached() -> None:
    sink, ended = _FrameSink(), []

    async def on_message(message: str | bytes) -> None:
        raise AssertionError("no message was sent")

    async with sink:
        pass  # the reader task ends before the connection is served
    await sink.aclose()
    sink.attach(on_message, lambda: ended.append(True))
    assert ended == [True]


async def test_the_end_is_passed_on_once() -> None:
    sink, ended = _FrameSink(), []

    async def on_message(message: str | bytes) -> None:
        pass

    sink.attach(on_message, lambda: ended.append(True))
    await sink.aclose()  # trio-websocket's close path
    async with sink:
        pass  # and the reader task's own exit
    assert ended == [True]
