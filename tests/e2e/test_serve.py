"""`aleph serve` as a user runs it: a real process, a real socket, real signals."""

from __future__ import annotations

import signal
import stat
from pathlib import Path

import pytest
import trio
import trio_websocket

from aleph.client import connect
from tests.e2e.daemon_process import start_daemon_process

pytestmark = pytest.mark.e2e


async def test_serve_on_defaults_then_sigterm_exits_0(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    state = tmp_path / "state"
    daemon = await start_daemon_process(nursery, state)
    assert any("generated an owner token" in line for line in daemon.log)
    token_file = state / "owner_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert any(str(token_file) in line for line in daemon.log)

    async with connect(daemon.url, daemon.token) as client:
        assert client.principal == {"id": "owner", "role": "owner"}
        assert "time" in await client.call("system.ping")
        assert (await client.call("system.health"))["clients"]["connected"] == 1
        daemon.process.send_signal(signal.SIGTERM)
        with trio.fail_after(20), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await client.ws.get_message()  # waits for the close frame
        assert closed.value.reason.code == 1001
    with trio.fail_after(20):
        assert await daemon.process.wait() == 0
    assert any("stopped" in line for line in daemon.log)


async def test_restart_keeps_the_owner_token(tmp_path: Path, nursery: trio.Nursery) -> None:
    state = tmp_path / "state"
    first = await start_daemon_process(nursery, state)
    token = first.token
    assert await first.stop() == 0
    second = await start_daemon_process(nursery, state)
    assert second.token == token
    assert not any("generated" in line for line in second.log)
    async with connect(second.url, token) as client:
        assert client.principal is not None
    assert await second.stop(signal.SIGINT) == 0


async def test_port_in_use_exits_71_with_a_clear_message(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    first = await start_daemon_process(nursery, tmp_path / "one")
    process = await trio.run_process(
        [__import__("sys").executable, "-m", "aleph", "serve"],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "ALEPH_STORAGE__STATE_DIR": str(tmp_path / "two"),
            "ALEPH_GATEWAY__PORT": str(first.port),
        },
        capture_stderr=True,
        check=False,
    )
    assert process.returncode == 71
    assert b"address already in use" in process.stderr.lower()
    assert b"Traceback" not in process.stderr
    assert await first.stop() == 0
