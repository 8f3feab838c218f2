"""Where a client stands in each session's event stream (sans-IO).

A :class:`SessionCursor` remembers the last ``seq`` and the ``epoch`` a
client has seen in one session and judges every ``session.event`` that
arrives: the next one is :attr:`Verdict.NEW`, one already seen (a replay that
overlaps what arrived live) is :attr:`Verdict.DUPLICATE`, and a jump is a
:attr:`Verdict.GAP`. :meth:`SessionCursor.subscribe_params` says how to
(re)subscribe: resume with ``after_seq`` and ``epoch`` once a position is
known, a fresh subscription otherwise. After a gap, or a ``-32010`` answer
to a resume, the client reloads ``session.history`` and calls
:meth:`SessionCursor.reset`, so the next subscription starts afresh.

No I/O here: :mod:`aleph.client.feed` drives it over a Trio connection, and
`aleph chat` and the TUI share both.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

__all__ = ["RESUME_GAP", "SessionCursor", "Verdict"]

RESUME_GAP = -32010  # PROTOCOL.md: the events after after_seq are gone; reload history


class Verdict(enum.Enum):
    """What to do with one event."""

    NEW = "new"  # the next event: apply it
    DUPLICATE = "duplicate"  # already applied: drop it
    GAP = "gap"  # events are missing: reload history and subscribe afresh


@attrs.define(eq=False)
class SessionCursor:
    """The position of one client in one session's events.

    `last_seq` is None until the client knows where it stands (before its
    first subscription answers, or after :meth:`reset`).
    """

    session_id: str
    epoch: str | None = None
    last_seq: int | None = None

    @property
    def positioned(self) -> bool:
        return self.last_seq is not None

    def subscribe_params(self) -> dict[str, Any]:
        """Params for session.subscribe: a resume once positioned, else a fresh start."""
        params: dict[str, Any] = {"session_id": self.session_id}
        if self.last_seq is not None:
            params["after_seq"] = self.last_seq
            if self.epoch is not None:
                params["epoch"] = self.epoch
        return params

    def created(self) -> None:
        """session.create subscribed us to a new session: its events start at seq 1."""
        self.epoch, self.last_seq = None, 0

    def subscribed(self, result: dict[str, Any]) -> None:
        """Take in session.subscribe's answer ({"epoch", "last_seq", "replayed"}).

        A fresh subscription starts after the answer's `last_seq`, unless
        live events numbered beyond it have already been applied; a resume
        keeps its position, since the replayed events follow the answer.
        """
        self.epoch = str(result["epoch"])
        if self.last_seq is None:
            self.last_seq = int(result["last_seq"])

    def accept(self, event: dict[str, Any]) -> Verdict:
        """Judge one session.event's params, advancing on NEW."""
        seq = int(event["seq"])
        if self.last_seq is None:
            # An event that overtook the answer to a fresh subscription: the
            # stream starts here (history covers what came before).
            self.last_seq = seq
            return Verdict.NEW
        if seq <= self.last_seq:
            return Verdict.DUPLICATE
        if seq != self.last_seq + 1:
            return Verdict.GAP
        self.last_seq = seq
        return Verdict.NEW

    def reset(self) -> None:
        """Forget the position (after a gap): the next subscription starts afresh."""
        self.epoch, self.last_seq = None, None
