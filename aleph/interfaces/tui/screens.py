"""Modal screens of the TUI: the help screen and the delete confirmation."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static

__all__ = ["ConfirmScreen", "HelpScreen"]

HELP = """\
# Aleph TUI

One screen to watch and drive the agent, over the gateway's WebSocket protocol.

| key | does |
|---|---|
| **enter** | send the line (queued while disconnected, sent once connected) |
| **up / down** | walk through what you sent before |
| **ctrl+n** | new session |
| **esc** | cancel the run in progress |
| **ctrl+l** | clear the session's history |
| **f8** | delete the session (asks first) |
| **ctrl+o** | load older messages (also: page up at the top) |
| **ctrl+up / ctrl+down** | previous / next session |
| **tab** | move between the input, the sessions and the transcript |
| **ctrl+r** | reconnect now |
| **f1** | this help |
| **ctrl+q** | quit |

**Panes.** Sessions (left; `● N` counts answers you have not seen), the
transcript (middle; Markdown, streamed as it is written), tools (right: each
call and its result as it happens), the status bar (connection, ping, tokens
per second, notices such as rate limits).

When the connection drops, a banner says so; the TUI reconnects and resumes
every session from the last event it saw. Press **esc** to close this help.
"""


class HelpScreen(ModalScreen[None]):
    """Key bindings and what each pane shows; esc, f1 or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Markdown(HELP)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; y confirms, n or esc refuses."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(self.question, markup=False)
            yield Static("y: yes    n / esc: no", classes="hint")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
