"""Splitting, fences, Telegram HTML: plain functions, no bot library."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aleph.interfaces.formatting import (
    close_open_fence,
    split_text,
    telegram_html,
    utf16_len,
)
from tests.peers.telegram_peer import parse_html


def test_utf16_counts_astral_characters_twice() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("é") == 1
    assert utf16_len("😀") == 2


def test_short_text_is_one_chunk() -> None:
    assert split_text("hello", 10) == ["hello"]


def test_cuts_prefer_paragraphs_then_lines_then_words() -> None:
    text = "a" * 70 + "\n\n" + "b" * 50
    assert split_text(text, 100) == ["a" * 70, "b" * 50]
    words = " ".join(["word"] * 60)
    chunks = split_text(words, 100)
    assert all(len(c) <= 100 for c in chunks)
    assert " ".join(chunks).split() == words.split()


def test_unbroken_text_is_cut_hard() -> None:
    chunks = split_text("x" * 250, 100)
    assert "".join(chunks) == "x" * 250
    assert all(len(c) <= 100 for c in chunks)


def test_a_cut_inside_a_code_block_keeps_both_halves_fenced() -> None:
    text = "intro\n```python\n" + "x = 1\n" * 60 + "```\nafter"
    chunks = split_text(text, 120)
    assert all(c.count("```") % 2 == 0 for c in chunks)
    assert chunks[1].startswith("```\n")


def test_telegram_measure_is_used() -> None:
    chunks = split_text("😀" * 100, 50, utf16_len)
    assert all(utf16_len(c) <= 50 for c in chunks)
    assert "".join(chunks) == "😀" * 100


@settings(deadline=None)  # the machine is shared: no per-example deadline
@given(st.text(alphabet=st.sampled_from("ab \n`😀<&*"), max_size=600), st.integers(40, 200))
def test_split_property(text: str, limit: int) -> None:
    chunks = split_text(text, limit, utf16_len)
    assert chunks
    assert all(utf16_len(c) <= limit for c in chunks)
    if "`" not in text and text.strip():
        assert "".join(chunks).split() == text.split()


def test_close_open_fence() -> None:
    assert close_open_fence("```py\nx") == "```py\nx\n```"
    assert close_open_fence("```py\nx\n```") == "```py\nx\n```"


def test_telegram_html_escapes_and_formats() -> None:
    html = telegram_html("**bold** _it_ `a<b` [x](https://e.com/?a=1&b=2) 1 < 2 & 3")
    assert html == (
        "<b>bold</b> <i>it</i> <code>a&lt;b</code> "
        '<a href="https://e.com/?a=1&amp;b=2">x</a> 1 &lt; 2 &amp; 3'
    )


def test_telegram_html_closes_a_streamed_code_block() -> None:
    assert telegram_html("see:\n```python\nif a<b:") == (
        'see:\n<pre><code class="language-python">if a&lt;b:</code></pre>'
    )


@settings(deadline=None)  # the machine is shared: no per-example deadline
@given(st.text(alphabet=st.sampled_from("ab \n`*_[]()<>&:/h"), max_size=300))
def test_telegram_html_always_parses(markdown: str) -> None:
    """Whatever the model writes, and wherever the stream stops, Telegram accepts it."""
    for end in (len(markdown), len(markdown) // 2):
        _, error = parse_html(telegram_html(markdown[:end]))
        assert error is None
