"""Run `aleph serve` as a subprocess and learn its address from what it logs."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import attrs
import trio

LISTENING = re.compile(r"listening on (ws://127\.0\.0\.1:(\d+)/\S*)")


@attrs.define(eq=False)
class DaemonProcess:
    process: trio.Process
    url: str
    port: int
    state_dir: Path
    log: list[str]
    _lines: trio.MemoryReceiveChannel[str]

    @property
    def token(self) -> str:
        return (self.state_dir / "owner_token").read_text().strip()

    async def wait_for_log(self, fragment: str, within: float = 20) -> str:
        with trio.fail_after(within):
            async for line in self._lines:
                if fragment in line:
                    return line
        raise AssertionError(f"daemon ended without logging {fragment!r}:\n" + "\n".join(self.log))

    async def stop(self, sig: int = signal.SIGTERM, within: float = 20) -> int:
        self.process.send_signal(sig)
        with trio.fail_after(within):
            return await self.process.wait()


def daemon_env(state_dir: Path, **overrides: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(state_dir.parent),
        "ALEPH_STORAGE__STATE_DIR": str(state_dir),
        "ALEPH_GATEWAY__PORT": "0",
        "ALEPH_CONTROL__SOCKET": str(state_dir.parent / "control.sock"),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


async def start_daemon_process(
    nursery: trio.Nursery, state_dir: Path, *args: str, **env: str
) -> DaemonProcess:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "aleph", "serve", *args],
        env=daemon_env(state_dir, **env),
        stderr=subprocess.PIPE,
    )
    send, receive = trio.open_memory_channel[str](1000)
    log: list[str] = []

    async def pump() -> None:
        assert process.stderr is not None
        buffer = b""
        # The pump owns the pipe: it reads to the end (a killed daemon's last lines
        # included) and only then closes it.
        async with send, process.stderr:
            while chunk := await process.stderr.receive_some():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    line = raw.decode(errors="replace")
                    log.append(line)
                    with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                        send.send_nowait(line)  # the full log stays in `log` regardless

    async def reap() -> None:
        """Whatever the test does, the process is gone when the test ends."""
        try:
            await process.wait()
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                    await process.wait()

    nursery.start_soon(pump)
    nursery.start_soon(reap)
    daemon = DaemonProcess(process, "", 0, state_dir, log, receive)
    line = await daemon.wait_for_log("listening on ws://")
    match = LISTENING.search(line)
    assert match, line
    daemon.url, daemon.port = match.group(1), int(match.group(2))
    return daemon
