"""`aleph serve` and `aleph ctl` as an operator runs them: real processes, real signals."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio

from aleph.client import connect
from tests.e2e.daemon_process import daemon_env
from tests.gateway.wsutil import http_exchange, upgrade_request

pytestmark = pytest.mark.e2e

ORIGIN = "https://app.example.com"
LISTENING = re.compile(rb"listening on ws://127\.0\.0\.1:(\d+)/ws")


async def ctl(sock: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "aleph", "ctl", "--socket", str(sock), *argv],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


@attrs.define(eq=False)
class Served:
    """`aleph serve` in a subprocess; its stderr read by one task that owns it."""

    process: trio.Process
    log: bytearray = attrs.Factory(bytearray)
    grew: trio.Event = attrs.Factory(trio.Event)
    ended: bool = False

    async def pump(self) -> None:
        assert self.process.stderr is not None
        async with self.process.stderr:
            while chunk := await self.process.stderr.receive_some():
                self.log += chunk
                self.grew.set()
                self.grew = trio.Event()
        self.ended = True
        self.grew.set()

    async def wait_for_log(self, pattern: bytes) -> re.Match[bytes]:
        with trio.fail_after(30):
            while (match := re.search(pattern, self.log)) is None:
                assert not self.ended, self.log.decode()
                await self.grew.wait()
        return match

    async def stop(self) -> int:
        with trio.fail_after(30):
            return await self.process.wait()


async def serve(nursery: trio.Nursery, argv: list[str], env: dict[str, str], **kw: Any) -> Served:
    process = await trio.lowlevel.open_process(argv, env=env, stderr=subprocess.PIPE, **kw)
    served = Served(process)

    async def pump_then_reap() -> None:
        try:
            await served.pump()
            await process.wait()
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                    await process.wait()

    nursery.start_soon(pump_then_reap)
    return served


async def test_ctl_sighup_and_sd_notify_against_a_real_daemon(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    notify = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await notify.bind(str(tmp_path / "notify.sock"))
    with notify:
        await _operate(tmp_path, nursery, notify)


async def _operate(tmp_path: Path, nursery: trio.Nursery, notify: trio.socket.SocketType) -> None:
    config = tmp_path / "aleph.toml"
    config.write_text("[gateway]\nallowed_origins = []\n")
    sock = tmp_path / "control.sock"  # daemon_env puts it beside the state directory
    env = daemon_env(tmp_path / "state", NOTIFY_SOCKET=str(tmp_path / "notify.sock"))
    argv = [sys.executable, "-m", "aleph", "serve", "--config", str(config)]
    daemon = await serve(nursery, argv, env)
    port = int((await daemon.wait_for_log(LISTENING)).group(1))
    url = f"ws://127.0.0.1:{port}/ws"
    assert (await notify.recv(100)) == b"READY=1"

    status = await ctl(sock, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert orjson.loads(status.stdout)["listening"] == [url]
    created = await ctl(sock, "--json", "token", "create", "--name", "phone", "--expires", "1d")
    token = orjson.loads(created.stdout)["token"]
    async with connect(url, token) as phone:
        assert phone.principal == {"id": "guest:phone", "role": "guest"}
    listed = await ctl(sock, "token", "list")
    assert b"phone" in listed.stdout
    assert token.encode() not in listed.stdout
    missing = await ctl(sock, "kick", "c_nobody")
    assert missing.returncode == 3
    assert missing.stderr == b"aleph ctl: no connected client 'c_nobody'\n"

    with_origin = upgrade_request(extra=f"Origin: {ORIGIN}\r\n")
    assert (await http_exchange(port, with_origin))[0] == 403
    config.write_text(f'[gateway]\nallowed_origins = ["{ORIGIN}"]\n')
    daemon.process.send_signal(signal.SIGHUP)
    await daemon.wait_for_log(rb"configuration reloaded")
    assert (await http_exchange(port, with_origin))[0] == 101

    stopped = await ctl(sock, "stop")
    assert (stopped.returncode, stopped.stdout) == (0, b"the daemon is stopping\n")
    assert await daemon.stop() == 0
    assert (await notify.recv(100)) == b"STOPPING=1"
    assert not sock.exists()
    after = await ctl(sock, "status")
    assert after.returncode == 69
    assert b"not running" in after.stderr


async def test_socket_activation_takes_the_listener_from_listen_fds(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        fd = listener.fileno()
        # As systemd does: fd 3 is the socket and LISTEN_PID names the daemon's own
        # pid (this launcher's, which exec keeps).
        launcher = (
            f"import os, sys; os.dup2({fd}, 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
            "os.execv(sys.executable, [sys.executable, '-m', 'aleph', 'serve'])"
        )
        env = daemon_env(tmp_path / "state", LISTEN_FDS="1")
        daemon = await serve(nursery, [sys.executable, "-c", launcher], env, pass_fds=[fd])
    # Only the daemon holds the socket now; gateway.port (0 in daemon_env) is not used.
    assert int((await daemon.wait_for_log(LISTENING)).group(1)) == port
    token = (tmp_path / "state" / "owner_token").read_text().strip()
    async with connect(f"ws://127.0.0.1:{port}/ws", token) as client:
        assert "time" in await client.call("system.ping")
    daemon.process.send_signal(signal.SIGTERM)
    assert await daemon.stop() == 0
