"""Text for chat platforms: length measures, splitting, and Telegram-safe HTML.

Sans-IO and library-free. Limits differ per platform: Telegram allows 4,096
characters per message counted in UTF-16 code units after its entity parser
has run; Discord 2,000 characters. :func:`split_text` cuts a long answer into
chunks that fit, preferring paragraph, line and word boundaries, and keeps a
fenced code block fenced on both sides of a cut.

:func:`telegram_html` turns the model's Markdown into the small HTML subset
Telegram's ``parse_mode=HTML`` accepts (``<b> <i> <code> <pre> <a>``),
escaping everything else, so that any prefix of a streamed answer gives
balanced tags. If Telegram rejects it anyway, the adapter falls back to the
plain text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

__all__ = [
    "DISCORD_LIMIT",
    "TELEGRAM_LIMIT",
    "close_open_fence",
    "split_text",
    "telegram_html",
    "utf16_len",
]

TELEGRAM_LIMIT = 4096
DISCORD_LIMIT = 2000
FENCE = "```"
_FENCE_MARGIN = 8  # room for a closing "\n```" and a reopening "```\n"


def utf16_len(text: str) -> int:
    """Telegram's length: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def close_open_fence(text: str) -> str:
    """`text` with a closing fence added if a ``` block is left open (a partial answer)."""
    if text.count(FENCE) % 2:
        return text + ("" if text.endswith("\n") else "\n") + FENCE
    return text


def _fit(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """The largest n such that measure(text[:n]) <= limit (n >= 1)."""
    if measure(text) <= limit:
        return len(text)
    lo, hi = 1, min(len(text), limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _cut_point(window: str) -> int:
    """Where to cut a full window: the last paragraph, line or word break in its
    last third, else hard at the end."""
    floor = len(window) * 2 // 3
    for separator in ("\n\n", "\n", " "):
        index = window.rfind(separator, floor)
        if index > 0:
            return index + len(separator)
    return len(window)


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Cut `text` into chunks each measuring at most `limit`; never an empty list.

    A cut inside a fenced code block closes the fence at the end of the chunk
    and reopens it at the start of the next. Cuts are stable: growing `text`
    never moves an earlier cut once the chunk after it exists.
    """
    if measure(text) <= limit:
        return [text]
    chunks: list[str] = []
    rest = text
    reopen = False
    budget = limit - _FENCE_MARGIN
    while rest:
        head = FENCE + "\n" if reopen else ""
        if measure(head + rest) <= limit and not (head + rest).count(FENCE) % 2:
            chunks.append(head + rest)
            break
        window = rest[: _fit(rest, budget - measure(head), measure)]
        cut = _cut_point(window) if len(window) < len(rest) else len(window)
        chunk, rest = head + rest[:cut], rest[cut:]
        reopen = bool(chunk.count(FENCE) % 2)
        if reopen:
            chunk = close_open_fence(chunk)
        chunks.append(chunk.rstrip("\n") if not reopen else chunk)
    return [chunk for chunk in chunks if chunk.strip()] or [text[:1]]


_INLINE = re.compile(
    r"(?P<code>`[^`\n]+`)"
    r"|(?P<bold>\*\*(?=\S)[^*\n]+?(?<=\S)\*\*)"
    r"|(?P<italic>(?<![\w*])[*_](?=\S)[^*_\n]+?(?<=\S)[*_](?![\w*]))"
    r"|(?P<link>\[[^\]\n]+\]\(https?://[^)\s]+\))"
)


def _inline(text: str) -> str:
    """One line outside code blocks: escape it, keep simple bold/italic/code/links."""
    out: list[str] = []
    position = 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[position : match.start()], quote=False))
        token = match.group(0)
        if match.group("code"):
            out.append(f"<code>{html.escape(token[1:-1], quote=False)}</code>")
        elif match.group("bold"):
            out.append(f"<b>{html.escape(token[2:-2], quote=False)}</b>")
        elif match.group("italic"):
            out.append(f"<i>{html.escape(token[1:-1], quote=False)}</i>")
        else:
            label, _, url = token[1:-1].partition("](")
            out.append(f'<a href="{html.escape(url)}">{html.escape(label, quote=False)}</a>')
        position = match.end()
    out.append(html.escape(text[position:], quote=False))
    return "".join(out)


def telegram_html(markdown: str) -> str:
    """Telegram ``parse_mode=HTML`` for `markdown`; balanced for any prefix of it."""
    out: list[str] = []
    in_code = False
    code: list[str] = []
    language = ""
    for line in markdown.split("\n"):
        if line.lstrip().startswith(FENCE):
            if in_code:
                out.append(_pre(code, language))
                in_code, code = False, []
            else:
                in_code, language = True, line.strip()[3:].strip()
            continue
        if in_code:
            code.append(line)
        else:
            out.append(_inline(line) + "\n")
    if in_code:
        out.append(_pre(code, language))
    return "".join(out).rstrip("\n")


def _pre(lines: list[str], language: str) -> str:
    body = html.escape("\n".join(lines), quote=False)
    if language and re.fullmatch(r"[\w+#.-]{1,30}", language):
        return f'<pre><code class="language-{language}">{body}</code></pre>\n'
    return f"<pre>{body}</pre>\n"
