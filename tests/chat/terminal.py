"""A program on a pseudo-terminal, driven like a user (a tiny pexpect for Trio).

The child gets the pty as its controlling terminal, so Ctrl-C typed into it
becomes SIGINT, as in a real terminal. Output is read through a Trio stream
on the master side; :meth:`PtyProgram.expect` waits (bounded) for a regex in
the output seen since the last match, ANSI escapes removed.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import sys
import termios
from collections.abc import Sequence

import attrs
import trio

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r")


def _controlling_tty() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@attrs.define(eq=False)
class PtyProgram:
    process: trio.Process
    stream: trio.lowlevel.FdStream
    output: str = ""
    seen: int = 0  # where the next expect starts looking

    async def send(self, text: str) -> None:
        await self.stream.send_all(text.encode())

    async def expect(self, pattern: str, within: float = 15) -> re.Match[str]:
        regex = re.compile(pattern)
        with trio.move_on_after(within):
            while True:
                match = regex.search(self.output, self.seen)
                if match:
                    self.seen = match.end()
                    return match
                try:
                    chunk = await self.stream.receive_some(65536)
                except (OSError, trio.BrokenResourceError):  # EIO: the child closed the pty
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"program ended before {pattern!r}:\n{self.output}")
                self.output += ANSI.sub("", chunk.decode(errors="replace"))
        raise AssertionError(f"no {pattern!r} within {within} s in:\n{self.output[self.seen :]}")

    async def wait(self, within: float = 15) -> int:
        with trio.move_on_after(within):
            while True:  # drain the terminal so the child never blocks on a write
                try:
                    chunk = await self.stream.receive_some(65536)
                except (OSError, trio.BrokenResourceError):
                    chunk = b""
                if not chunk:
                    break
                self.output += ANSI.sub("", chunk.decode(errors="replace"))
            return await self.process.wait()
        raise AssertionError(
            f"still running after {within} s ({self.process.returncode}):\n{self.output[-2000:]}"
        )

    async def aclose(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            with trio.CancelScope(shield=True):
                await self.process.wait()
        await self.stream.aclose()


async def spawn(args: Sequence[str], env: dict[str, str]) -> PtyProgram:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    try:
        process = await trio.lowlevel.open_process(
            [sys.executable, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            preexec_fn=_controlling_tty,
        )
    finally:
        os.close(slave)
    return PtyProgram(process, trio.lowlevel.FdStream(master))
