"""Gateway RPC benchmark (issue 2): the gateway core against a bare trio-websocket echo.

    .venv/bin/python scripts/bench/rpc.py [--quick]

What it does, all on 127.0.0.1, and stops by itself (about 2 minutes, or
about 40 seconds with ``--quick``):

1. Starts ``aleph serve`` in a fresh state directory and times it from the
   spawn to ``/readyz`` answering 200; reads its idle RSS.
2. Starts ``scripts/bench/echo_server.py`` (a bare trio-websocket echo server).
3. Drives both from this one process (the asyncio ``websockets`` client, far
   cheaper per message than trio-websocket) with 1 and with 50 connections in
   closed loops: ``system.ping`` frames padded to 100 bytes for the gateway,
   100-byte messages for the echo. After a warm-up it prints round trips per
   second and the server's CPU (utime + stime from ``/proc/PID/stat``)
   divided by the round trips, and the gateway/echo ratio.
4. Opens 1,000 then 5,000 idle connections to a fresh echo server (the
   baseline), then restarts the daemon (full run: its default 30 s heartbeat,
   so the connections are really idle when their RSS is read; --quick: 1 s),
   opens 1,000 then 5,000 idle authenticated connections (``auth.login`` with the owner
   token), prints the daemon's RSS per connection, holds them through three
   heartbeat intervals and checks that none was dropped and that each
   answered pings.

It prints figures and whether each target of the issue is met; it asserts
nothing. The machine is shared, so figures are noisy: compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import trio
import trio_websocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.typing import Data

HOST = "127.0.0.1"
PAYLOAD_BYTES = 100
ECHO_SERVER = Path(__file__).with_name("echo_server.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOFILE_WANTED = 20_000
OPEN_CONCURRENCY = 100  # handshakes in flight at once while opening idle connections
STOP_TIMEOUT = 15.0  # seconds for a server to exit after SIGTERM before it is killed

# Targets from the issue.
TARGET_CPU_RATIO = 1.3
TARGET_KIB_PER_CONN = 32.0
TARGET_STARTUP_S = 1.0
TARGET_IDLE_RSS_MB = 60.0


@dataclass(frozen=True)
class Settings:
    warmup: float  # seconds of load before measuring
    measure: float  # seconds measured per row
    concurrency: tuple[int, ...]
    idle_counts: tuple[int, ...]
    heartbeat: float  # the daemon's heartbeat_interval for the idle phase
    settle: float  # seconds to let the daemon settle before reading its RSS
    rounds: int  # interleaved rounds of the load rows; the targets use the median

    @classmethod
    def for_run(cls, quick: bool) -> Settings:
        if quick:
            return cls(0.5, 1.5, (1, 50), (250, 1000), 1.0, 0.5, 1)
        return cls(2.0, 6.0, (1, 50), (1000, 5000), 30.0, 1.0, 3)


# -- server processes ---------------------------------------------------------


@dataclass
class ServerProcess:
    """A server subprocess, and its CPU time and RSS read from /proc."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path | None = None

    def cpu_seconds(self) -> float:
        """utime + stime of every thread of the process so far."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"{self.name}: no VmRSS in /proc/{self.proc.pid}/status")

    def log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE for this process and the servers it starts (inherited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = NOFILE_WANTED if hard == resource.RLIM_INFINITY else min(NOFILE_WANTED, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def aleph_command() -> list[str]:
    script = Path(sys.executable).with_name("aleph")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "aleph", "serve"]


def daemon_env(workdir: Path, port: int, heartbeat: float) -> dict[str, str]:
    """The daemon's environment: ours, minus anything that would reach outside workdir."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ALEPH_")
        and key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY")
    }
    env.update(
        XDG_CONFIG_HOME=str(workdir / "config"),  # no user config file is picked up
        ALEPH_GATEWAY__HOST=HOST,
        ALEPH_GATEWAY__PORT=str(port),
        ALEPH_GATEWAY__HEARTBEAT_INTERVAL=str(heartbeat),
        # A client that misses a ping is closed before the next one is due, so a
        # hold through three intervals proves that every ping was answered.
        ALEPH_GATEWAY__CLIENT_TIMEOUT=str(heartbeat),
        ALEPH_GATEWAY__MAX_CONNECTIONS="20000",
        ALEPH_STORAGE__STATE_DIR=str(workdir / "state"),
        ALEPH_CONTROL__SOCKET=str(workdir / "control.sock"),
        ALEPH_DAEMON__LOG_LEVEL="warning",
        ALEPH_DAEMON__SHUTDOWN_GRACE="1",
    )
    return env


