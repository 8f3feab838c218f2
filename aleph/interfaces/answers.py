"""What the bots say themselves, and the chat commands (/new, /clear, /history, /cancel).

Library-free. The texts are short and plain (no formatting), because they
go to strangers as well as to the owner; the commands act on the chat's
paired session through the :class:`~aleph.sessions.SessionHub`'s public API.
"""

from __future__ import annotations

import math
from typing import Any

from aleph.protocol.errors import QueueFull, RpcError, ShuttingDown
from aleph.security.tokens import OWNER
from aleph.sessions import Session, SessionHub

__all__ = [
    "APPROVED",
    "CANCELLED",
    "DENIED",
    "INLINE_PRIVATE",
    "INLINE_SLOW",
    "NOT_HERE",
    "PAIRING_UNAVAILABLE",
    "REFUSAL",
    "attachments_refused",
    "pairing_offer",
    "run_command",
    "run_failed",
    "send_failed",
    "slow_down",
]

REFUSAL = "Sorry, this is a private assistant."
PAIRING_UNAVAILABLE = "Pairing is not possible right now; please try again later."
APPROVED = "You're paired: the owner approved this chat. Send me a message!"
DENIED = "The owner declined the pairing request for this chat."
CANCELLED = "(cancelled)"
NOT_HERE = "I don't answer here."
INLINE_PRIVATE = "This assistant is private. Pair with it in a direct message first."
INLINE_SLOW = "(no answer in time; ask me in a direct message)"
HELP = (
    "Hi, I'm Aleph. Send me a message and I'll answer here.\n"
    "/new starts a new conversation, /clear forgets this one, "
    "/history shows the last messages, /cancel stops an answer."
)
HISTORY_SHOWN = 10
HISTORY_CHARS = 300


def pairing_offer(code: str, ttl: float) -> str:
    minutes = max(1, math.ceil(ttl / 60))
    return (
        "Hi! This is a private assistant. To use it from this chat, ask its owner "
        f"to approve the pairing code {code}:\n\n"
        f"    aleph ctl pairing approve {code}\n\n"
        f"The code expires in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def slow_down(wait: float) -> str:
    seconds = max(1, math.ceil(wait))
    return (
        "You're sending messages faster than I can answer. "
        f"Please wait about {seconds} second{'s' if seconds != 1 else ''} and try again."
    )


def attachments_refused(names: tuple[str, ...]) -> str:
    listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return f"I could not take these files (too large or unreadable): {listed}"


def send_failed(exc: RpcError) -> str:
    if isinstance(exc, QueueFull):
        return "I'm still working on your earlier messages; please wait for those answers."
    if isinstance(exc, ShuttingDown):
        return "I'm restarting; please send that again in a minute."
    return f"I could not take that message: {exc.message}"


def run_failed(error: dict[str, Any]) -> str:
    message = str(error.get("message") or "the model could not answer")
    return f"⚠️ Sorry, that failed: {message[:300]}"


def _line(message: dict[str, Any]) -> str:
    who = {"user": "you", "assistant": "aleph", "tool": "tool"}.get(message.get("role", ""), "?")
    text = " ".join(str(message.get("text", "")).split())
    if len(text) > HISTORY_CHARS:
        text = text[: HISTORY_CHARS - 1] + "…"
    return f"{who}: {text}"


async def run_command(hub: SessionHub, session: Session, name: str) -> str:
    """Carry out a chat command on the paired session; the text to answer with."""
    if name in ("new", "clear"):
        cleared = await hub.clear(OWNER, session.id)
        if name == "new":
            return "Started a new conversation."
        return f"Cleared {cleared} message{'s' if cleared != 1 else ''}."
    if name == "cancel":
        cancelled = await hub.cancel(OWNER, session.id)
        return "Cancelled." if cancelled else "Nothing is running."
    if name == "history":
        page = await hub.history(OWNER, session.id, HISTORY_SHOWN, None)
        messages = [m for m in page["messages"] if m.get("role") != "tool"]
        if not messages:
            return "No messages yet."
        return "\n".join(_line(message) for message in messages)
    return HELP
