"""`aleph chat` in a pseudo-terminal against a running daemon, typed at like a user."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from aleph.client import connect
from aleph.config import Config
from aleph.daemon import Daemon
from aleph.engine.echo import EchoEngine
from aleph.gateway import Gateway
from tests.chat.terminal import PtyProgram, spawn
from tests.conftest import LiveDaemon

UP = "\x1b[A"


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TERM": "xterm",
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "ALEPH_CHAT_HISTORY": str(tmp_path / "chat_history"),
        "PYTHONUNBUFFERED": "1",
    }


async def _chat(live_url: str, token: str, tmp_path: Path) -> PtyProgram:
    chat = await spawn(["-m", "aleph", "chat", "--url", live_url, "--token", token], _env(tmp_path))
    await chat.expect(r"\[connected to ")
    await chat.expect(r"you>")
    return chat


async def test_chat_session_commands_history_and_cancel(live: LiveDaemon, tmp_path: Path) -> None:
    chat = await _chat(live.url, live.token, tmp_path)
    try:
        await chat.send("hello pty world\r")
        await chat.expect(r"\[echo\] hello pty world")
        await chat.expect(r"you>")
        await chat.send("/his\t")  # Tab completes the command
        await chat.expect(r"/history")
        await chat.send("\r")
        await chat.expect(r"\[aleph\] \[echo\] hello pty world")
        await chat.send("/new second\r")
        await chat.expect(r"\[new session s_")
        await chat.send("/sessions\r")
        await chat.expect(r"\*\s+2\s+s_[0-9a-f]+\s+second")

        # A slow answer, cancelled with Ctrl-C while it streams.
        assert live.daemon.sessions is not None
        live.daemon.sessions.engine = EchoEngine(delay=0.2)
        await chat.send("slow " * 30 + "\r")
        await chat.expect(r"\[echo\] slow slow")
        await chat.send("\x03")
        await chat.expect(r"\[cancelled\]")
        await chat.expect(r"you>")
        await chat.send("/sessions\r")
        await chat.expect(r"\*\s+2\s+s_[0-9a-f]+\s+second\s+1 messages")
        await chat.send("/quit\r")
        assert await chat.wait() == 0
    finally:
        await chat.aclose()

    # Input history survives: Up, Up, Enter repeats /sessions.
    chat = await _chat(live.url, live.token, tmp_path)
    try:
        await chat.send(UP + UP + "\r")
        await chat.expect(r"\*\s+2\s+s_[0-9a-f]+\s+second")
        await chat.expect(r"you>")
        await chat.send("\x04")  # Ctrl-D leaves too
        assert await chat.wait() == 0
    finally:
        await chat.aclose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_chat_reconnects_after_daemon_restart(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = make_config(gateway={"port": _free_port()}, daemon={"shutdown_grace": 0.2})
    url = f"ws://127.0.0.1:{config.gateway.port}/ws"
    async with trio.open_nursery() as first:
        daemon = Daemon(config, None)
        await first.start(daemon.run)
        token = (config.state_dir() / "owner_token").read_text().strip()
        chat = await _chat(url, token, tmp_path)
        await chat.send("before\r")
        await chat.expect(r"\[echo\] before")
        daemon.stop_requested.set()
    try:
        await chat.expect(r"\[disconnected")
        async with trio.open_nursery() as second:
            restarted = Daemon(config, None)
            gateway: Gateway = await second.start(restarted.run)
            await chat.expect(r"\[connected to ", within=20)
            await chat.send("after\r")
            await chat.expect(r"\[echo\] after")
            await chat.expect(r"you>")  # the prompt is back once run.finished arrived
            async with connect(url, token) as owner:
                (session,) = (await owner.call("session.list"))["sessions"]
                assert session["message_count"] == 4
            await chat.send("/quit\r")
            assert await chat.wait() == 0
            assert gateway.ready
            restarted.stop_requested.set()
    finally:
        await chat.aclose()


_ = (pytest, Any)
