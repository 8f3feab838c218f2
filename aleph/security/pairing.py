"""Pairing: who may talk to the agent from a bot channel, approved by the operator.

A stranger who writes to the Telegram or Discord bot gets a short code
(:meth:`PairingStore.request`); the operator sees the pending request with
``aleph ctl pairing list`` and approves or denies it by its code. An approved
channel key (``telegram:123456``) stays paired, across restarts, until it is
unpaired. A request expires after ``ttl`` seconds; one channel has at most
one pending request (asking again returns the same code), and at most
``max_pending`` requests wait at once, so a flood of strangers cannot grow
the table without bound.

State lives in the shared SQLite store (component ``pairing``); the set of
paired channels is also kept in memory, so :meth:`PairingStore.is_approved`
is a plain function that an adapter may call for every message.
Listeners added with :meth:`PairingStore.add_listener` hear every decision
(to tell the user they were let in).

Errors: :class:`PairingError` (too many pending requests), and
:class:`UnknownPairingCode` (no such pending code, or it expired).
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import Literal

import attrs

from aleph.storage import Database, Migration

__all__ = [
    "PAIRING_MIGRATIONS",
    "PairedChannel",
    "PairingDecision",
    "PairingError",
    "PairingRequest",
    "PairingStore",
    "UnknownPairingCode",
]

log = logging.getLogger(__name__)

PAIRING_MIGRATIONS = [
    Migration(
        "pairing",
        1,
        """
        CREATE TABLE pairing_requests (
            code         TEXT PRIMARY KEY,
            channel_key  TEXT NOT NULL UNIQUE,
            user         TEXT NOT NULL,
            requested_at REAL NOT NULL,
            expires_at   REAL NOT NULL
        );
        CREATE TABLE paired_channels (
            channel_key TEXT PRIMARY KEY,
            user        TEXT NOT NULL,
            approved_at REAL NOT NULL
        );
        """,
    )
]

# No 0/O, 1/I/L: the code is read aloud or typed from a phone screen.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


class PairingError(Exception):
    """A pairing request cannot be made or decided; the message says why."""


class UnknownPairingCode(PairingError):
    """No pending request has this code (it never existed, was decided, or expired)."""


@attrs.frozen
class PairingRequest:
    code: str
    channel_key: str  # e.g. "telegram:123456"
    user: str  # who asked, as the adapter describes them ("@alice (Alice Liddell)")
    requested_at: float  # wall-clock seconds
    expires_at: float


@attrs.frozen
class PairedChannel:
    channel_key: str
    user: str
    approved_at: float


@attrs.frozen
class PairingDecision:
    request: PairingRequest
    outcome: Literal["approved", "denied"]


def new_code() -> str:
    """Eight characters from a 31-letter alphabet (about 40 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    """Accept what a person types: any case, spaces and dashes ignored."""
    return code.replace("-", "").replace(" ", "").upper()


@attrs.define(eq=False)
class PairingStore:
    """Pending requests and paired channels, in the state store."""

    db: Database
    # Seconds a request lives; a function is read at each use (the config can be reloaded).
    _ttl: float | Callable[[], float] = attrs.field(default=600.0, alias="ttl")
    max_pending: int = 100
    clock: Callable[[], float] = time.time  # wall clock: requests outlive a restart
    _paired: dict[str, PairedChannel] = attrs.field(factory=dict, init=False)
    _listeners: list[Callable[[PairingDecision], None]] = attrs.field(factory=list, init=False)

    @property
    def ttl(self) -> float:
        """Seconds a pairing request stays valid."""
        return self._ttl() if callable(self._ttl) else self._ttl

    async def load(self) -> None:
        """Read the paired channels into memory (call once, after the store opens)."""

        def read(conn: sqlite3.Connection) -> list[PairedChannel]:
            rows = conn.execute(
                "SELECT channel_key, user, approved_at FROM paired_channels"
            ).fetchall()
            return [PairedChannel(*row) for row in rows]

        self._paired = {paired.channel_key: paired for paired in await self.db.read(read)}

    def is_approved(self, channel_key: str) -> bool:
        return channel_key in self._paired

    def paired(self) -> list[PairedChannel]:
        return sorted(self._paired.values(), key=lambda paired: paired.approved_at)

    def add_listener(self, listener: Callable[[PairingDecision], None]) -> None:
        """Call `listener(decision)` after every approval or denial (it must not block)."""
        self._listeners.append(listener)

    async def request(self, channel_key: str, user: str) -> PairingRequest:
        """A pending request for this channel: the one already waiting, or a new one.

        Raises PairingError when the channel is already paired or too many
        requests are waiting.
        """
        if channel_key in self._paired:
            raise PairingError(f"{channel_key} is already paired")
        now = self.clock()
        candidate = PairingRequest(new_code(), channel_key, user[:200], now, now + self.ttl)

        def upsert(conn: sqlite3.Connection) -> PairingRequest:
            conn.execute("DELETE FROM pairing_requests WHERE expires_at <= ?", (now,))
            row = conn.execute(
                "SELECT code, channel_key, user, requested_at, expires_at"
                " FROM pairing_requests WHERE channel_key = ?",
                (channel_key,),
            ).fetchone()
            if row is not None:
                return PairingRequest(*row)
            (waiting,) = conn.execute("SELECT count(*) FROM pairing_requests").fetchone()
            if waiting >= self.max_pending:
                raise PairingError("too many pairing requests are waiting; try again later")
            conn.execute(
                "INSERT INTO pairing_requests VALUES (?, ?, ?, ?, ?)",
                attrs.astuple(candidate),
            )
            return candidate

        request = await self.db.write(upsert)
        if request is candidate:
            log.info("pairing requested by %s on %s: code %s", user, channel_key, request.code)
        return request

    async def pending(self) -> list[PairingRequest]:
        """The requests still waiting for a decision, oldest first (expired ones dropped)."""
        now = self.clock()

        def select(conn: sqlite3.Connection) -> list[PairingRequest]:
            conn.execute("DELETE FROM pairing_requests WHERE expires_at <= ?", (now,))
            rows = conn.execute(
                "SELECT code, channel_key, user, requested_at, expires_at"
                " FROM pairing_requests ORDER BY requested_at"
            ).fetchall()
            return [PairingRequest(*row) for row in rows]

        return await self.db.write(select)

    async def _take(self, code: str, approve: bool) -> PairingRequest:
        """Remove the pending request with this code; pair its channel if approved."""
        code = normalise_code(code)
        now = self.clock()

        def take(conn: sqlite3.Connection) -> PairingRequest:
            row = conn.execute(
                "SELECT code, channel_key, user, requested_at, expires_at"
                " FROM pairing_requests WHERE code = ?",
                (code,),
            ).fetchone()
            if row is None:
                raise UnknownPairingCode(f"no pending pairing request with code {code!r}")
            request = PairingRequest(*row)
            conn.execute("DELETE FROM pairing_requests WHERE code = ?", (code,))
            if request.expires_at <= now:
                return request  # deleted, and reported as expired below
            if approve:
                conn.execute(
                    "INSERT INTO paired_channels VALUES (?, ?, ?)"
                    " ON CONFLICT(channel_key) DO UPDATE SET"
                    " user = excluded.user, approved_at = excluded.approved_at",
                    (request.channel_key, request.user, now),
                )
            return request

        request = await self.db.write(take)
        if request.expires_at <= now:
            raise UnknownPairingCode(f"pairing code {code!r} has expired")
        if approve:
            self._paired[request.channel_key] = PairedChannel(
                request.channel_key, request.user, now
            )
        outcome: Literal["approved", "denied"] = "approved" if approve else "denied"
        log.info("pairing %s for %s on %s", outcome, request.user, request.channel_key)
        for listener in list(self._listeners):
            try:
                listener(PairingDecision(request, outcome))
            except Exception:
                log.exception("pairing listener failed")
        return request

    async def approve(self, code: str) -> PairingRequest:
        """Pair the request's channel. Raises UnknownPairingCode."""
        return await self._take(code, approve=True)

    async def deny(self, code: str) -> PairingRequest:
        """Drop the request. Raises UnknownPairingCode."""
        return await self._take(code, approve=False)

    async def unpair(self, channel_key: str) -> bool:
        """Forget a paired channel; False if it was not paired."""

        def delete(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM paired_channels WHERE channel_key = ?", (channel_key,)
            )
            return cursor.rowcount

        removed = await self.db.write(delete)
        self._paired.pop(channel_key, None)
        return removed > 0
