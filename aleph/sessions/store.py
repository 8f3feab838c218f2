"""The sessions' durable store: tables in the shared SQLite file (aleph.db).

:class:`SessionStore` owns the ``sessions`` component of the database: the
sessions of type ``owner`` and ``paired``, their messages, their retained
events, and a clean-shutdown marker. Guest sessions never reach it.

Every change goes through :meth:`Database.write` (one writer, one
transaction): when a call returns, its change is committed and survives a
``kill -9``. Events are written in batches by the hub's flusher, after they
were sent; a crash can lose the last unflushed ones, so :meth:`recover` gives
every persistent session a new epoch after an unclean stop (clients then get
-32010 and reload history rather than see a seq reused for another event).

Failures: ``sqlite3.Error`` propagates to the caller (a handler turns it into
-32603, logged once).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import Any, cast

import attrs
import orjson

from aleph.sessions.model import SessionRecord, StoredMessage, new_epoch, within_budget
from aleph.storage.db import Database, Migration

__all__ = ["IDEMPOTENCY_WINDOW", "SessionStore", "migrations"]

IDEMPOTENCY_WINDOW = 600.0  # seconds a send's idempotency key is remembered

_SCHEMA_V1 = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL CHECK (type IN ('owner', 'paired')),
    creator TEXT NOT NULL,
    channel_key TEXT UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    system_prompt TEXT,
    model TEXT,
    epoch TEXT NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE session_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    text TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    run_id TEXT,
    idempotency_key TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX session_messages_by_session ON session_messages (session_id, id);
CREATE TABLE session_events (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    frame TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE TABLE sessions_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def migrations() -> list[Migration]:
    return [Migration("sessions", 1, _SCHEMA_V1)]


_SESSION_COLUMNS = (
    "id, type, creator, created_at, updated_at, epoch, title, system_prompt, model,"
    " channel_key, last_seq"
)


def _record(row: tuple[Any, ...]) -> SessionRecord:
    return SessionRecord(*row)


def _message(row: tuple[Any, ...]) -> StoredMessage:
    msg_id, role, text, created_at, run_id, meta = row
    return StoredMessage(msg_id, role, text, created_at, run_id, orjson.loads(meta))


_MESSAGE_COLUMNS = "id, role, text, created_at, run_id, meta"


def _context(
    conn: sqlite3.Connection, session_id: str, budget: int | None, skip_runs: set[str]
) -> list[StoredMessage]:
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM session_messages WHERE session_id = ? ORDER BY id DESC",
        (session_id,),
    )
    # Rows are read lazily: the ones past the budget are never fetched.
    return within_budget(map(_message, rows), budget, skip_runs)


@attrs.define(eq=False)
class SessionStore:
    db: Database

    # -- start and stop ------------------------------------------------------

    async def recover(self) -> list[SessionRecord]:
        """Every persistent session; after an unclean stop, each with a new epoch."""

        def run(conn: sqlite3.Connection) -> list[SessionRecord]:
            row = conn.execute("SELECT value FROM sessions_state WHERE key = 'clean'").fetchone()
            records = [_record(r) for r in conn.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions")]
            if row is None or row[0] != "1":
                for record in records:
                    record.epoch = new_epoch()
                    conn.execute(
                        "UPDATE sessions SET epoch = ? WHERE id = ?", (record.epoch, record.id)
                    )
            conn.execute(
                "INSERT INTO sessions_state (key, value) VALUES ('clean', '0')"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value"
            )
            return records

        return await self.db.write(run)

    async def mark_clean(self) -> None:
        """Record that every event was flushed: the epochs stay valid across the restart."""
        await self.db.write(
            lambda conn: conn.execute("UPDATE sessions_state SET value = '1' WHERE key = 'clean'")
        )

    # -- sessions ------------------------------------------------------------

    async def create(self, record: SessionRecord) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                attrs.astuple(record, recurse=False),
            )

        await self.db.write(run)

    async def delete(self, session_id: str) -> None:
        await self.db.write(
            lambda conn: conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        )

    async def message_counts(self) -> dict[str, int]:
        def run(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT session_id, COUNT(*) FROM session_messages GROUP BY session_id"
            )
            return {session_id: count for session_id, count in rows}

        return await self.db.read(run)

    # -- messages ------------------------------------------------------------

    async def add_message(
        self,
        session_id: str,
        role: str,
        text: str,
        *,
        run_id: str | None = None,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> StoredMessage:
        """Insert one message and touch the session; committed when this returns."""
        message, _ = await self._add(session_id, role, text, run_id, meta, idempotency_key)
        return message

    async def add_with_context(
        self,
        session_id: str,
        role: str,
        text: str,
        budget: int | None,
        *,
        run_id: str,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[StoredMessage, list[StoredMessage]]:
        """:meth:`add_message`, and in the same trip to the database thread the
        context (:meth:`context`) of run `run_id`, whose messages it skips."""
        message, context = await self._add(
            session_id, role, text, run_id, meta, idempotency_key, with_context=True, budget=budget
        )
        assert context is not None
        return message, context

    async def _add(
        self,
        session_id: str,
        role: str,
        text: str,
        run_id: str | None,
        meta: dict[str, Any] | None,
        idempotency_key: str | None,
        *,
        with_context: bool = False,
        budget: int | None = None,
    ) -> tuple[StoredMessage, list[StoredMessage] | None]:
        now = time.time()
        meta = meta or {}

        def run(conn: sqlite3.Connection) -> tuple[int, list[StoredMessage] | None]:
            cursor = conn.execute(
                "INSERT INTO session_messages"
                " (session_id, role, text, meta, run_id, idempotency_key, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, role, text, orjson.dumps(meta).decode(), run_id, idempotency_key, now),
            )
            conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id))
            context = None
            if with_context and run_id is not None:
                context = _context(conn, session_id, budget, {run_id})
            return cast(int, cursor.lastrowid), context

        msg_id, context = await self.db.write(run)
        message = StoredMessage(msg_id, role, text, now, run_id, meta)  # type: ignore[arg-type]
        return message, context

    async def page(
        self, session_id: str, limit: int, before: int | None
    ) -> tuple[list[StoredMessage], bool]:
        """Up to `limit` messages older than `before`, oldest first, and whether more exist."""

        def run(conn: sqlite3.Connection) -> list[StoredMessage]:
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM session_messages"
                " WHERE session_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (session_id, before if before is not None else 2**62, limit + 1),
            ).fetchall()
            return [_message(row) for row in rows]

        found = await self.db.read(run)
        has_more = len(found) > limit
        return list(reversed(found[:limit])), has_more

    async def context(
        self, session_id: str, budget: int | None, skip_runs: set[str]
    ) -> list[StoredMessage]:
        """A run's context: the newest messages, only as far back as `budget`
        tokens reach (:func:`within_budget`), oldest first."""
        return await self.db.read(lambda conn: _context(conn, session_id, budget, skip_runs))

    async def clear(self, session_id: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM session_messages WHERE session_id = ?", (session_id,)
            )
            conn.execute(
                "UPDATE sessions SET updated_at = ? WHERE id = ?", (time.time(), session_id)
            )
            return cursor.rowcount

        return await self.db.write(run)

    async def recent_keys(self, session_id: str) -> list[tuple[str, str, float]]:
        """(key, run_id, age in seconds) of the idempotency keys still in their window."""
        now = time.time()

        def run(conn: sqlite3.Connection) -> list[tuple[str, str, float]]:
            rows = conn.execute(
                "SELECT idempotency_key, run_id, created_at FROM session_messages"
                " WHERE session_id = ? AND idempotency_key IS NOT NULL AND created_at > ?",
                (session_id, now - IDEMPOTENCY_WINDOW),
            )
            return [(key, run_id, now - created) for key, run_id, created in rows]

        return await self.db.read(run)

    # -- events --------------------------------------------------------------

    async def load_events(self, session_id: str, limit: int) -> list[tuple[int, str]]:
        """The last `limit` retained (seq, frame) of a session, oldest first."""

        def run(conn: sqlite3.Connection) -> list[tuple[int, str]]:
            rows = conn.execute(
                "SELECT seq, frame FROM session_events WHERE session_id = ?"
                " ORDER BY seq DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
            return [(seq, frame) for seq, frame in reversed(rows)]

        return await self.db.read(run)

    async def flush_events(self, batch: Iterable[tuple[str, int, str]], retention: int) -> None:
        """Store (session_id, seq, frame) events and drop those beyond retention.

        Events of a session deleted meanwhile are skipped, not an error.
        """
        rows = list(batch)
        if not rows:
            return
        last: dict[str, int] = {}
        for session_id, seq, _ in rows:
            last[session_id] = max(seq, last.get(session_id, 0))

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO session_events (session_id, seq, frame)"
                " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?)",
                [(session_id, seq, frame, session_id) for session_id, seq, frame in rows],
            )
            for session_id, seq in last.items():
                conn.execute(
                    "UPDATE sessions SET last_seq = MAX(last_seq, ?) WHERE id = ?",
                    (seq, session_id),
                )
                conn.execute(
                    "DELETE FROM session_events WHERE session_id = ? AND seq <= ?",
                    (session_id, seq - retention),
                )

        await self.db.write(run)
