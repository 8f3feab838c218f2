"""Session fan-out benchmark: one session, many subscribers, a long echo answer.

    .venv/bin/python scripts/bench/fanout.py [--quick] [--tokens N] [--subscribers N]

All on 127.0.0.1; stops by itself. The servers run as subprocesses of this
script so that their CPU time can be read from /proc; the clients are the
asyncio ``websockets`` client in this process (cheaper per frame than
trio-websocket, so the client side is not what limits the figures).

1. Throughput. A gateway (the real Daemon: sessions, echo provider, SQLite)
   with one session and N subscribers (default 100); one more connection
   sends a message of --tokens words (default 2,000), which the echo provider
   streams back word by word. Printed: events delivered per second in total
   (every subscriber's session.event frames), and the server's CPU time
   (utime + stime) per delivered event. Then the same for a bare
   trio-websocket server (``--serve-bare``) that broadcasts the same number
   of frames of the same size to N connections, through a bounded memory
   channel and a writer task per connection, the way the gateway does.
   Target: gateway CPU per event at most 1.5x the bare broadcast's.
   The row measured against the bare server uses the sessions' EchoEngine
   (exactly one run.delta per word); a second row shows the daemon's own echo
   provider through the whole AgentEngine (also one run.delta per word).
2. Latency, from the engine yielding a token to a client receiving it, with
   1 and with N subscribers: the gateway's engine is wrapped so that a
   message ``STAMP COUNT INTERVAL`` streams COUNT tokens, INTERVAL seconds
   apart, each token being the wall-clock time at which it was yielded
   (same machine, same clock). Target: p50 under 2 ms with 1 subscriber.

Both servers get outbound queues big enough to hold a whole answer, so the
slow-consumer policy (close 1008) never triggers in the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUEUE = 200_000  # outbound frames per connection, both servers
TARGET_CPU_RATIO = 1.5
TARGET_P50_MS = 2.0


# -- servers (subprocess side) ------------------------------------------------


def serve_gateway(state_dir: str) -> None:
    """Run the real daemon, its engine wrapped to answer STAMP messages."""
    import attrs
    import trio

    from aleph.config import load_config
    from aleph.daemon import Daemon
    from aleph.engine.api import AssistantMessage, Emit, RunRequest, TextDelta, Usage
    from aleph.engine.echo import EchoEngine

    @attrs.define(eq=False)
    class StampingEngine:
        inner: Any

        async def run(self, request: RunRequest, emit: Emit) -> Usage:
            if request.text.startswith("RAW "):
                # The sessions' EchoEngine: exactly one run.delta per word.
                raw = attrs.evolve(request, text=request.text.removeprefix("RAW "))
                return await EchoEngine().run(raw, emit)
            if not request.text.startswith("STAMP "):
                result: Usage = await self.inner.run(request, emit)
                return result
            _, count, interval = request.text.split()
            for _ in range(int(count)):
                await trio.sleep(float(interval))
                await emit(TextDelta(f"{time.time():.6f}"))
            await emit(AssistantMessage("[stamps]"))
            return Usage(provider="bench")

    environ = {
        **os.environ,
        "ALEPH_STORAGE__STATE_DIR": state_dir,
        "ALEPH_GATEWAY__PORT": "0",
        "ALEPH_GATEWAY__SEND_QUEUE_SIZE": str(QUEUE),
        "ALEPH_CONTROL__SOCKET": str(Path(state_dir) / "control.sock"),
        "ALEPH_DAEMON__LOG_LEVEL": "warning",
        "ALEPH_LIMITS__SESSION_MESSAGES_PER_MINUTE": "100000",
        "ALEPH_LIMITS__USER_MESSAGES_PER_MINUTE": "100000",
        # One run.delta per word, to compare frame for frame with the bare
        # broadcast (the default merges words that come within 0.5 ms).
        "ALEPH_LIMITS__DELTA_INTERVAL": "0",
    }
    config = load_config(None, environ)

    async def main() -> None:
        daemon = Daemon(config, None)
        async with trio.open_nursery() as nursery:
            gateway = await nursery.start(daemon.run)
            assert daemon.sessions is not None
            daemon.sessions.engine = StampingEngine(daemon.sessions.engine)
            port = gateway.listen_addresses[0].rsplit(":", 1)[1].split("/")[0]
            print(f"listening {port}", flush=True)

    trio.run(main)


def serve_bare() -> None:
    """A bare trio-websocket broadcaster: "go COUNT SIZE" -> COUNT frames to every peer."""
    import trio
    import trio_websocket

    peers: list[trio.MemorySendChannel[str]] = []

    async def writer(ws: Any, receive: trio.MemoryReceiveChannel[str]) -> None:
        async for frame in receive:
            await ws.send_message(frame)

    async def broadcast(count: int, size: int) -> None:
        for seq in range(1, count + 1):
            frame = orjson.dumps({"seq": seq, "pad": "x" * size}).decode()
            for peer in peers:
                peer.send_nowait(frame)
            await trio.lowlevel.checkpoint()  # as the session runner does per token
        for peer in peers:
            peer.send_nowait('{"done": true}')

    async def handler(request: Any) -> None:
        ws = await request.accept()
        send, receive = trio.open_memory_channel[str](QUEUE)
        peers.append(send)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer, ws, receive)
                while True:
                    message = await ws.get_message()
                    _, count, size = message.split()
                    nursery.start_soon(broadcast, int(count), int(size))
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            peers.remove(send)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, handler, HOST, 0, None)
            print(f"listening {server.port}", flush=True)

    trio.run(main)


# -- the driver ---------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int

    def cpu(self) -> float:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(name: str, *args: str) -> Server:
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("listening "):
        proc.kill()
        raise SystemExit(f"{name} did not start: {line!r}")
    return Server(name, proc, int(line.split()[1]))


class Rpc:
    """A JSON-RPC client on one websockets connection (calls only, no concurrency)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        await self.ws.send(
            orjson.dumps(
                {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
            ).decode()
        )
        while True:
            message = orjson.loads(await self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]


async def open_gateway(port: int, token: str) -> Rpc:
    ws = await connect(f"ws://{HOST}:{port}/ws", max_size=None, max_queue=None)
    await ws.recv()  # gateway.hello
    rpc = Rpc(ws)
    await rpc.call("auth.login", {"token": token})
    return rpc


async def drain_events(ws: ClientConnection, until: str, stamps: list[float] | None) -> int:
    """Count session.event frames until an event of type `until`; collect latencies."""
    count = 0
    while True:
        message = orjson.loads(await ws.recv())
        if message.get("method") != "session.event":
            continue
        count += 1
        params = message["params"]
        if stamps is not None and params["type"] == "run.delta":
            stamps.append(time.time() - float(params["data"]["text"]))
        if params["type"] == until:
            return count


async def gateway_session(port: int, token: str, subscribers: int) -> tuple[Rpc, str, list[Rpc]]:
    sender = await open_gateway(port, token)
    session_id = (await sender.call("session.create", {"title": "fanout"}))["session_id"]
    await sender.call("session.unsubscribe", {"session_id": session_id})
    subs = [await open_gateway(port, token) for _ in range(subscribers)]
    for sub in subs:
        await sub.call("session.subscribe", {"session_id": session_id})
    return sender, session_id, subs


async def close_all(rpcs: list[Rpc]) -> None:
    await asyncio.gather(*(rpc.ws.close() for rpc in rpcs))


async def gateway_throughput(
    server: Server, token: str, subs_n: int, tokens: int, prefix: str
) -> dict[str, float]:
    sender, session_id, subs = await gateway_session(server.port, token, subs_n)
    text = prefix + " ".join(f"w{i}" for i in range(tokens))
    # One warm-up answer, not measured.
    await sender.call("session.send", {"session_id": session_id, "text": "warm up " * 50})
    await asyncio.gather(*(drain_events(s.ws, "run.finished", None) for s in subs))
    cpu0, t0 = server.cpu(), time.perf_counter()
    await sender.call("session.send", {"session_id": session_id, "text": text})
    counts = await asyncio.gather(*(drain_events(s.ws, "run.finished", None) for s in subs))
    elapsed, cpu = time.perf_counter() - t0, server.cpu() - cpu0
    await close_all([sender, *subs])
    delivered = sum(counts)
    return {"events": delivered, "per_sub": delivered / subs_n, "seconds": elapsed, "cpu": cpu}


async def bare_throughput(server: Server, subs_n: int, frames: int, size: int) -> dict[str, float]:
    conns = [
        await connect(f"ws://{HOST}:{server.port}/", max_size=None, max_queue=None)
        for _ in range(subs_n)
    ]

    async def drain(ws: ClientConnection) -> int:
        count = 0
        while True:
            message = orjson.loads(await ws.recv())
            if message.get("done"):
                return count
            count += 1

    await conns[0].send(f"go 100 {size}")
    await asyncio.gather(*(drain(ws) for ws in conns))
    cpu0, t0 = server.cpu(), time.perf_counter()
    await conns[0].send(f"go {frames} {size}")
    counts = await asyncio.gather(*(drain(ws) for ws in conns))
    elapsed, cpu = time.perf_counter() - t0, server.cpu() - cpu0
    await asyncio.gather(*(ws.close() for ws in conns))
    return {"events": sum(counts), "seconds": elapsed, "cpu": cpu}


async def gateway_latency(
    server: Server, token: str, subs_n: int, count: int, interval: float
) -> list[float]:
    sender, session_id, subs = await gateway_session(server.port, token, subs_n)
    stamps: list[float] = []
    await sender.call(
        "session.send", {"session_id": session_id, "text": f"STAMP {count} {interval}"}
    )
    await asyncio.gather(*(drain_events(s.ws, "run.finished", stamps) for s in subs))
    await close_all([sender, *subs])
    return stamps


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def drive(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="aleph-fanout-") as state:
        gateway = start("gateway", "--serve-gateway", state)
        bare = start("bare", "--serve-bare")
        try:
            token = (Path(state) / "owner_token").read_text().strip()
            subs, tokens = args.subscribers, args.tokens
            print(f"fan-out: 1 session, {subs} subscribers, an echo answer of {tokens} tokens")
            g = await gateway_throughput(gateway, token, subs, tokens, "RAW ")
            p = await gateway_throughput(gateway, token, subs, tokens, "")
            frame_size = 160  # about a run.delta session.event frame
            b = await bare_throughput(bare, subs, round(g["per_sub"]), frame_size)
            rows = (
                ("gateway, one event per token", g),
                ("gateway, echo provider (coalesced under load)", p),
                ("bare trio-websocket broadcast", b),
            )
            for name, row in rows:
                print(
                    f"  {name}: {row['events']:,.0f} events in {row['seconds']:.2f} s = "
                    f"{row['events'] / row['seconds']:,.0f} events/s delivered; server CPU "
                    f"{row['cpu']:.2f} s = {row['cpu'] / row['events'] * 1e6:.1f} us/event"
                )
            ratio = (g["cpu"] / g["events"]) / (b["cpu"] / b["events"])
            verdict = "met" if ratio <= TARGET_CPU_RATIO else "NOT met"
            verdict = f"target <= {TARGET_CPU_RATIO}x: {verdict}"
            print(f"  CPU per event, gateway / bare: {ratio:.2f}x ({verdict})")
            print("latency, engine yields a token -> a client receives it:")
            for n in (1, subs):
                interval = args.interval * (1 if n == 1 else 4)
                lat = await gateway_latency(gateway, token, n, args.latency_tokens, interval)
                p50, p99 = percentile(lat, 0.5) * 1e3, percentile(lat, 0.99) * 1e3
                extra = ""
                if n == 1:
                    met = "met" if p50 < TARGET_P50_MS else "NOT met"
                    extra = f"  (target p50 < {TARGET_P50_MS} ms: {met})"
                print(
                    f"  {n:4d} subscriber(s), a token every {interval * 1e3:.0f} ms: "
                    f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({len(lat)} samples){extra}"
                )
        finally:
            gateway.stop()
            bare.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (500 tokens)")
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--latency-tokens", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.005, help="seconds between stamps")
    parser.add_argument("--serve-gateway", metavar="STATE_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        serve_gateway(args.serve_gateway)
        return 0
    if args.serve_bare:
        serve_bare()
        return 0
    if args.quick:
        args.tokens, args.latency_tokens = 500, 100
    asyncio.run(drive(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
