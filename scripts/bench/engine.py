"""Engine benchmark: a provider streaming 2,000 tokens as fast as it can, through Aleph.

    .venv/bin/python scripts/bench/engine.py [--tokens 2000] [--runs 11] [--rate 0]

What it does, all on 127.0.0.1:

1. Starts the OpenAI-compatible peer (``tests/peers/openai_peer.py``) in its
   own process; every answer is `--tokens` one-word deltas, each its own SSE
   event in its own HTTP chunk, written with no pause (or `--rate` tokens a
   second, to see the latency at the pace of a real model).
2. A bare client (httpx on the daemon's own transport, its connection kept
   alive across runs as the daemon's provider keeps its own, so that it is
   never slower than the peer; it splits the stream and parses each event's
   JSON)
   measures the peer's own rate: tokens per second from the request to the
   last token, and from the first token to the last.
3. Starts the daemon in this process with ``provider.kind = "openai"``
   pointed at the peer, and a WebSocket client in another process (the
   asyncio ``websockets`` client, so its cost is not on the daemon's loop)
   that creates a session and then sends one message per run, timestamping
   every ``run.delta`` as it arrives. Bare runs and runs through Aleph
   alternate, `--runs` of each, so both see the same machine.
4. The daemon's provider is wrapped to timestamp, for each token, the moment
   the network read that carried it returned (the first read of its body
   piece, were a piece ever to join several reads). Added latency per token =
   client receive time - chunk receive time (both ``time.perf_counter``,
   CLOCK_MONOTONIC, one clock for both processes). When the client falls
   behind, several tokens may share one run.delta.

5. ``--intervals 0,0.5,1`` compares values of ``limits.delta_interval`` (in
   milliseconds; the daemon merges ``run.delta`` text that comes faster than
   that), each round running through Aleph once at each value in turn.

Prints p50/p99 added latency and the end-to-end rate against the bare rate,
with the targets (>= 90 % of the peer's rate, p50 < 1 ms). Asserts nothing;
the first run of each kind is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from aleph.config import load_config  # noqa: E402
from aleph.daemon import Daemon  # noqa: E402
from aleph.engine.api import TextDelta  # noqa: E402
from aleph.engine.conversation import LlmProvider, OnText, ProviderRequest, Turn  # noqa: E402
from aleph.engine.providers import http as provider_http  # noqa: E402
from aleph.engine.providers import transport as provider_transport  # noqa: E402
from aleph.engine.providers.transport import Http1Transport  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the bare client ---------------------------------------------------------------


async def bare_run(client: httpx.AsyncClient, base_url: str) -> tuple[int, float, float]:
    """(tokens, request->last seconds, first->last seconds) for one streamed answer."""
    body = {"model": "peer-model", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    tokens, first, last = 0, 0.0, 0.0
    start = time.perf_counter()
    async with client.stream("POST", base_url + "/chat/completions", json=body) as response:
        buffer = b""
        async for piece in response.aiter_bytes():
            buffer += piece
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                data = event.removeprefix(b"data: ")
                if data == b"[DONE]":
                    continue
                chunk = orjson.loads(data)
                choices = chunk.get("choices") or [{}]
                if choices[0].get("delta", {}).get("content"):
                    tokens += 1
                    last = time.perf_counter()
                    first = first or last
    return tokens, last - start, last - first


# -- timing inside the daemon ---------------------------------------------------------


@attrs.define(eq=False)
class ChunkClock:
    received: float = 0.0  # when the first bytes of the piece being parsed were read
    first_read: float | None = None
    runs: list[list[float]] = attrs.Factory(list)
    emitted: list[list[float]] = attrs.Factory(list)  # when the runner had the event


def instrument(clock: ChunkClock) -> None:
    """Timestamp each body piece with its first network read, before anything parses it.

    Were a piece ever to join several reads, the time of the first is given to
    every token in it, so any wait for the later reads counts as added latency.
    """
    real_receive = provider_transport._receive
    real_pump = provider_http.pump

    async def timed_receive(connection: Any, limit: float | None) -> bytes | bytearray:
        data = await real_receive(connection, limit)
        if clock.first_read is None:
            clock.first_read = time.perf_counter()
        return data

    async def timed_pump(response: httpx.Response, handle: Any) -> None:
        async def timed(piece: bytes) -> bool:
            clock.received = clock.first_read or time.perf_counter()
            clock.first_read = None
            more: bool = await handle(piece)
            return more

        await real_pump(response, timed)

    provider_transport._receive = timed_receive
    provider_http.pump = timed_pump


@attrs.define(eq=False)
class TimedEngine:
    """Timestamps each run.delta as the engine hands it to the session runner."""

    inner: Any
    clock: ChunkClock

    async def run(self, request: Any, emit: Any) -> Any:
        emitted: list[float] = []
        self.clock.emitted.append(emitted)

        async def timed(event: Any) -> None:
            if isinstance(event, TextDelta):
                emitted.extend([time.perf_counter()] * max(1, event.text.count(" ")))
            await emit(event)

        return await self.inner.run(request, timed)


@attrs.define(eq=False)
class TimedProvider:
    inner: LlmProvider
    clock: ChunkClock

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def accepts_images(self) -> bool:
        return self.inner.accepts_images

    async def complete(self, request: ProviderRequest, on_text: OnText) -> Turn:
        times: list[float] = []
        self.clock.runs.append(times)
        self.clock.first_read = None  # the bare client's reads are not this run's

        async def timed(delta: str) -> None:
            # One delta per network read: it may carry many one-word tokens.
            times.extend([self.clock.received] * max(1, delta.count(" ")))
            await on_text(delta)

        return await self.inner.complete(request, timed)

    async def aclose(self) -> None:
        await self.inner.aclose()


# -- the WebSocket client, in its own process ----------------------------------------------


async def client_main(url: str, token: str) -> None:
    """Log in, create a session, then one run per "go" line on stdin, one JSON line each."""
    from websockets.asyncio.client import connect

    ids = iter(range(1, 1_000_000))
    loop = asyncio.get_running_loop()

    async with connect(url, max_size=None) as ws:
        await ws.recv()  # gateway.hello

        async def call(method: str, params: dict[str, Any]) -> Any:
            call_id = next(ids)
            await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": call_id, "method": method,
                                        "params": params}).decode())  # fmt: skip
            while True:
                message = orjson.loads(await ws.recv())
                if message.get("id") == call_id:
                    return message["result"]

        await call("auth.login", {"token": token})
        session = (await call("session.create", {}))["session_id"]
        print("ready", flush=True)
        run = 0
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
            sent = time.perf_counter()
            await call("session.send", {"session_id": session, "text": f"run {run}"})
            deltas: list[tuple[float, int]] = []
            while True:
                raw = await ws.recv()
                now = time.perf_counter()
                if '"run.delta"' in raw:
                    text = orjson.loads(raw)["params"]["data"]["text"]
                    deltas.append((now, text.count(" ")))
                elif '"run.finished"' in raw or '"run.failed"' in raw:
                    break
            print(orjson.dumps({"sent": sent, "deltas": deltas}).decode(), flush=True)
            run += 1


# -- the benchmark -----------------------------------------------------------------------


@attrs.define(eq=False)
class Lines:
    """Lines from a process's stdout."""

    stream: trio.abc.ReceiveStream
    buffer: bytes = b""

    async def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            data = await self.stream.receive_some(1 << 20)
            if not data:
                raise RuntimeError("the benchmark client exited")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line


