"""Daemons with a config file (so reloads have something to re-read) and a ctl runner."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio_websocket

from aleph.cli import _parser
from aleph.config import load_config
from aleph.control.client import ControlClient, open_control
from aleph.control.ctl import run_ctl
from aleph.daemon import Daemon
from aleph.gateway import Gateway
from tests.conftest import LiveDaemon


@attrs.frozen
class CtlResult:
    code: int
    out: str
    err: str


@attrs.define(eq=False)
class ControlledDaemon:
    """A running daemon, its config file, and ways to reach its control socket."""

    live: LiveDaemon
    config_file: Path
    socket: Path

    @property
    def daemon(self) -> Daemon:
        return self.live.daemon

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        async with open_control(self.socket) as control:
            return await control.call(method, params)

    def control(self) -> Any:
        """`async with cd.control() as control:` one connection for several calls."""
        return open_control(self.socket)

    async def ctl(self, *argv: str) -> CtlResult:
        """`aleph ctl --socket SOCKET ARGV...`, in-process; its exit code and output."""
        return await run_ctl_argv("--socket", str(self.socket), *argv)


async def close_reason(client: Any) -> Any:
    """Ping until the server closes `client`; the close reason (code, reason)."""
    with trio.fail_after(10):
        try:
            while True:
                await client.call("system.ping")
        except trio_websocket.ConnectionClosed as closed:
            return closed.reason


async def run_ctl_argv(*argv: str) -> CtlResult:
    args = _parser().parse_args(["ctl", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = await run_ctl(args, out, err)
    return CtlResult(code, out.getvalue(), err.getvalue())


def write_config(path: Path, tmp_path: Path, extra: str = "") -> None:
    """A config file for tests: port 0, state and socket in tmp_path."""
    path.write_text(
        f"""
[gateway]
port = 0
{extra}

[storage]
state_dir = "{tmp_path / "state"}"

[control]
socket = "{tmp_path / "control.sock"}"
"""
    )


@pytest.fixture
async def start_controlled(nursery: trio.Nursery, tmp_path: Path) -> Callable[..., Any]:
    """`cd = await start_controlled(gateway_extra='allowed_origins = [...]')`."""

    async def start(gateway_extra: str = "") -> ControlledDaemon:
        config_file = tmp_path / "aleph.toml"
        write_config(config_file, tmp_path, gateway_extra)
        config = load_config(config_file, environ={})
        daemon = Daemon(config, config_file)
        gateway: Gateway = await nursery.start(daemon.run)
        port = int(gateway.listen_addresses[0].rsplit(":", 1)[1].split("/")[0])
        token = (config.state_dir() / "owner_token").read_text().strip()
        live = LiveDaemon(daemon, gateway, f"ws://127.0.0.1:{port}/ws", port, token)
        return ControlledDaemon(live, config_file, config.control_socket())

    return start


@pytest.fixture
async def cd(start_controlled: Callable[..., Any]) -> ControlledDaemon:
    result: ControlledDaemon = await start_controlled()
    return result


__all__ = ["ControlClient", "ControlledDaemon", "CtlResult", "run_ctl_argv", "write_config"]
