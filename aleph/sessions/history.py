"""A session's message history: durable (SQLite) or in memory (guests).

Both kinds answer the same calls, so the hub never asks which one it has.
:class:`StoredHistory` writes through :class:`SessionStore` (committed when
the call returns); :class:`MemoryHistory` is a list that dies with the
process, which is the contract for guest sessions. Both keep `count` current
for session.list.

A run's context (:meth:`History.context`) is read newest first and only as
far back as the model could see: once the user and assistant text read so
far is worth more than the Thinker's ``context_budget`` (at its own estimate
of 4 characters a token, which only ever counts more), older messages could
not be kept and are not read. So the cost of starting a run does not grow
with the length of the session. A message sent to an idle session has its
run's context read in the same trip to the database as its own insert
(:meth:`History.add_with_context`); a clear in between makes that read stale
(`generation`), and the runner reads again.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Protocol

import attrs

from aleph.sessions.model import Role, StoredMessage, within_budget
from aleph.sessions.store import SessionStore

__all__ = ["History", "MemoryHistory", "StoredHistory"]

# Message ids of guest sessions: one counter for the process, so ids never repeat.
_memory_ids = itertools.count(1)


class History(Protocol):
    @property
    def count(self) -> int: ...

    async def add(
        self,
        role: Role,
        text: str,
        *,
        run_id: str | None = None,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> StoredMessage: ...

    async def add_with_context(
        self,
        text: str,
        budget: int | None,
        *,
        run_id: str,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[StoredMessage, list[StoredMessage]]:
        """Add a user message, and read the context of its run (`run_id`) with it.

        For a message whose run starts at once: one trip to the database
        instead of two before the model is asked."""
        ...

    @property
    def generation(self) -> int:
        """Counts clears: a context read before a clear is stale after it."""
        ...

    async def page(self, limit: int, before: int | None) -> tuple[list[StoredMessage], bool]: ...

    async def context(self, budget: int | None, skip_runs: set[str]) -> list[StoredMessage]:
        """The messages a run's model could see, oldest first (module docstring).

        `budget` is in tokens (None: every message); messages of `skip_runs`
        (the run's own and the queued ones) are left out."""
        ...

    async def clear(self) -> int: ...


@attrs.define(eq=False)
class StoredHistory:
    store: SessionStore
    session_id: str
    count: int = 0
    generation: int = 0

    async def add(
        self,
        role: Role,
        text: str,
        *,
        run_id: str | None = None,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> StoredMessage:
        message = await self.store.add_message(
            self.session_id, role, text, run_id=run_id, meta=meta, idempotency_key=idempotency_key
        )
        self.count += 1
        return message

    async def add_with_context(
        self,
        text: str,
        budget: int | None,
        *,
        run_id: str,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[StoredMessage, list[StoredMessage]]:
        added = await self.store.add_with_context(
            self.session_id, "user", text, budget, run_id=run_id, meta=meta,
            idempotency_key=idempotency_key,
        )  # fmt: skip
        self.count += 1
        return added

    async def page(self, limit: int, before: int | None) -> tuple[list[StoredMessage], bool]:
        return await self.store.page(self.session_id, limit, before)

    async def context(self, budget: int | None, skip_runs: set[str]) -> list[StoredMessage]:
        return await self.store.context(self.session_id, budget, skip_runs)

    async def clear(self) -> int:
        self.generation += 1  # first: a context read while this waits is stale too
        cleared = await self.store.clear(self.session_id)
        self.count = 0
        return cleared


@attrs.define(eq=False)
class MemoryHistory:
    messages: list[StoredMessage] = attrs.Factory(list)
    generation: int = 0

    @property
    def count(self) -> int:
        return len(self.messages)

    async def add(
        self,
        role: Role,
        text: str,
        *,
        run_id: str | None = None,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> StoredMessage:
        message = StoredMessage(next(_memory_ids), role, text, time.time(), run_id, meta or {})
        self.messages.append(message)
        return message

    async def add_with_context(
        self,
        text: str,
        budget: int | None,
        *,
        run_id: str,
        meta: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[StoredMessage, list[StoredMessage]]:
        message = await self.add(
            "user", text, run_id=run_id, meta=meta, idempotency_key=idempotency_key
        )
        return message, within_budget(reversed(self.messages), budget, {run_id})

    async def page(self, limit: int, before: int | None) -> tuple[list[StoredMessage], bool]:
        older = [m for m in self.messages if before is None or m.id < before]
        return older[-limit:] if limit else [], len(older) > limit

    async def context(self, budget: int | None, skip_runs: set[str]) -> list[StoredMessage]:
        return within_budget(reversed(self.messages), budget, skip_runs)

    async def clear(self) -> int:
        self.generation += 1
        cleared = len(self.messages)
        self.messages.clear()
        return cleared
