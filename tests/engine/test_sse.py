"""The SSE decoder, with the body cut at every possible place."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from aleph.engine.providers.sse import SseDecoder, SseEvent
from tests.peers.anthropic_peer import anthropic_sse
from tests.peers.openai_peer import openai_sse


def _decode(pieces: list[bytes]) -> list[SseEvent]:
    decoder = SseDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.close()


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def test_fields_comments_and_line_endings() -> None:
    body = (
        b": keep-alive\r\n"
        b"event: greeting\r\ndata: one\r\ndata: two\r\nid: 7\r\n\r\n"
        b"data:no-space\n\n"
        b"retry: 100\rdata: cr only\r\r"
        b"data: \xc3\xa9t\xc3\xa9\n\n"
        b"data: unterminated"
    )
    assert _decode([body]) == [
        SseEvent("greeting", "one\ntwo"),
        SseEvent("message", "no-space"),
        SseEvent("message", "cr only"),
        SseEvent("message", "été"),
    ]


@given(st.lists(st.integers(min_value=0, max_value=5000), max_size=40))
def test_any_cut_gives_the_same_events(cuts: list[int]) -> None:
    body = openai_sse(["Grüße ", "🙂", "\r\nend"], [("c", "f", '{"a": "ü"}')])
    body += anthropic_sse(["x"]).replace(b"\n", b"\r\n")
    assert _decode(_cut(body, cuts)) == _decode([body])


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=10))
def test_never_raises_on_garbage(data: bytes, cuts: list[int]) -> None:
    assert _decode(_cut(data, cuts)) == _decode([data])