def http_status(port: int, path: str) -> int | None:
    """The status of GET path, or None while nothing listens."""
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as sock:
            request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
            sock.sendall(request.encode("ascii"))
            head = b""
            while b"\r\n" not in head and len(head) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


@dataclass(frozen=True)
class Startup:
    seconds: float  # spawn to the first /readyz 200
    rss_ready_kib: int  # RSS right then
    rss_idle_kib: int  # RSS after settling


def start_daemon(workdir: Path, heartbeat: float, settle: float) -> tuple[ServerProcess, Startup]:
    port = free_port()
    log_path = workdir / f"daemon-{port}.log"
    with log_path.open("wb") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen(
            aleph_command(),
            env=daemon_env(workdir, port, heartbeat),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    server = ServerProcess("aleph serve", proc, port, log_path)
    deadline = started + 30.0
    while http_status(port, "/readyz") != 200:
        server.check_alive()
        if time.perf_counter() > deadline:
            server.stop()
            raise RuntimeError(f"aleph serve not ready after 30 s\n{server.log_tail()}")
        time.sleep(0.002)
    seconds = time.perf_counter() - started
    rss_ready = server.rss_kib()
    time.sleep(settle)
    return server, Startup(seconds, rss_ready, server.rss_kib())


def start_echo_server() -> ServerProcess:
    proc = subprocess.Popen(
        [sys.executable, str(ECHO_SERVER), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30.0)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("listening "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"echo server did not start: {line!r}")
    return ServerProcess("trio-websocket echo", proc, int(line.split()[1]))


def owner_token(workdir: Path) -> str:
    return (workdir / "state" / "owner_token").read_text().strip()


# -- clients ------------------------------------------------------------------


class CountingConnection(ClientConnection):
    """A client connection that counts the pings the server sends it.

    The websockets library answers every ping itself (as it reads frames in
    the background); this only counts them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pings_received = 0

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings_received += 1
        super().process_event(event)


async def open_ws(url: str) -> CountingConnection:
    ws = await connect(
        url,
        compression=None,
        proxy=None,
        ping_interval=None,  # the server's heartbeat is what is measured
        open_timeout=30,
        close_timeout=2,
        create_connection=CountingConnection,
    )
    assert isinstance(ws, CountingConnection)
    return ws


def _call(msg_id: str, method: str, params: dict[str, Any] | None = None) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        message["params"] = params
    return orjson.dumps(message).decode()


async def _reply(ws: ClientConnection, msg_id: str) -> dict[str, Any]:
    """The response to msg_id, skipping notifications."""
    while True:
        message: dict[str, Any] = orjson.loads(await ws.recv())
        if message.get("id") == msg_id and "method" not in message:
            return message


async def open_authenticated(url: str, token: str) -> CountingConnection:
    """A gateway connection past gateway.hello and auth.login."""
    ws = await open_ws(url)
    hello: dict[str, Any] = orjson.loads(await ws.recv())
    if hello.get("method") != "gateway.hello":
        raise RuntimeError(f"expected gateway.hello, got {hello}")
    await ws.send(_call("login", "auth.login", {"token": token}))
    reply = await _reply(ws, "login")
    if "result" not in reply:
        raise RuntimeError(f"auth.login failed: {reply}")
    return ws


def padded_ping() -> str:
    """A system.ping request frame of exactly PAYLOAD_BYTES, padded through its id."""
    bare = _call("", "system.ping")
    return _call("p" * (PAYLOAD_BYTES - len(bare)), "system.ping")


@dataclass
class Target:
    """One server under load: how to open a connection, what to send, what to expect."""

    label: str
    server: ServerProcess
    open: Callable[[], Awaitable[ClientConnection]]
    payload: str
    check: Callable[[Data], bool]


def echo_target(server: ServerProcess) -> Target:
    payload = "e" * PAYLOAD_BYTES
    url = f"ws://{HOST}:{server.port}/"
    return Target("echo (trio-websocket)", server, lambda: open_ws(url), payload, payload.__eq__)


def gateway_target(server: ServerProcess, token: str) -> Target:
    url = f"ws://{HOST}:{server.port}/ws"
    return Target(
        "aleph system.ping",
        server,
        lambda: open_authenticated(url, token),
        padded_ping(),
        lambda reply: isinstance(reply, str) and '"result":{"time":' in reply,
    )


@dataclass
class Counter:
    done: int = 0
    bad: int = 0


@dataclass(frozen=True)
class LoadResult:
    label: str
    connections: int
    round_trips: int
    seconds: float
    server_cpu: float  # seconds
    client_cpu: float  # seconds
    bad_replies: int
    round: int = 0

    @property
    def rate(self) -> float:
        return self.round_trips / self.seconds

    @property
    def server_us(self) -> float:
        return self.server_cpu / self.round_trips * 1e6

    @property
    def client_us(self) -> float:
        return self.client_cpu / self.round_trips * 1e6

    @property
    def latency_us(self) -> float:
        return self.connections / self.rate * 1e6

    @property
    def server_busy(self) -> float:
        return self.server_cpu / self.seconds


async def _closed_loop(
    ws: ClientConnection, target: Target, counter: Counter, stop: asyncio.Event
) -> None:
    payload, check = target.payload, target.check
    while not stop.is_set():
        await ws.send(payload)
        reply = await ws.recv()
        counter.done += 1
        if not check(reply):
            counter.bad += 1


async def run_load(target: Target, connections: int, settings: Settings) -> LoadResult:
    conns = await asyncio.gather(*(target.open() for _ in range(connections)))
    counter, stop = Counter(), asyncio.Event()
    tasks = [asyncio.create_task(_closed_loop(ws, target, counter, stop)) for ws in conns]
    try:
        await asyncio.sleep(settings.warmup)
        target.server.check_alive()
        done0, bad0, cpu0 = counter.done, counter.bad, target.server.cpu_seconds()
        client0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(settings.measure)
        done1, bad1, cpu1 = counter.done, counter.bad, target.server.cpu_seconds()
        client1, t1 = time.process_time(), time.perf_counter()
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    if done1 == done0:
        raise RuntimeError(f"{target.label}: no round trips completed")
    return LoadResult(
        target.label,
        connections,
        done1 - done0,
        t1 - t0,
        cpu1 - cpu0,
        client1 - client0,
        bad1 - bad0,
    )


async def load_phase(targets: Sequence[Target], settings: Settings) -> list[LoadResult]:
    results = []
    # Interleaved, and in several rounds, so drifting background load on a shared
    # machine hits both servers alike and one unlucky sample does not decide.
    for round_ in range(settings.rounds):
        for connections in settings.concurrency:
            for target in targets:
                result = await run_load(target, connections, settings)
                results.append(dataclasses.replace(result, round=round_))
    return results


@dataclass(frozen=True)
class IdleRows:
    baseline_kib: int  # server RSS before the connections were opened
    rows: list[tuple[int, int, float]]  # (connections, RSS KiB, seconds to open them)

    def per_conn(self, count: int) -> float:
        rss = next(rss for conns, rss, _ in self.rows if conns == count)
        return (rss - self.baseline_kib) / count


@dataclass
class IdleResult:
    baseline_kib: int
    rows: list[tuple[int, int, float]] = field(default_factory=list)  # (conns, RSS KiB, open s)
    hold_seconds: float = 0.0
    hold_cpu: float = 0.0  # the daemon's CPU use during the hold, in cores
    held: int = 0
    closed: int = 0
    min_pings: int = 0
    max_pings: int = 0
    pongs: int = 0  # system.ping answered on every connection after the hold
    server_connected: int = 0  # clients the daemon counts after the hold
    rss_after_hold_kib: int = 0


async def open_idle(
    server: ServerProcess,
    opener: Callable[[], Awaitable[CountingConnection]],
    settings: Settings,
    conns: list[CountingConnection],
) -> list[tuple[int, int, float]]:
    """Open connections up to each of settings.idle_counts in turn, appending them to
    conns; (connections, server RSS KiB, seconds to open) after each step."""
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_one() -> CountingConnection:
        async with gate:
            return await opener()

    rows = []
    for count in settings.idle_counts:
        started = time.perf_counter()
        conns += await asyncio.gather(*(open_one() for _ in range(count - len(conns))))
        opened = time.perf_counter() - started
        await asyncio.sleep(settings.settle)
        server.check_alive()
        rows.append((count, server.rss_kib(), opened))
    return rows


async def echo_idle_phase(server: ServerProcess, settings: Settings) -> IdleRows:
    """The echo server's RSS with the same numbers of idle connections: the baseline."""
    url = f"ws://{HOST}:{server.port}/"
    await asyncio.sleep(settings.settle)
    baseline = server.rss_kib()
    conns: list[CountingConnection] = []
    try:
        return IdleRows(baseline, await open_idle(server, lambda: open_ws(url), settings, conns))
    finally:
        for ws in conns:
            ws.transport.abort()


async def idle_phase(server: ServerProcess, token: str, settings: Settings) -> IdleResult:
    url = f"ws://{HOST}:{server.port}/ws"
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def ping_one(ws: ClientConnection) -> bool:
        async with gate:
            await ws.send(_call("hold", "system.ping"))
            async with asyncio.timeout(30):
                return "result" in await _reply(ws, "hold")

    result = IdleResult(server.rss_kib())
    conns: list[CountingConnection] = []
    try:
        result.rows = await open_idle(
            server, lambda: open_authenticated(url, token), settings, conns
        )
        for ws in conns:
            ws.pings_received = 0
        # Hold until every connection has seen three heartbeats. A heartbeat comes
        # every interval plus the ping's round trip plus the loop's lag, so wait at
        # least three intervals, then until the slowest has its third ping (at most
        # six intervals).
        started, cpu0 = time.perf_counter(), server.cpu_seconds()
        await asyncio.sleep(3 * settings.heartbeat)
        while time.perf_counter() - started < 6 * settings.heartbeat:
            if min(ws.pings_received for ws in conns) >= 3:
                break
            await asyncio.sleep(0.1)
        result.hold_seconds = time.perf_counter() - started
        result.hold_cpu = (server.cpu_seconds() - cpu0) / result.hold_seconds
        server.check_alive()
        result.rss_after_hold_kib = server.rss_kib()
        result.held = len(conns)
        result.closed = sum(1 for ws in conns if ws.state is not State.OPEN)
        pings = [ws.pings_received for ws in conns]
        result.min_pings, result.max_pings = min(pings), max(pings)
        if result.closed == 0:
            answers = await asyncio.gather(*(ping_one(ws) for ws in conns))
            result.pongs = sum(answers)
            await conns[0].send(_call("health", "system.health"))
            health = await _reply(conns[0], "health")
            result.server_connected = int(health["result"]["clients"]["connected"])
    finally:
        for ws in conns:  # drop them all at once; the daemon is stopped next anyway
            ws.transport.abort()
    return result


# -- report -------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def print_header(settings: Settings, fd_limit: int) -> None:
    print("Gateway RPC benchmark (issue 2)")
    print(
        f"  machine: {os.cpu_count()} vCPU, {platform.machine()}, Linux {platform.release()};"
        f" Python {platform.python_version()}, trio {trio.__version__},"
        f" trio-websocket {trio_websocket.__version__}"
    )
    load = os.getloadavg()
    print(
        f"  load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; fd limit {fd_limit}"
    )
    print(
        f"  load rows: {settings.warmup:g} s warm-up, {settings.measure:g} s measured;"
        f" {PAYLOAD_BYTES}-byte frames; one client process (asyncio websockets)"
    )
    print()


def print_startup(label: str, startup: Startup) -> None:
    print(
        f"{label}: /readyz 200 after {startup.seconds * 1000:.0f} ms;"
        f" RSS {startup.rss_ready_kib / 1024:.1f} MiB at ready,"
        f" {startup.rss_idle_kib / 1024:.1f} MiB idle"
    )


def print_load(results: Sequence[LoadResult]) -> None:
    print()
    print(
        f"{'round':>5} {'server':<22} {'conns':>5} {'round trips/s':>13} {'mean RTT us':>11}"
        f" {'server CPU us/req':>17} {'server busy':>11} {'client CPU us/req':>17}"
    )
    for r in results:
        bad = f"  ({r.bad_replies} bad replies)" if r.bad_replies else ""
        print(
            f"{r.round + 1:>5} {r.label:<22} {r.connections:>5} {r.rate:>13,.0f}"
            f" {r.latency_us:>11,.0f} {r.server_us:>17.1f} {r.server_busy:>10.0%}"
            f" {r.client_us:>17.1f}{bad}"
        )
    print()
    for conns, pairs in paired(results).items():
        cpu = [gateway.server_us / echo.server_us for echo, gateway in pairs]
        rate = [gateway.rate / echo.rate for echo, gateway in pairs]
        print(
            f"aleph/echo at {conns:>2} connection(s): server CPU per request"
            f" x{statistics.median(cpu):.2f} (rounds: {', '.join(f'x{c:.2f}' for c in cpu)}),"
            f" round trips/s x{statistics.median(rate):.2f}"
        )


def paired(results: Sequence[LoadResult]) -> dict[int, list[tuple[LoadResult, LoadResult]]]:
    """(echo, gateway) of each round, by concurrency level."""
    by_key = {(r.round, r.label.startswith("aleph"), r.connections): r for r in results}
    levels = sorted({r.connections for r in results})
    rounds = sorted({r.round for r in results})
    return {c: [(by_key[(n, False, c)], by_key[(n, True, c)]) for n in rounds] for c in levels}


def print_idle(idle: IdleResult, echo: IdleRows, heartbeat: float) -> None:
    print()
    print(
        f"{'idle authenticated connections':<30} {'daemon RSS MiB':>14}"
        f" {'KiB/conn':>9} {'opened in s':>11} {'echo KiB/conn':>13}"
    )
    print(f"{0:>30,} {idle.baseline_kib / 1024:>14.1f}")
    for count, rss, opened in idle.rows:
        per_conn = (rss - idle.baseline_kib) / count
        print(
            f"{count:>30,} {rss / 1024:>14.1f} {per_conn:>9.1f} {opened:>11.1f}"
            f" {echo.per_conn(count):>13.1f}"
        )
    print(
        f"hold: {idle.held:,} connections for {idle.hold_seconds:.1f} s"
        f" (heartbeat_interval {heartbeat:g} s, client_timeout {heartbeat:g} s):"
        f" {idle.closed} closed; pings received per connection {idle.min_pings}..{idle.max_pings};"
        f" system.ping answered afterwards on {idle.pongs:,};"
        f" daemon counts {idle.server_connected:,} clients;"
        f" RSS {idle.rss_after_hold_kib / 1024:.1f} MiB;"
        f" daemon CPU during the hold {idle.hold_cpu:.0%} of a core"
    )


def print_targets(
    results: Sequence[LoadResult], idle: IdleResult, startups: Sequence[Startup]
) -> None:
    print()
    print("targets:")
    for conns, pairs in paired(results).items():
        ratio = statistics.median(gateway.server_us / echo.server_us for echo, gateway in pairs)
        print(
            f"  server CPU per system.ping <= {TARGET_CPU_RATIO}x echo ({conns} conn,"
            f" median of {len(pairs)}): x{ratio:.2f} -> {verdict(ratio <= TARGET_CPU_RATIO)}"
        )
    for count, rss, _ in idle.rows:
        per_conn = (rss - idle.baseline_kib) / count
        print(
            f"  RSS per idle authenticated connection <= {TARGET_KIB_PER_CONN:g} KiB ({count:,}):"
            f" {per_conn:.1f} KiB -> {verdict(per_conn <= TARGET_KIB_PER_CONN)}"
        )
    held = idle.closed == 0 and idle.min_pings >= 3 and idle.pongs == idle.held
    print(
        f"  {idle.held:,} idle connections held through 3 heartbeat intervals, none dropped:"
        f" {idle.closed} dropped in {idle.hold_seconds:.1f} s, >= {idle.min_pings} pings each"
        f" -> {verdict(held)}"
    )
    worst_start = max(s.seconds for s in startups)
    worst_rss = max(s.rss_idle_kib for s in startups) / 1024
    print(
        f"  aleph serve to /readyz 200 < {TARGET_STARTUP_S:g} s: {worst_start * 1000:.0f} ms"
        f" (slowest of {len(startups)}) -> {verdict(worst_start < TARGET_STARTUP_S)}"
    )
    print(
        f"  idle RSS < {TARGET_IDLE_RSS_MB:g} MB: {worst_rss:.1f} MiB"
        f" -> {verdict(worst_rss * 1.048576 < TARGET_IDLE_RSS_MB)}"
    )


# -- main ---------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter phases, fewer connections")
    args = parser.parse_args(argv)
    settings = Settings.for_run(args.quick)
    fd_limit = raise_fd_limit()
    if fd_limit < max(settings.idle_counts) + 200:
        print(f"RLIMIT_NOFILE is {fd_limit}: too low for the idle phase", file=sys.stderr)
        return 1
    print_header(settings, fd_limit)
    with tempfile.TemporaryDirectory(prefix="aleph-bench-") as tmp:
        workdir = Path(tmp)
        # Cold start (creates the state directory, the owner token and the store);
        # heartbeat at its default so it plays no part in the load rows.
        daemon, cold = start_daemon(workdir, 30.0, settings.settle)
        print_startup("aleph serve, cold start (fresh state dir)", cold)
        token = owner_token(workdir)
        echo = start_echo_server()
        try:
            targets = [echo_target(echo), gateway_target(daemon, token)]
            results = asyncio.run(load_phase(targets, settings))
        finally:
            echo.stop()
            daemon.stop()
        echo = start_echo_server()  # a fresh one: idle RSS per connection, the baseline
        try:
            echo_idle = asyncio.run(echo_idle_phase(echo, settings))
        finally:
            echo.stop()
        daemon, warm = start_daemon(workdir, settings.heartbeat, settings.settle)
        print_startup("aleph serve, warm start (existing state)", warm)
        try:
            idle = asyncio.run(idle_phase(daemon, token, settings))
        finally:
            daemon.stop()
    print_load(results)
    print_idle(idle, echo_idle, settings.heartbeat)
    print_targets(results, idle, (cold, warm))
    return 0


if __name__ == "__main__":
    sys.exit(main())
