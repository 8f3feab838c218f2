"""`aleph chat`: an interactive terminal client for the daemon.

:func:`main` resolves where to connect (flags, environment, the local
daemon's config and token) and runs :class:`~aleph.chat.app.ChatApp`.
"""

from __future__ import annotations

import os
from pathlib import Path

import trio

from aleph.chat.app import ChatApp
from aleph.chat.target import ChatTarget, history_path, resolve_target
from aleph.chat.terminal import LinePrompt

__all__ = ["ChatApp", "ChatTarget", "main", "resolve_target"]


def main(
    url: str | None,
    token: str | None,
    *,
    config_path: Path | None = None,
    session_id: str | None = None,
) -> int:
    """Run the chat; returns the exit code."""
    target = resolve_target(url, token, config_path)
    prompt = LinePrompt(history_path(os.environ))
    app = ChatApp(target.url, target.token, prompt, session_id=session_id)
    return trio.run(app.run)
