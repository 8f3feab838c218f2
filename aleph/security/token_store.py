"""Persistent access tokens: created and revoked through the control socket.

The state store keeps one row per token (component ``tokens``): its id, a
name unique among live tokens, its role, when it was created and when it
expires. The token itself is shown once, when it is created, and only its
SHA-256 hash is stored. At start the daemon loads every row into the
gateway's :class:`~aleph.security.tokens.TokenRegistry`, which verifies
presented tokens in constant time; creating and revoking update both.

The owner token (:mod:`aleph.security.owner`) is not stored here: it keeps
its own source (environment, file, credential) and its registry record,
``owner``, cannot be revoked through this store.

Errors: :class:`TokenStoreError` (a name already taken, the owner record)
and :class:`UnknownToken` (no such id or name).
"""

from __future__ import annotations

import math
import secrets
import sqlite3
import time
from collections.abc import Callable

import attrs
import trio

from aleph.security.tokens import Role, TokenRecord, TokenRegistry, hash_token, new_token
from aleph.storage import Database, Migration

__all__ = [
    "TOKEN_MIGRATIONS",
    "IssuedToken",
    "TokenStore",
    "TokenStoreError",
    "UnknownToken",
]

TOKEN_MIGRATIONS = [
    Migration(
        "tokens",
        1,
        """
        CREATE TABLE tokens (
            token_id   TEXT PRIMARY KEY,
            name       TEXT NOT NULL UNIQUE,
            role       TEXT NOT NULL CHECK (role IN ('owner', 'guest')),
            token_hash BLOB NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            expires_at REAL
        );
        """,
    )
]

OWNER_RECORD_ID = "owner"
MAX_NAME_LENGTH = 64


class TokenStoreError(Exception):
    """A token cannot be created or revoked as asked; the message says why."""


class UnknownToken(TokenStoreError):
    """No live token has this id or name."""


@attrs.frozen
class IssuedToken:
    """A token just created: the secret, shown once, and its record."""

    token: str = attrs.field(repr=False)
    record: TokenRecord


def _new_token_id() -> str:
    return "t_" + secrets.token_hex(6)


def _row_to_record(row: tuple[str, str, str, bytes, float, float | None]) -> TokenRecord:
    token_id, name, role, token_hash, created_at, expires_at = row
    assert role in ("owner", "guest")
    return TokenRecord(token_id, name, role, bytes(token_hash), created_at, expires_at)  # type: ignore[arg-type]


@attrs.define(eq=False)
class TokenStore:
    """The stored tokens, kept in step with the gateway's registry."""

    db: Database
    registry: TokenRegistry
    clock: Callable[[], float] = time.time  # wall clock: expiry survives restarts
    _changed: trio.Event = attrs.Factory(trio.Event)  # wakes the expiry watcher
    _expired: set[str] = attrs.Factory(set)  # ids whose expiry was already acted on

    async def load(self) -> int:
        """Put every stored token into the registry; returns how many."""

        def read(conn: sqlite3.Connection) -> list[TokenRecord]:
            rows = conn.execute(
                "SELECT token_id, name, role, token_hash, created_at, expires_at FROM tokens"
            ).fetchall()
            return [_row_to_record(row) for row in rows]

        records = await self.db.read(read)
        for record in records:
            self.registry.add(record)
        return len(records)

    async def create(self, name: str, role: Role, expires_in: float | None = None) -> IssuedToken:
        """Create, store and register a token. Raises TokenStoreError for a bad name."""
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
            raise TokenStoreError(f"a token name is 1 to {MAX_NAME_LENGTH} printable characters")
        if name == OWNER_RECORD_ID:
            raise TokenStoreError('"owner" is the name of the built-in owner token')
        if expires_in is not None and expires_in <= 0:
            raise TokenStoreError("expires_in must be a positive number of seconds")
        token = new_token()
        now = self.clock()
        record = TokenRecord(
            _new_token_id(),
            name,
            role,
            hash_token(token),
            now,
            None if expires_in is None else now + expires_in,
        )

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO tokens (token_id, name, role, token_hash, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.token_id,
                    record.name,
                    record.role,
                    record.token_hash,
                    record.created_at,
                    record.expires_at,
                ),
            )

        try:
            await self.db.write(insert)
        except sqlite3.IntegrityError:
            raise TokenStoreError(f"a token named {name!r} already exists") from None
        self.registry.add(record)
        self._changed.set()
        return IssuedToken(token, record)

    def find(self, id_or_name: str) -> TokenRecord:
        """The live record with this id or name (ids first). Raises UnknownToken."""
        records = self.registry.records()
        for record in records:
            if record.token_id == id_or_name:
                return record
        for record in records:
            if record.name == id_or_name and record.token_id != OWNER_RECORD_ID:
                return record
        raise UnknownToken(f"no token with id or name {id_or_name!r}")

    async def revoke(self, id_or_name: str) -> TokenRecord:
        """Forget a token: from the store (committed) and from the registry.

        The caller closes the connections that logged in with it. Raises
        UnknownToken, or TokenStoreError for the owner token.
        """
        record = self.find(id_or_name)
        if record.token_id == OWNER_RECORD_ID:
            raise TokenStoreError(
                "the owner token is not revocable here; replace its file or credential and reload"
            )

        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM tokens WHERE token_id = ?", (record.token_id,))

        # The registry first: from this instant the token no longer logs anyone in.
        self.registry.remove(record.token_id)
        await self.db.write(delete)
        return record

    async def watch_expiry(
        self,
        stopping: trio.Event,
        on_expired: Callable[[TokenRecord], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Call `on_expired(record)` once as each token expires, until `stopping`.

        Logins with an expired token already fail; this ends the connections
        that logged in before the expiry (the daemon closes them with 4003).
        It sleeps until the next expiry, or until a token is created."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on, stopping, nursery.cancel_scope)
            task_status.started()
            while True:
                now = self.clock()
                upcoming = []
                for record in self.registry.records():
                    if record.expires_at is None or record.token_id in self._expired:
                        continue
                    if record.expires_at <= now:
                        self._expired.add(record.token_id)
                        on_expired(record)
                    else:
                        upcoming.append(record.expires_at)
                self._changed = trio.Event()
                with trio.move_on_after(min(upcoming) - now if upcoming else math.inf):
                    await self._changed.wait()

    def records(self) -> list[TokenRecord]:
        """Every live record, the owner's included, oldest first."""
        return sorted(self.registry.records(), key=lambda record: record.created_at)


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
