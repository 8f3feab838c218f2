"""The built-in echo engine: answers with the user's own text, word by word.

It exists so that a new user can try the daemon with no model configured
(``provider.kind = "echo"``, the default), and so the whole path from
session.send to the streamed answer runs end to end in tests and benchmarks.
It is labelled everywhere: the answer starts with ``[echo] `` and its usage
names the provider ``echo``. It never fails; `delay` (seconds between words,
default 0) makes it slow enough to cancel by hand.
"""

from __future__ import annotations

import re

import attrs
import trio

from aleph.engine.api import AssistantMessage, Emit, RunRequest, TextDelta, Usage

__all__ = ["ECHO_LABEL", "EchoEngine"]

ECHO_LABEL = "[echo] "
_WORDS = re.compile(r"\s*\S+\s*|\s+")


@attrs.define(eq=False)
class EchoEngine:
    """An ExecutionEngine that streams the request's text back."""

    delay: float = 0.0

    async def run(self, request: RunRequest, emit: Emit) -> Usage:
        words = _WORDS.findall(request.text)
        await emit(TextDelta(ECHO_LABEL))
        for word in words:
            if self.delay:
                await trio.sleep(self.delay)
            await emit(TextDelta(word))
        await emit(AssistantMessage(ECHO_LABEL + request.text))
        return Usage(
            input_tokens=len(words), output_tokens=len(words) + 1, provider="echo", model="echo"
        )
