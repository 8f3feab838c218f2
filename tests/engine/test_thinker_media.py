"""The Thinker's prompt and context budget; the MediaProcessor's checks."""

from __future__ import annotations

import base64
import datetime as dt
import struct
import zlib

import pytest

from aleph.config import MediaConfig, ThinkerConfig
from aleph.engine.api import Attachment, EngineError, HistoryMessage
from aleph.engine.conversation import Message, ToolSpec
from aleph.engine.media import MediaProcessor, image_size
from aleph.engine.thinker import Thinker, estimate_tokens
from aleph.protocol.errors import InvalidParams
from tests.engine.conftest import request


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x00" * width * 3 for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))  # fmt: skip


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 9 + b"\xff\xc0\x00\x11\x08\x00\x20\x00\x40"


def test_system_prompt_parts() -> None:
    thinker = Thinker(ThinkerConfig(persona="You are Testy.", timezone="Europe/Paris"))
    when = dt.datetime(2026, 11, 22, 10, 30, tzinfo=dt.UTC)
    prompt = thinker.system_prompt(
        request(session_type="guest", channel="telegram:42", system_prompt="Speak French."),
        [ToolSpec("calculator", "Do sums.", {})],
        now=when,
    )
    assert prompt.startswith("You are Testy.\n\nInstructions for this session:\nSpeak French.")
    assert "Sunday 2026-11-22 10:30" in prompt
    assert "guest session" in prompt
    assert "The message came from: telegram:42." in prompt
    assert "- calculator: Do sums." in prompt
    only = Thinker(ThinkerConfig(prompt_parts=["channel"])).system_prompt(request(), [])
    assert only == "The message came from: websocket."


def test_a_long_session_still_fits_the_budget() -> None:
    thinker = Thinker(ThinkerConfig(context_budget=2000))
    history: list[HistoryMessage] = []
    for turn in range(500):
        history.append(HistoryMessage("user", f"question {turn} " + "words " * 40))
        if turn % 3 == 0:
            calls = [{"id": f"c{turn}", "name": "calculator", "arguments": {"expression": "1"}}]
            history.append(HistoryMessage("assistant", "", {"tool_calls": calls}))
            history.append(
                HistoryMessage("tool", "1" * 300, {"call_id": f"c{turn}", "name": "calculator"})
            )
        history.append(HistoryMessage("assistant", f"answer {turn} " + "text " * 60))
    system = thinker.system_prompt(request(), [])
    current = Message("user", "the newest question")
    kept = thinker.trim(system, thinker.history(history), current)
    total = len(system) // 4 + estimate_tokens(current) + sum(estimate_tokens(m) for m in kept)
    assert total <= 2000
    assert len(kept) > 4
    assert kept[0].role == "user"
    assert kept[-1].text.startswith("answer 499")  # the newest are kept
    for index, message in enumerate(kept):  # calls and results stay together
        if message.tool_calls:
            assert kept[index + 1].role == "tool"
            assert kept[index + 1].call_id == message.tool_calls[0].id
        if message.role == "tool":
            assert kept[index - 1].tool_calls


def test_budget_smaller_than_the_message_keeps_only_the_message() -> None:
    thinker = Thinker(ThinkerConfig(context_budget=256))
    kept = thinker.trim("s", [Message("user", "old")], Message("user", "x" * 5000))
    assert kept == []


MEDIA = MediaProcessor(MediaConfig(max_attachment_bytes=10_000, max_inline_text_chars=50,
                                   max_attachments=3, max_total_bytes=15_000))  # fmt: skip


def _wire(name: str, mime: str, data: bytes) -> dict[str, str]:
    return {"name": name, "mime_type": mime, "data": base64.b64encode(data).decode()}


def test_decode_and_check() -> None:
    png = _png(3, 2)
    assert image_size(png) == (3, 2)
    assert image_size(JPEG) == (64, 32)
    assert MEDIA.decode(_wire("a.png", "image/png", png)).data == png
    assert (
        MEDIA.decode(_wire("n.txt", "text/plain; charset=utf-8", b"hi")).mime_type == "text/plain"
    )
    refusals = {
        "not valid base64": {"name": "a", "mime_type": "text/plain", "data": "!!!"},
        "but the data is a JPEG image": _wire("a.png", "image/png", JPEG),
        "but the data is not an image": _wire("a.png", "image/png", b"hello"),
        "but the data is binary": _wire("a.txt", "text/plain", png),
        "not UTF-8": _wire("a.txt", "text/plain", b"\xff\xfe\xfa"),
        "application/pdf is not supported": _wire("a.pdf", "application/pdf", b"%PDF-1.4"),
        "image/bmp images are not supported": _wire("a.bmp", "image/bmp", b"BM"),
        "larger than": _wire("big.txt", "text/plain", b"x" * 20_000),
    }
    for reason, raw in refusals.items():
        with pytest.raises(InvalidParams, match=reason) as caught:
            MEDIA.decode(raw)
        assert caught.value.code == -32602


def test_prepare_inlines_text_and_describes_images_to_blind_models() -> None:
    text = Attachment("notes.md", "text/markdown", ("line\n" * 30).encode())
    image = Attachment("pic.png", "image/png", _png(4, 5))
    seeing = MEDIA.prepare([text, image], accepts_images=True)
    assert len(seeing.images) == 1
    assert '<file name="notes.md" type="text/markdown">' in seeing.text
    assert "[truncated: 100 more characters not shown]" in seeing.text
    blind = MEDIA.prepare([image], accepts_images=False)
    assert blind.images == ()
    assert "pic.png (image/png, 4x5 pixels" in blind.text
    assert "cannot see images" in blind.text
    with pytest.raises(EngineError) as caught:
        MEDIA.prepare([text] * 4, accepts_images=True)
    assert caught.value.code == -32602
