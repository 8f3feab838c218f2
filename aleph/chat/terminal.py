"""The terminal side of `aleph chat`: the input prompt and the output.

:class:`LinePrompt` reads one line with prompt_toolkit (history kept in a
file across runs, Tab completes the slash commands) in a worker thread, so
the Trio loop keeps streaming events while the user types; output printed
meanwhile goes above the prompt (``patch_stdout``). Without a terminal
(stdin piped) it falls back to plain ``input()``.

Ctrl-C at the prompt does not quit: it comes back as :data:`INTERRUPTED`;
Ctrl-D (end of input) comes back as None.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Final

import trio

__all__ = ["COMMANDS", "INTERRUPTED", "LinePrompt", "write"]

COMMANDS: Final = (
    "/new",
    "/sessions",
    "/switch",
    "/history",
    "/clear",
    "/cancel",
    "/quit",
    "/help",
)
INTERRUPTED: Final = "\x03"
PROMPT: Final = "you> "


def write(text: str) -> None:
    """Print without a newline, now (sys.stdout may be prompt_toolkit's proxy)."""
    sys.stdout.write(text)
    sys.stdout.flush()


class LinePrompt:
    """One prompt_toolkit session for the whole chat (one history, one completer)."""

    def __init__(self, history_file: Path | None, *, interactive: bool | None = None) -> None:
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self._session: object | None = None
        if self.interactive:
            from prompt_toolkit import PromptSession
            from prompt_toolkit.completion import WordCompleter
            from prompt_toolkit.history import FileHistory, InMemoryHistory

            history: FileHistory | InMemoryHistory = InMemoryHistory()
            if history_file is not None:
                try:
                    history_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    history_file.touch(mode=0o600, exist_ok=True)
                    history = FileHistory(str(history_file))
                except OSError:
                    pass  # no history across runs rather than no chat
            self._session = PromptSession(
                history=history,
                completer=WordCompleter(list(COMMANDS), sentence=True),
                complete_while_typing=False,
            )

    def _ask(self) -> str | None:
        try:
            if self._session is None:
                return input()
            from prompt_toolkit import PromptSession

            assert isinstance(self._session, PromptSession)
            return str(self._session.prompt(PROMPT))
        except KeyboardInterrupt:
            return INTERRUPTED
        except EOFError:
            return None

    async def read(self) -> str | None:
        """The next line (INTERRUPTED for Ctrl-C, None at the end of input)."""
        return await trio.to_thread.run_sync(self._ask)

    def output_context(self) -> contextlib.AbstractContextManager[object]:
        """A context manager that keeps output above the prompt while it is shown."""
        if self._session is None:
            return contextlib.nullcontext()
        from prompt_toolkit.patch_stdout import patch_stdout

        return patch_stdout(raw=True)