async def bench(base_url: str, tokens: int, runs: int, intervals: list[float]) -> None:
    """Bare runs and runs through Aleph alternate, so both see the same machine.

    With several `intervals` (values of ``limits.delta_interval``), each round
    is one bare run and then one run through Aleph at each interval in turn.
    """
    clock = ChunkClock()
    instrument(clock)
    bare: list[tuple[int, float, float]] = []
    client_runs: dict[float, list[dict[str, Any]]] = {i: [] for i in intervals}
    provider_runs: dict[float, list[list[float]]] = {i: [] for i in intervals}
    emitted_runs: dict[float, list[list[float]]] = {i: [] for i in intervals}
    cpu = dict.fromkeys(intervals, 0.0)
    wall = dict.fromkeys(intervals, 0.0)
    with tempfile.TemporaryDirectory() as state:
        config = load_config(None, environ={
            "ALEPH_GATEWAY__PORT": "0", "ALEPH_STORAGE__STATE_DIR": state,
            "ALEPH_CONTROL__SOCKET": os.path.join(state, "control.sock"),
            "ALEPH_PROVIDER__KIND": "openai", "ALEPH_PROVIDER__BASE_URL": base_url,
            "ALEPH_PROVIDER__MODEL": "peer-model",
            "ALEPH_LIMITS__SESSION_MESSAGES_PER_MINUTE": "1000",
            "ALEPH_LIMITS__USER_MESSAGES_PER_MINUTE": "1000",
        })  # fmt: skip
        daemon = Daemon(config, None)
        daemon.engine.provider = TimedProvider(daemon.engine.provider, clock)
        timed_engine = TimedEngine(daemon.engine, clock)
        async with trio.open_nursery() as nursery:
            gateway = await nursery.start(daemon.run)
            assert daemon.sessions is not None
            daemon.sessions.engine = timed_engine
            port = int(gateway.listen_addresses[0].rsplit(":", 1)[1].split("/")[0])
            token = (Path(state) / "owner_token").read_text().strip()
            url = f"ws://127.0.0.1:{port}/ws"
            process = await trio.lowlevel.open_process(
                [sys.executable, __file__, "--client", url, token],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert process.stdin is not None
            assert process.stdout is not None
            lines = Lines(process.stdout)
            assert await lines.readline() == b"ready"
            # The daemon's own transport, one connection kept alive like the
            # provider's: the bare client must not be slower than the peer.
            async with httpx.AsyncClient(timeout=60, transport=Http1Transport()) as bare_client:
                for _ in range(runs):
                    bare.append(await bare_run(bare_client, base_url))
                    for interval in intervals:
                        daemon.sessions.set_delta_interval(interval)
                        cpu_before, wall_before = time.process_time(), time.perf_counter()
                        await process.stdin.send_all(b"go\n")
                        client_runs[interval].append(orjson.loads(await lines.readline()))
                        cpu[interval] += time.process_time() - cpu_before
                        wall[interval] += time.perf_counter() - wall_before
                        provider_runs[interval].append(clock.runs[-1])
                        emitted_runs[interval].append(clock.emitted[-1])
            await process.stdin.send_all(b"stop\n")
            await process.wait()
            daemon.stop_requested.set()
    assert all(count == tokens for count, _, _ in bare), bare
    bare = bare[1:]  # the first of each kind is a warm-up
    bare_total = statistics.median(tokens / total for _, total, _ in bare)
    bare_stream = statistics.median(tokens / span for _, _, span in bare)
    print(f"engine benchmark: {tokens} tokens x {runs - 1} runs of each kind (after a warm-up)")
    bare_first = statistics.median(total - span for _, total, span in bare) * 1000
    print(f"  bare client        {bare_total:10.0f} tok/s send->last   {bare_stream:10.0f} tok/s "
          f"first->last   first token after {bare_first:.2f} ms")  # fmt: skip
    for interval in intervals:
        print(f"limits.delta_interval = {interval * 1000:g} ms")
        report(tokens, client_runs[interval][1:], provider_runs[interval][1:], bare_total,
               bare_stream)  # fmt: skip
        print(
            f"  daemon process CPU {cpu[interval] * 1e6 / (runs * tokens):.1f} us per token "
            f"({cpu[interval]:.2f} s over {wall[interval]:.2f} s of the runs through Aleph, "
            "warm-up included)"
        )
        engine_part = [
            (e - r) * 1000
            for received, emitted in zip(
                provider_runs[interval][1:], emitted_runs[interval][1:], strict=True
            )
            for r, e in zip(received, emitted, strict=True)
        ]
        print(
            f"  of which engine    p50 {percentile(engine_part, 0.5):.3f} ms   p99 "
            f"{percentile(engine_part, 0.99):.3f} ms   (chunk received -> run.delta handed "
            "to the session runner)"
        )


def report(
    tokens: int,
    client_runs: list[dict[str, Any]],
    provider_runs: list[list[float]],
    bare_total: float,
    bare_stream: float,
) -> None:
    latencies: list[float] = []
    totals, streams, frames, firsts = [], [], [], []
    for client, received in zip(client_runs, provider_runs, strict=True):
        arrivals: list[float] = []
        for when, count in client["deltas"]:
            arrivals += [when] * max(count, 1)
        arrivals = arrivals[: len(received)]
        assert len(arrivals) == len(received) == tokens, (len(arrivals), len(received))
        latencies += [(a - r) * 1000 for a, r in zip(arrivals, received, strict=True)]
        totals.append(tokens / (arrivals[-1] - client["sent"]))
        streams.append(tokens / (arrivals[-1] - arrivals[0]))
        frames.append(len(client["deltas"]))
        firsts.append((arrivals[0] - client["sent"]) * 1000)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    total, stream = statistics.median(totals), statistics.median(streams)
    print(
        f"  through aleph      {total:10.0f} tok/s send->last   {stream:10.0f} tok/s "
        f"first->last   first token after {statistics.median(firsts):.2f} ms   "
        f"({statistics.median(frames):.0f} run.delta frames per run)"
    )
    ratio_total, ratio_stream = total / bare_total, stream / bare_stream
    print(
        f"  ratio              {ratio_total:10.1%}                  {ratio_stream:10.1%}"
        f"          target >= 90%: {'met' if ratio_total >= 0.9 else 'NOT met'}"
    )
    print(
        f"  added latency      p50 {p50:.3f} ms   p99 {p99:.3f} ms   max {max(latencies):.3f} ms"
        f"   target p50 < 1 ms: {'met' if p50 < 1 else 'NOT met'}"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        asyncio.run(client_main(sys.argv[2], sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="pace the peer at this many tokens/s (default: as fast as it can)",
    )
    parser.add_argument(
        "--intervals",
        default="0.5",
        help="limits.delta_interval values in ms, comma-separated, compared in one run "
        "(default: 0.5, the built-in default)",
    )
    arguments = parser.parse_args()
    peer = subprocess.Popen(
        [sys.executable, "-m", "tests.peers.openai_peer", "--tokens", str(arguments.tokens),
         "--rate", str(arguments.rate)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert peer.stdout is not None
        port = int(peer.stdout.readline().split()[1])
        intervals = [float(ms) / 1000 for ms in arguments.intervals.split(",")]
        trio.run(bench, f"http://127.0.0.1:{port}/v1", arguments.tokens, arguments.runs, intervals)
    finally:
        peer.terminate()
        peer.wait()


if __name__ == "__main__":
    main()
