"""In-process stand-ins for hub tests: a connected client and scripted engines."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio

from aleph.engine.api import Emit, EngineError, RunRequest, TextDelta, Usage
from aleph.engine.echo import EchoEngine
from aleph.gateway.client import Client
from aleph.sessions import SendLimits, SessionHub, SessionStore, migrations
from aleph.storage import Database

_ids = itertools.count(1)


@attrs.define(eq=False)
class FakeConnection:
    """A Client whose frames land in `frames`, with a nursery like a real connection's."""

    client: Client
    frames: list[dict[str, Any]] = attrs.Factory(list)
    times: list[float] = attrs.Factory(list)  # trio.current_time() each frame arrived

    def timed_events(self) -> list[tuple[float, dict[str, Any]]]:
        return [
            (when, f["params"])
            for when, f in zip(self.times, self.frames, strict=True)
            if f.get("method") == "session.event"
        ]

    def events(self) -> list[dict[str, Any]]:
        return [f["params"] for f in self.frames if f.get("method") == "session.event"]

    def seqs(self) -> list[int]:
        return [e["seq"] for e in self.events()]


async def _serve_connection(
    conn: FakeConnection,
    receive: trio.MemoryReceiveChannel[str],
    slowness: int = 0,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    client = conn.client
    try:
        async with trio.open_nursery() as tasks:
            client.nursery = tasks

            async def read() -> None:
                async for text in receive:
                    conn.frames.append(orjson.loads(text))
                    conn.times.append(trio.current_time())
                    for _ in range(slowness):  # a slow reader: lets others run first
                        await trio.lowlevel.checkpoint()

            tasks.start_soon(read)
            task_status.started()
            await client.wait_closing()
            tasks.cancel_scope.cancel()
    finally:
        client.outbound.close()
        receive.close()
        client.closed()


async def connect(nursery: trio.Nursery, queue: int = 10_000, slowness: int = 0) -> FakeConnection:
    send, receive = trio.open_memory_channel[str](queue)
    conn = FakeConnection(Client(f"c_{next(_ids)}", "test", send))
    await nursery.start(_serve_connection, conn, receive, slowness)
    return conn


@attrs.define(eq=False)
class SlowEngine:
    """Streams `words` deltas, `delay` seconds apart; fails when the text says so."""

    delay: float = 1.0
    words: int = 5

    async def run(self, request: RunRequest, emit: Emit) -> Usage:
        if request.text == "fail":
            raise EngineError("the model is down", data={"provider": "fake"})
        if request.text == "crash":
            raise RuntimeError("a bug with a secret inside")
        for index in range(self.words):
            await trio.sleep(self.delay)
            await emit(TextDelta(f"w{index} "))
        return Usage(provider="fake")


@asynccontextmanager
async def running_hub(
    db_path: Path,
    engine: Any = None,
    *,
    session_rate: float = 1000,
    user_rate: float = 1000,
    grace: float = 5.0,
    **options: Any,
) -> AsyncIterator[tuple[SessionHub, trio.Event]]:
    """A hub on its own database, stopped gracefully when the block ends."""
    db = await Database.open(db_path, migrations())
    stopping = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            hub = SessionHub(
                SessionStore(db),
                engine or EchoEngine(),
                SendLimits(session_rate, user_rate),
                **options,
            )
            await nursery.start(hub.serve, stopping, grace)
            yield hub, stopping
            stopping.set()
    finally:
        await db.aclose()
