"""The session hub: every live session, its runs, its events and who may reach it.

:class:`SessionHub` is the SessionManager of DESIGN.md. It owns:

- the sessions: persistent ones (``owner``, ``paired``) are read from the
  store at start (their events lazily, on first use); ``guest`` ones live in
  memory only and are dropped after `guest_ttl` seconds without activity;
- one nursery (:meth:`serve`) holding a runner task per session that has runs
  to do, the event flusher and the guest sweeper;
- the rules of session.send: rate limits, idempotency keys, the bounded
  queue, and "answer only once the user's message is committed".

Every method that takes a principal checks access through
:func:`~aleph.sessions.model.check_access` before anything else.

Stopping: once `stopping` is set, sends get -32011, queued runs are dropped
(``run.cancelled``), the running ones get `grace` seconds to finish and are
then cancelled; the events are flushed and the store marked clean, so the
epochs stay valid across the restart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import attrs
import trio

from aleph.engine.api import Attachment, ExecutionEngine, SessionType
from aleph.gateway.client import Client
from aleph.protocol.errors import (
    Forbidden,
    NotFound,
    QueueFull,
    RateLimited,
    ShuttingDown,
)
from aleph.security.tokens import Principal, Role
from aleph.sessions.events import EventLog
from aleph.sessions.flusher import EventFlusher
from aleph.sessions.history import History, MemoryHistory, StoredHistory
from aleph.sessions.model import (
    Run,
    Session,
    SessionRecord,
    StoredMessage,
    check_access,
    iso_utc,
    new_epoch,
    new_run_id,
    new_session_id,
)
from aleph.sessions.ratelimit import SendLimits
from aleph.sessions.runner import run_queue
from aleph.sessions.store import IDEMPOTENCY_WINDOW, SessionStore

__all__ = ["GUEST_TTL", "SessionHub"]

log = logging.getLogger(__name__)

GUEST_TTL = 1800.0  # seconds a guest session lives without activity


@attrs.define(eq=False)
class SessionHub:
    store: SessionStore
    engine: ExecutionEngine
    limits: SendLimits
    max_queued_runs: int = 8
    event_retention: int = 5000
    delta_interval: float = 0.0
    context_budget: int | None = None  # tokens of history a run reads (runner.run_queue)
    guest_ttl: float = GUEST_TTL
    sessions: dict[str, Session] = attrs.Factory(dict)
    accepting: bool = True
    _paired: dict[str, str] = attrs.Factory(dict)  # channel key -> session id
    _nursery: trio.Nursery | None = None
    _flusher: EventFlusher = attrs.field(init=False)
    _hooked: set[str] = attrs.Factory(set)  # clients whose close releases subscriptions
    _paired_lock: trio.Lock = attrs.Factory(trio.Lock)

    def __attrs_post_init__(self) -> None:
        self._flusher = EventFlusher(self.store, self.event_retention)

    # -- lifetime ------------------------------------------------------------

    async def serve(
        self,
        stopping: trio.Event,
        grace: float,
        *,
        task_status: trio.TaskStatus[SessionHub] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Load the sessions, run until `stopping`, then stop within `grace` seconds."""
        counts = await self.store.message_counts()
        for record in await self.store.recover():
            history = StoredHistory(self.store, record.id, counts.get(record.id, 0))
            self._add(record, history, loaded=False)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._flusher.serve)
            nursery.start_soon(self._sweeper)
            task_status.started(self)
            await stopping.wait()
            self.accepting = False
            for session in list(self.sessions.values()):
                self._drop_queued(session, reason="shutdown")
            with trio.move_on_after(grace):
                for session in list(self.sessions.values()):
                    await session.idle.wait()
            nursery.cancel_scope.cancel()
        self._nursery = None
        with trio.CancelScope(shield=True), trio.move_on_after(5.0):
            await self._flusher.flush()
            if not self._flusher.failed:
                await self.store.mark_clean()

    def set_delta_interval(self, interval: float) -> None:
        """Change ``limits.delta_interval`` live, for every session."""
        self.delta_interval = interval
        for session in self.sessions.values():
            session.events.delta_interval = interval

    def _add(self, record: SessionRecord, history: History, *, loaded: bool) -> Session:
        events = EventLog(
            record.id,
            record.epoch,
            self.event_retention,
            record.last_seq,
            delta_interval=self.delta_interval,
        )
        if record.persistent:
            session_id = record.id

            events.on_append = lambda seq, frame: self._flusher.add(session_id, seq, frame)
        session = Session(record, history, events, loaded=loaded)
        session.last_activity = trio.current_time()
        self.sessions[record.id] = session
        if record.channel_key is not None:
            self._paired[record.channel_key] = record.id
        return session

    async def _sweeper(self) -> None:
        while True:
            await trio.sleep(min(60.0, self.guest_ttl / 4))
            now = trio.current_time()
            for session in list(self.sessions.values()):
                expired = now - session.last_activity >= self.guest_ttl
                if session.record.type == "guest" and expired and session.idle.is_set():
                    log.debug("guest session %s expired", session.id)
                    self._forget(session)

    def _forget(self, session: Session) -> None:
        session.deleted = True
        self._drop_queued(session, reason="deleted")
        if session.running is not None and session.running.scope is not None:
            session.running.scope.cancel()
        session.events.subscribers.clear()
        self.sessions.pop(session.id, None)
        if session.record.channel_key is not None:
            self._paired.pop(session.record.channel_key, None)
        self.limits.forget_session(session.id)

    # -- lookup --------------------------------------------------------------

    async def get(self, principal: Principal, session_id: str) -> Session:
        """The session if `principal` may reach it (events loaded); NotFound otherwise."""
        session = self.sessions.get(session_id)
        if session is None:
            raise NotFound(f"no such session: {session_id[:100]}")
        check_access(principal, session.record)
        if not session.loaded:
            await self._load(session)
        session.last_activity = trio.current_time()
        return session

    async def _load(self, session: Session) -> None:
        async with session.lock:
            if session.loaded:
                return
            frames = await self.store.load_events(session.id, self.event_retention)
            keys = await self.store.recent_keys(session.id)
            session.events.load(frames)
            now = trio.current_time()
            for key, run_id, age in keys:
                session.idempotency[key] = (run_id, now + IDEMPOTENCY_WINDOW - age)
            session.loaded = True

    def find_paired(self, channel_key: str) -> Session | None:
        session_id = self._paired.get(channel_key)
        return self.sessions.get(session_id) if session_id else None

    def visible(self, principal: Principal) -> list[Session]:
        found = []
        for session in self.sessions.values():
            try:
                check_access(principal, session.record)
            except NotFound:
                continue
            found.append(session)
        found.sort(key=lambda s: (s.record.created_at, s.id))
        return found

    # -- create and delete ---------------------------------------------------

    async def create(
        self,
        principal: Principal,
        kind: SessionType | None = None,
        *,
        title: str = "",
        system_prompt: str | None = None,
        model: str | None = None,
        channel_key: str | None = None,
    ) -> Session:
        """A new session; guests may only create guest sessions (else Forbidden)."""
        if not self.accepting:
            raise ShuttingDown()
        kind = kind or ("owner" if principal.is_owner else "guest")
        if kind != "guest" and not principal.is_owner:
            raise Forbidden(f"a guest cannot create {kind} sessions")
        if (kind == "paired") != (channel_key is not None):
            raise Forbidden("paired sessions are created by the interfaces, with a channel key")
        now = time.time()
        record = SessionRecord(
            new_session_id(),
            kind,
            principal.id,
            now,
            now,
            new_epoch(),
            title,
            system_prompt,
            model,
            channel_key,
        )
        history: History
        if record.persistent:
            with trio.CancelScope(shield=True):
                await self.store.create(record)
            history = StoredHistory(self.store, record.id)
        else:
            history = MemoryHistory()
        return self._add(record, history, loaded=True)

    async def paired_session(self, channel_key: str, *, title: str = "") -> Session:
        """The session bound to an interface channel ("telegram:123456"), made on first use."""
        async with self._paired_lock:  # two first messages at once make one session
            found = self.find_paired(channel_key)
            if found is not None:
                return found
            owner = Principal("owner", "owner")
            return await self.create(owner, "paired", title=title, channel_key=channel_key)

    async def delete(self, principal: Principal, session_id: str) -> None:
        session = await self.get(principal, session_id)
        async with session.lock:
            if session.deleted:
                raise NotFound(f"no such session: {session_id[:100]}")
            self._forget(session)
            # Let a cancelled run finish storing what it was storing first.
            await session.idle.wait()
            if session.record.persistent:
                with trio.CancelScope(shield=True):
                    await self.store.delete(session.id)

    # -- subscriptions -------------------------------------------------------

    async def subscribe(
        self,
        principal: Principal,
        client: Client,
        session_id: str,
        after_seq: int | None = None,
        epoch: str | None = None,
    ) -> dict[str, Any]:
        """Subscribe `client`; with `after_seq`, replay first (ResumeGap if impossible)."""
        session = await self.get(principal, session_id)
        events = session.events
        subscriber = events.subscribe(client, after_seq, epoch)
        self._hook(client)
        replayed = events.last_seq - subscriber.cursor
        if not subscriber.live:
            nursery = client.nursery or self._nursery
            if nursery is None:
                raise ShuttingDown()
            # Starts after this call's answer is queued: the answer, then the events.
            nursery.start_soon(events.replay, subscriber)
        return {
            "session_id": session.id,
            "epoch": events.epoch,
            "last_seq": events.last_seq,
            "replayed": replayed,
        }

    async def unsubscribe(self, principal: Principal, client: Client, session_id: str) -> None:
        session = await self.get(principal, session_id)
        session.events.unsubscribe(client.id)

    def _hook(self, client: Client) -> None:
        if client.id not in self._hooked:
            self._hooked.add(client.id)
            client.on_close(self._release)

    def _release(self, client: Client) -> None:
        """A client is gone: drop every subscription it held."""
        self._hooked.discard(client.id)
        for session in self.sessions.values():
            session.events.unsubscribe(client.id)

    # -- runs ----------------------------------------------------------------

    async def send(
        self,
        principal: Principal,
        session_id: str,
        text: str,
        *,
        attachments: tuple[Attachment, ...] = (),
        idempotency_key: str | None = None,
        run_role: Role | None = None,
    ) -> dict[str, Any]:
        """Store the user's message, queue its run; answers once the message is committed.

        `run_role` lowers the role the run gets (the tools offered) below the
        principal's: the bots send for an untrusted platform user as "guest"."""
        if not self.accepting:
            raise ShuttingDown()
        session = await self.get(principal, session_id)
        known = session.known_run(idempotency_key, trio.current_time())
        if known is not None:
            return known
        retry_after = self.limits.take(session.id, principal, trio.current_time())
        if retry_after is not None:
            raise RateLimited(retry_after, "too many messages; retry later")
        async with session.lock:
            known = session.known_run(idempotency_key, trio.current_time())
            if known is not None:
                return known
            if session.deleted:
                raise NotFound(f"no such session: {session_id[:100]}")
            if not self.accepting:
                raise ShuttingDown()
            if len(session.queue) >= self.max_queued_runs:
                raise QueueFull(f"at most {self.max_queued_runs} runs may wait in a session")
            run_id = new_run_id()
            meta = _attachment_meta(attachments)
            history = session.history
            context: list[StoredMessage] | None = None
            with trio.CancelScope(shield=True):
                if session.running is None and not session.queue:
                    # Its run starts at once: read its context in the same trip.
                    message, context = await history.add_with_context(
                        text, self.context_budget, run_id=run_id, meta=meta,
                        idempotency_key=idempotency_key,
                    )  # fmt: skip
                else:
                    message = await history.add(
                        "user", text, run_id=run_id, meta=meta, idempotency_key=idempotency_key
                    )
            # From here to the return there is no checkpoint: the event, the queue
            # and the key change together.
            session.record.updated_at = message.created_at
            data: dict[str, Any] = {"message_id": message.message_id, "text": text}
            if meta:
                data.update(meta)
            session.events.append("message.user", run_id, data)
            queued = session.runs_ahead()
            role = "guest" if "guest" in (principal.role, run_role) else principal.role
            run = Run(run_id, message.id, text, role, attachments, context=context,
                      context_generation=history.generation)  # fmt: skip
            session.queue.append(run)
            if idempotency_key is not None:
                expires = trio.current_time() + IDEMPOTENCY_WINDOW
                session.idempotency[idempotency_key] = (run_id, expires)
            self._start_runner(session)
            return {"run_id": run_id, "queued": queued}

    def _start_runner(self, session: Session) -> None:
        session.mark_busy()
        if session.runner_active:
            return
        if self._nursery is None or not self.accepting:
            # A send whose commit straddled the stop: the message is stored, and its
            # run goes the way of every queued run at shutdown.
            self._drop_queued(session, reason="shutdown")
            return
        session.runner_active = True
        self._nursery.start_soon(run_queue, session, self.engine, self.context_budget)

    def _drop_queued(self, session: Session, *, reason: str) -> int:
        dropped = 0
        while session.queue:
            run = session.queue.popleft()
            session.events.append("run.cancelled", run.run_id, {"reason": reason})
            dropped += 1
        if session.running is None and not session.runner_active:
            session.idle.set()
        return dropped

    async def cancel(
        self, principal: Principal, session_id: str, run_id: str | None = None
    ) -> bool:
        """Cancel the running run (or the named one, running or queued)."""
        session = await self.get(principal, session_id)
        running = session.running
        if running is not None and run_id in (None, running.run_id):
            running.cancel_requested = True
            if running.scope is not None:
                running.scope.cancel()
            return True
        for run in session.queue:
            if run.run_id == run_id:
                session.queue.remove(run)
                session.events.append("run.cancelled", run.run_id, {"reason": "cancelled"})
                return True
        return False

    async def history(
        self, principal: Principal, session_id: str, limit: int, before: int | None
    ) -> dict[str, Any]:
        session = await self.get(principal, session_id)
        messages, has_more = await session.history.page(limit, before)
        return {"messages": [m.to_json() for m in messages], "has_more": has_more}

    async def clear(self, principal: Principal, session_id: str) -> int:
        """Cancel what runs, forget the messages, emit session.cleared."""
        session = await self.get(principal, session_id)
        async with session.lock:
            self._drop_queued(session, reason="cleared")
            if session.running is not None and session.running.scope is not None:
                session.running.cancel_requested = True
                session.running.scope.cancel()
            await session.idle.wait()
            with trio.CancelScope(shield=True):
                cleared = await session.history.clear()
            session.record.updated_at = time.time()
            session.idempotency.clear()
            session.events.append("session.cleared", None, {"cleared": cleared})
            return cleared

    # -- reports -------------------------------------------------------------

    def describe(self, session: Session) -> dict[str, Any]:
        record = session.record
        return {
            "session_id": record.id,
            "type": record.type,
            "title": record.title,
            "created_at": iso_utc(record.created_at),
            "updated_at": iso_utc(record.updated_at),
            "message_count": session.history.count,
        }

    def health(self) -> dict[str, Any]:
        sessions = list(self.sessions.values())
        by_type = {kind: 0 for kind in ("owner", "guest", "paired")}
        for session in sessions:
            by_type[session.record.type] += 1
        return {
            "sessions": len(sessions),
            "by_type": by_type,
            "runs_running": sum(1 for s in sessions if s.running is not None),
            "runs_queued": sum(len(s.queue) for s in sessions),
            "subscriptions": sum(len(s.events.subscribers) for s in sessions),
            "accepting": self.accepting,
        }


def _attachment_meta(attachments: tuple[Attachment, ...]) -> dict[str, Any]:
    if not attachments:
        return {}
    return {
        "attachments": [
            {"name": a.name, "mime_type": a.mime_type, "size": len(a.data)} for a in attachments
        ]
    }
