"""A session's runner: one task that runs the session's queued runs in order.

The hub starts :func:`run_queue` in its nursery when a run is queued in an
idle session; it runs the queue's runs one at a time, oldest first, and
returns when the queue is empty (so a session that is not answering holds
no task). For each run it emits ``run.started``, builds the
:class:`~aleph.engine.api.RunRequest`, calls the engine inside the run's own
cancel scope and translates what the engine emits into session events
(mapping in aleph/engine/api.py), storing the tool and assistant messages
before their events are sent.

Outcomes: the engine returns -> ``run.finished {"usage"}``;
:class:`EngineError` -> ``run.failed {"error": {"code", "message", "data"}}``;
any other exception is a bug: logged with its traceback, ``run.failed``
with a bare message, and the next run goes on; ``session.cancel`` cancels
the run's scope -> ``run.cancelled``.

A cancelled run keeps what was complete when it was cancelled: the user's
message and every tool or assistant message the engine had finished. The
partial text streamed so far is not stored in history; it stays in the event
log as ``run.delta`` events followed by ``run.cancelled``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import trio

from aleph.engine.api import (
    AssistantMessage,
    EngineError,
    EngineEvent,
    ExecutionEngine,
    HistoryMessage,
    RunRequest,
    TextDelta,
    ToolFinished,
    ToolStarted,
)
from aleph.sessions.model import Run, Session

__all__ = ["run_queue"]

log = logging.getLogger(__name__)


async def run_queue(
    session: Session, engine: ExecutionEngine, context_budget: int | None = None
) -> None:
    """Run the session's queued runs until none is left.

    `context_budget` (tokens; None: all) bounds how much history is read for
    each run (History.context)."""
    async with trio.open_nursery() as nursery:
        # Held run.delta text goes out when its interval is up (EventLog.delta).
        nursery.start_soon(session.events.serve_deltas)
        try:
            while session.queue and not session.deleted:
                run = session.queue.popleft()
                session.running = run
                try:
                    await _execute(session, engine, run, context_budget)
                finally:
                    session.running = None
                    session.last_activity = trio.current_time()
        finally:
            # No checkpoint between the last look at the queue and here, so a
            # run queued from now on starts a new runner (SessionHub._start_runner)
            # and none is left waiting; the timer task has nothing held to send.
            session.runner_active = False
            if not session.queue:
                session.idle.set()
            nursery.cancel_scope.cancel()


async def _execute(
    session: Session, engine: ExecutionEngine, run: Run, context_budget: int | None
) -> None:
    events = session.events
    events.append("run.started", run.run_id, {})
    emit = _Emitter(session, run)
    try:
        await _guarded(session, engine, run, emit, context_budget)
    except trio.Cancelled:
        # Cancelled from outside (the daemon stopping after its grace period).
        events.append("run.cancelled", run.run_id, {"reason": "shutdown"})
        raise


async def _guarded(
    session: Session,
    engine: ExecutionEngine,
    run: Run,
    emit: _Emitter,
    context_budget: int | None,
) -> None:
    events = session.events
    with trio.CancelScope() as scope:
        run.scope = scope
        if run.cancel_requested:
            scope.cancel()
        try:
            request = await _request(session, run, context_budget)
            usage = await engine.run(request, emit)
        except EngineError as exc:
            error = {"code": exc.code, "message": exc.message, "data": exc.data}
            events.append("run.failed", run.run_id, {"error": error})
            return
        except Exception:
            log.exception("run %s of session %s failed", run.run_id, session.id)
            error = {"code": -32603, "message": "internal error", "data": {}}
            events.append("run.failed", run.run_id, {"error": error})
            return
        events.append(
            "run.finished",
            run.run_id,
            {
                "usage": {
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "provider": usage.provider,
                    "model": usage.model,
                }
            },
        )
    if scope.cancelled_caught:
        events.append("run.cancelled", run.run_id, {})


async def _request(session: Session, run: Run, context_budget: int | None) -> RunRequest:
    record = session.record
    # The context is the stored messages except this run's own and those of the
    # runs still queued, each earlier run's answer right after its question
    # (within_budget).
    pending = {run.run_id, *(queued.run_id for queued in session.queue)}
    if run.context is not None and run.context_generation == session.history.generation:
        stored, run.context = run.context, None  # read with its message (hub.send)
    else:
        stored = await session.history.context(context_budget, pending)
    history = tuple(HistoryMessage(m.role, m.text, dict(m.meta)) for m in stored)
    return RunRequest(
        run_id=run.run_id,
        session_id=record.id,
        session_type=record.type,
        role=run.role,
        text=run.text,
        attachments=run.attachments,
        history=history,
        channel=record.channel_key or "websocket",
        system_prompt=record.system_prompt,
        model=record.model,
    )


class _Emitter:
    """The `emit` the engine awaits: engine events in, session events out."""

    def __init__(self, session: Session, run: Run) -> None:
        self.session, self.run = session, run

    async def __call__(self, event: EngineEvent) -> None:
        events, run_id = self.session.events, self.run.run_id
        if isinstance(event, TextDelta):
            if event.text:
                events.delta(run_id, event.text)
            # One checkpoint per event so that a fast engine never starves the loop.
            await trio.lowlevel.checkpoint()
        elif isinstance(event, ToolStarted):
            data = {"call_id": event.call_id, "name": event.name, "arguments": event.arguments}
            events.append("tool.started", run_id, data)
            await trio.lowlevel.checkpoint()
        elif isinstance(event, ToolFinished):
            meta: dict[str, Any] = {"call_id": event.call_id, "name": event.name}
            finished: dict[str, Any] = {"call_id": event.call_id}
            if event.error is not None:
                meta["error"] = event.error
                finished["error"] = event.error
                text = event.error
            else:
                finished["result"] = event.result
                text = event.result if isinstance(event.result, str) else _json(event.result)
            await self._store("tool", text, meta)
            events.append("tool.finished", run_id, finished)
        elif isinstance(event, AssistantMessage):
            events.flush_delta()  # the last words need not wait for the store
            meta = {"tool_calls": list(event.tool_calls)} if event.tool_calls else {}
            message = await self._store("assistant", event.text, meta)
            events.append(
                "message.assistant",
                run_id,
                {"message_id": message.message_id, "text": event.text},
            )
        else:  # pragma: no cover - the engine broke the seam's contract
            raise TypeError(f"unknown engine event {type(event).__name__}")

    async def _store(self, role: Any, text: str, meta: dict[str, Any]) -> Any:
        # A store that has started completes even if the run is being cancelled:
        # the message is either committed with its event sent, or not at all.
        with trio.CancelScope(shield=True):
            return await self.session.history.add(role, text, run_id=self.run.run_id, meta=meta)


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)
