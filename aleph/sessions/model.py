"""What a session is, who may reach it, and the small value types around it.

A :class:`Session` is the in-memory handle of one conversation: its record
(type, creator, title ...), its :class:`~aleph.sessions.events.EventLog`, its
history (SQLite for ``owner`` and ``paired`` sessions, memory for ``guest``
ones) and its queue of runs. :func:`check_access` is the one place that
decides who may see or act on a session; everything else calls it.

Access rules:

- ``owner`` and ``paired`` sessions: the owner principal only.
- ``guest`` sessions: only the principal that created them (an anonymous
  guest, a token guest, or the owner who made one to try it).

A refusal is :class:`~aleph.protocol.errors.NotFound` (-32003), the same
answer as for a session that does not exist, so nobody learns what exists.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio

from aleph.engine.api import Attachment, SessionType
from aleph.protocol.errors import NotFound
from aleph.security.tokens import Principal
from aleph.timestamps import iso_utc

if TYPE_CHECKING:
    from aleph.sessions.events import EventLog
    from aleph.sessions.history import History

__all__ = [
    "Run",
    "Session",
    "SessionRecord",
    "StoredMessage",
    "check_access",
    "iso_utc",
    "new_epoch",
    "new_run_id",
    "new_session_id",
    "within_budget",
]

Role = Literal["user", "assistant", "tool"]


def new_session_id() -> str:
    return "s_" + secrets.token_hex(8)


def new_run_id() -> str:
    return "r_" + secrets.token_hex(8)


def new_epoch() -> str:
    return "e_" + secrets.token_hex(6)


@attrs.define(eq=False)
class SessionRecord:
    """The durable description of a session (a row of the sessions table)."""

    id: str
    type: SessionType
    creator: str  # the principal id that created it
    created_at: float  # wall clock
    updated_at: float
    epoch: str
    title: str = ""
    system_prompt: str | None = None
    model: str | None = None
    channel_key: str | None = None  # paired sessions: "telegram:123456"
    last_seq: int = 0

    @property
    def persistent(self) -> bool:
        return self.type != "guest"


@attrs.frozen
class StoredMessage:
    """One message of a session's history, as session.history shows it."""

    id: int
    role: Role
    text: str
    created_at: float
    run_id: str | None = None
    meta: dict[str, Any] = attrs.Factory(dict)

    @property
    def message_id(self) -> str:
        return f"m_{self.id}"

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.message_id,
            "role": self.role,
            "text": self.text,
            "created_at": iso_utc(self.created_at),
        }
        if self.run_id is not None:
            item["run_id"] = self.run_id
        if self.meta:
            item["meta"] = self.meta
        return item


@attrs.define(eq=False)
class Run:
    """One queued or running answer to one user message."""

    run_id: str
    message_id: int
    text: str
    role: Literal["owner", "guest"]
    attachments: tuple[Attachment, ...] = ()
    scope: trio.CancelScope | None = None  # set while it runs
    cancel_requested: bool = False
    # The history it will be given, when read with its message (History.add_with_context),
    # and the history's generation then.
    context: list[StoredMessage] | None = None
    context_generation: int = 0


@attrs.define(eq=False)
class Session:
    """A live session: record, history, event log, runs and a lock for sends."""

    record: SessionRecord
    history: History
    events: EventLog
    lock: trio.Lock = attrs.Factory(trio.Lock)
    queue: deque[Run] = attrs.Factory(deque)
    running: Run | None = None
    runner_active: bool = False
    idle: trio.Event = attrs.Factory(trio.Event)  # set while no run is queued or running
    last_activity: float = 0.0  # trio.current_time()
    # idempotency key -> (run_id, expires at in trio time)
    idempotency: dict[str, tuple[str, float]] = attrs.Factory(dict)
    deleted: bool = False
    loaded: bool = True  # False until a persistent session's events are read back

    def __attrs_post_init__(self) -> None:
        self.idle.set()

    @property
    def id(self) -> str:
        return self.record.id

    def mark_busy(self) -> None:
        if self.idle.is_set():
            self.idle = trio.Event()

    def known_run(self, key: str | None, now: float) -> dict[str, Any] | None:
        """A retried send's answer (the first run's id and place), if `key` is known."""
        if key is None or key not in self.idempotency:
            return None
        run_id, expires = self.idempotency[key]
        if now >= expires:
            del self.idempotency[key]
            return None
        position = next((i for i, r in enumerate(self.queue) if r.run_id == run_id), None)
        queued = 0 if position is None else position + (1 if self.running else 0)
        return {"run_id": run_id, "queued": queued}

    def runs_ahead(self) -> int:
        return len(self.queue) + (1 if self.running is not None else 0)


def check_access(principal: Principal, record: SessionRecord) -> None:
    """Raise NotFound unless `principal` may see and act on this session."""
    # Guest sessions belong to their creator; every other kind to the owner.
    allowed = principal.id == record.creator if record.type == "guest" else principal.is_owner
    if not allowed:
        raise NotFound(f"no such session: {record.id}")


def within_budget(
    newest_first: Iterable[StoredMessage], budget: int | None, skip_runs: set[str]
) -> list[StoredMessage]:
    """A run's context: the newest messages as far back as `budget` tokens
    reach, each run's messages right after its question; oldest first.

    Messages are taken until their user and assistant text is worth more than
    `budget` tokens (the one that crosses included), then on until every run
    taken has its user message too. They are stored in the order they came,
    so a message sent while an answer was streaming is stored before that
    answer; here it goes after it, with the rest of its own run.

    Every message the Thinker could keep is among them, in the same order as
    if all were read: what is taken is the end of that order (a run's user
    message comes before the rest of its run), the Thinker keeps whole
    exchanges newest first while they fit, and it counts at least
    ``len(text) // 4`` tokens for each (more for tool calls, images and its
    per-message overhead), so the exchange that holds the crossing message
    never fits beside the newer ones. Tool results are not counted, since the
    Thinker may drop one whose call is gone.
    """
    taken: list[StoredMessage] = []
    questions: dict[str, int] = {}  # run_id -> the id of its user message
    missing: set[str] = set()  # runs taken whose user message is not yet
    seen = 0
    for message in newest_first:
        if budget is not None and seen > budget and not missing:
            break
        run_id = message.run_id
        if run_id is not None:
            if run_id in skip_runs:
                continue
            if message.role == "user":
                questions[run_id] = message.id
                missing.discard(run_id)
            elif run_id not in questions:
                missing.add(run_id)
        taken.append(message)
        if message.role in ("user", "assistant"):
            seen += len(message.text) // 4
    taken.reverse()
    # A run without its question (none was ever stored) stays where it is.
    taken.sort(key=lambda m: (questions.get(m.run_id, m.id) if m.run_id else m.id, m.id))
    return taken
