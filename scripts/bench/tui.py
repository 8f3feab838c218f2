"""TUI responsiveness: a 20,000-token answer streaming in, a 5,000-message history.

    .venv/bin/python scripts/bench/tui.py [--tokens 20000] [--messages 5000]

Starts `aleph serve` (echo provider) as a subprocess with a fresh state dir,
so the daemon's work is not on the TUI's loop, and drives the TUI headless
(Textual's pilot, 120x36) in this process:

1. Sends a message of `--tokens` short words (a blank line every 60 words,
   like paragraphs); the echo provider streams it back word by word. Prints
   the time to the first rendered token and to the last, how many redraws
   that took, and the lag of the UI loop meanwhile (how late a 10 ms asyncio
   timer fires: the time a key press would wait), as p50/p99/max.
2. Stores `--messages` messages in a session (written straight into the
   stopped daemon's SQLite file), restarts the daemon, opens the TUI and
   prints the time to the latest page on screen and to each older page
   (ctrl+o), with the loop lag again.

Asserts nothing; the figures are for docs/tui.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
import trio_asyncio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from aleph.client import connect  # noqa: E402
from aleph.interfaces.tui.transcript import TranscriptView  # noqa: E402
from tests.e2e.daemon_process import start_daemon_process  # noqa: E402
from tests.tui.harness import Driver, driving  # noqa: E402

ENV = {
    "ALEPH_LIMITS__SESSION_MESSAGES_PER_MINUTE": "100000",
    "ALEPH_LIMITS__USER_MESSAGES_PER_MINUTE": "100000",
    "ALEPH_DAEMON__SHUTDOWN_GRACE": "0.5",
}
WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "ran"]


async def _probe(lags: list[float]) -> None:
    last = time.perf_counter()
    while True:
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        lags.append(max(0.0, now - last - 0.01))
        last = now


def _lag(lags: list[float]) -> str:
    ordered = sorted(lags) or [0.0]
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"UI loop lag p50 {statistics.median(ordered) * 1000:.1f} ms,"
        f" p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )


async def _measure(tui: Driver, lags: list[float], work: Any) -> Any:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio_asyncio.aio_as_trio(_probe), lags)
        result = await work()
        nursery.cancel_scope.cancel()
    return result


async def bench_stream(url: str, token: str, tokens: int) -> None:
    text = " ".join(
        WORDS[i % len(WORDS)] + ("\n\n" if i % 60 == 59 else "") for i in range(tokens - 1)
    )
    async with driving(url, token) as tui:
        await tui.until(lambda: tui.controller.current is not None)
        transcript = tui.app.query_one(TranscriptView)
        lags: list[float] = []

        async def work() -> tuple[float, float, int]:
            draws, start = tui.app.draws, time.perf_counter()
            await tui.controller.send(text)
            await tui.until(lambda: transcript.live_size > 0, within=120)
            first = time.perf_counter() - start
            model = tui.model()
            await tui.until(lambda: model.live is None and len(model.entries) == 2, within=600)
            await tui.until(lambda: transcript.live_size == 0, within=60)
            return first, time.perf_counter() - start, tui.app.draws - draws

        first, total, draws = await _measure(tui, lags, work)
        answer = tui.model().entries[-1].text
        print(
            f"{tokens:,}-token answer ({len(answer):,} chars): first token on screen"
            f" {first:.2f} s, last {total:.2f} s ({tokens / total:,.0f} tok/s),"
            f" {draws} redraws; {_lag(lags)}"
        )


async def bench_history(url: str, token: str) -> None:
    async with driving(url, token) as tui:
        lags: list[float] = []

        async def work() -> list[float]:
            start = time.perf_counter()
            await tui.until(lambda: tui.controller.current is not None)
            model = tui.model()
            transcript = tui.app.query_one(TranscriptView)
            await tui.until(lambda: model.loaded and len(transcript.children) > 50)
            times = [time.perf_counter() - start]
            for _ in range(5):
                start, before = time.perf_counter(), len(model.entries)
                await tui.call(tui.app.action_load_older)  # ctrl+o, without the pilot's idle wait
                await tui.until(lambda n=before: len(model.entries) > n)
                times.append(time.perf_counter() - start)
            return times

        times = await _measure(tui, lags, work)
        older = ", ".join(f"{t * 1000:.0f}" for t in times[1:])
        print(
            f"history: latest page on screen {times[0] * 1000:.0f} ms after start;"
            f" older pages (ctrl+o) {older} ms; {_lag(lags)}"
        )


def _fill(db: Path, session_id: str, messages: int) -> None:
    with sqlite3.connect(db) as conn:
        now = time.time()
        conn.executemany(
            "INSERT INTO session_messages (session_id, role, text, meta, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (session_id, "user" if n % 2 == 0 else "assistant", f"message **{n}**", "{}", now)
                for n in range(messages)
            ],
        )


async def _with_daemon(state: Path, work: Any) -> None:
    try:
        async with trio.open_nursery() as nursery:
            daemon = await start_daemon_process(nursery, state, **ENV)
            await work(daemon)
            await daemon.stop()
    except* trio.ClosedResourceError:
        pass  # tests.e2e's helper may close stderr under its reader as the process ends


async def main(tokens: int, messages: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        created: dict[str, Any] = {}

        async def stream(daemon: Any) -> None:
            await bench_stream(daemon.url, daemon.token, tokens)
            async with connect(daemon.url, daemon.token) as client:
                created.update(await client.call("session.create", {"title": "long"}))

        async def history(daemon: Any) -> None:
            await bench_history(daemon.url, daemon.token)

        await _with_daemon(state, stream)
        if messages:
            db = state / "aleph.db"
            await trio.to_thread.run_sync(_fill, db, created["session_id"], messages)
            print(f"{messages:,} messages stored in one session")
            await _with_daemon(state, history)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=5_000)
    options = parser.parse_args()
    trio.run(main, options.tokens, options.messages)
