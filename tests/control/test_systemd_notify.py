"""sd_notify as systemd would see it: a datagram socket named by $NOTIFY_SOCKET."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from aleph.config import Config
from aleph.daemon import Daemon
from aleph.systemd import notify, watchdog_interval


async def _bind_notify_socket(path: Path) -> trio.socket.SocketType:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await sock.bind(str(path))
    return sock


async def test_ready_after_listening_watchdog_at_half_the_usec_then_stopping(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
    make_config: Callable[..., Config],
) -> None:
    sock = await _bind_notify_socket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")  # systemd's WatchdogSec=4
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    config = make_config()
    daemon = Daemon(config, None)
    seen: list[tuple[float, str]] = []
    listening_at_ready: list[bool] = []

    async def receive() -> None:
        while True:
            message = (await sock.recv(4096)).decode()
            seen.append((trio.current_time(), message))
            if message == "READY=1":
                # At this instant both the gateway and the control socket must accept.
                port = int(daemon.gateway.listen_addresses[0].rsplit(":", 1)[1].split("/")[0])
                tcp = await trio.open_tcp_stream("127.0.0.1", port)
                unix = await trio.open_unix_socket(str(config.control_socket()))
                listening_at_ready.append(daemon.gateway.ready)
                await tcp.aclose()
                await unix.aclose()

    async with trio.open_nursery() as outer:
        outer.start_soon(receive)
        async with trio.open_nursery() as nursery:
            await nursery.start(daemon.run)
            started = trio.current_time()
            await trio.sleep(9.0)
            daemon.stop_requested.set()
        await trio.testing.wait_all_tasks_blocked()
        outer.cancel_scope.cancel()
    sock.close()

    messages = [message for _, message in seen]
    assert messages[0] == "READY=1"
    assert listening_at_ready == [True]
    assert messages.count("STOPPING=1") == 1
    stop = messages.index("STOPPING=1")
    assert set(messages[1:stop]) == {"WATCHDOG=1"}
    # While the services stop, the loop is still healthy: pings may go on, nothing else.
    assert set(messages[stop + 1 :]) <= {"WATCHDOG=1"}
    beats = [at for at, message in seen[:stop] if message == "WATCHDOG=1"]
    assert len(beats) == 5  # at 0, 2, 4, 6 and 8 seconds after READY
    assert beats[0] == pytest.approx(started, abs=1e-6)
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert gaps == pytest.approx([2.0] * 4, abs=1e-6)
    assert seen[stop][0] == pytest.approx(started + 9.0, abs=1e-6)


async def test_no_ready_when_start_up_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]
) -> None:
    sock = await _bind_notify_socket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    config = make_config()
    config.control_socket().write_text("not a socket")  # the control socket cannot be made
    daemon = Daemon(config, None)
    with trio.fail_after(20), pytest.raises(BaseExceptionGroup) as failed:
        await daemon.run()
    assert failed.group_contains(OSError, depth=None)
    with pytest.raises(BlockingIOError):
        _recv_nowait(sock)  # nothing was sent: not READY=1, nor anything else
    sock.close()


def _recv_nowait(sock: trio.socket.SocketType) -> Any:
    raw = socket.socket(fileno=sock.fileno())
    try:
        raw.setblocking(False)
        return raw.recv(4096)
    finally:
        raw.detach()


def test_notify_without_systemd_and_the_abstract_namespace(tmp_path: Path) -> None:
    assert notify("READY=1", {}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody")}) is False
    name = f"aleph-test-{id(tmp_path)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        assert notify("STATUS=hello", {"NOTIFY_SOCKET": "@" + name}) is True
        assert receiver.recv(100) == b"STATUS=hello"
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "x"}) is None
    assert watchdog_interval({}) is None
