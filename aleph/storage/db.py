"""One SQLite database file, used from Trio through worker threads.

The daemon keeps a single connection. Every call runs in a worker thread
(`trio.to_thread.run_sync`) behind a capacity limiter of one, so statements
never interleave and the Trio loop never blocks on disk. :meth:`Database.write`
wraps its function in ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back if it
raises): when it returns, the change is committed, so a caller may
acknowledge it to a client. A write that has started is not abandoned when the
caller is cancelled; it completes (or rolls back) first.

Schema: each subsystem owns a *component* ("sessions", "tokens", ...) with
numbered :class:`Migration` steps; :meth:`Database.open` applies the missing
ones in order, each in its own transaction, and refuses a database written by
a newer Aleph. WAL mode and ``synchronous=FULL`` by default: nothing committed
is lost when the process is killed, nor on power loss.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal, TypeVar

import attrs
import trio

__all__ = ["Database", "Migration", "StorageError"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class StorageError(Exception):
    """The database cannot be opened or migrated."""


@attrs.frozen
class Migration:
    component: str
    version: int  # 1, 2, 3 ... per component
    sql: str  # one or more statements


@attrs.define(eq=False)
class Database:
    path: Path
    _conn: sqlite3.Connection = attrs.field(repr=False, alias="conn")
    _limiter: trio.CapacityLimiter = attrs.field(
        factory=lambda: trio.CapacityLimiter(1), init=False
    )

    @classmethod
    async def open(
        cls,
        path: Path | str,
        migrations: Iterable[Migration] = (),
        *,
        synchronous: Literal["full", "normal"] = "full",
    ) -> Database:
        """Open (creating if needed) and migrate. Raises StorageError."""
        path = Path(path)

        def connect() -> sqlite3.Connection:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA busy_timeout=5000")
                _migrate(conn, list(migrations))
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            conn = await trio.to_thread.run_sync(connect)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        return cls(path, conn)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` in the database thread, outside any transaction."""
        async with self._limiter:
            return await trio.to_thread.run_sync(fn, self._conn)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` in one transaction; committed when this returns."""

        def transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        async with self._limiter:
            return await trio.to_thread.run_sync(transaction, self._conn)

    async def migrate(self, migrations: Iterable[Migration]) -> None:
        """Apply a component's migrations after opening (for late-starting parts)."""
        steps = list(migrations)
        async with self._limiter:
            await trio.to_thread.run_sync(_migrate, self._conn, steps)

    async def aclose(self) -> None:
        async with self._limiter:
            await trio.to_thread.run_sync(self._conn.close)


def _migrate(conn: sqlite3.Connection, migrations: list[Migration]) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions ("
        " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    current = dict(conn.execute("SELECT component, version FROM schema_versions").fetchall())
    by_component: dict[str, list[Migration]] = {}
    for step in migrations:
        by_component.setdefault(step.component, []).append(step)
    for component, steps in by_component.items():
        steps.sort(key=lambda step: step.version)
        known = steps[-1].version
        have = current.get(component, 0)
        if have > known:
            raise StorageError(
                f"the database's {component} schema is version {have}, newer than this "
                f"Aleph knows ({known}); upgrade Aleph or restore a backup"
            )
        for step in steps:
            if step.version <= have:
                continue
            log.info("migrating %s schema to version %d", component, step.version)
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(step.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_versions (component, version) VALUES (?, ?)"
                    " ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                    (component, step.version),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


def _statements(sql: str) -> list[str]:
    """Split a script into complete statements (executescript would commit on its own)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
