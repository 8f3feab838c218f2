"""The control socket itself: its file mode, stale files, the peer check, bad requests."""

from __future__ import annotations

import logging
import os
import socket
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import orjson
import pytest
import trio

from aleph.config import load_config
from aleph.control.client import EXIT_NOPERM
from aleph.control.server import (
    ControlServer,
    ControlSocketError,
    bind_control_socket,
    serve_control,
)
from aleph.daemon import Daemon
from tests.control.conftest import ControlledDaemon, write_config

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing uid needs root")


async def test_socket_is_0600_and_removed_at_stop(tmp_path: Path) -> None:
    config_file = tmp_path / "aleph.toml"
    write_config(config_file, tmp_path)
    daemon = Daemon(load_config(config_file, environ={}), config_file)
    path = tmp_path / "control.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        mode = os.lstat(path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
        daemon.stop_requested.set()
    assert not path.exists()


async def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays; nobody listens: what a crash leaves
    listener = await bind_control_socket(path)
    async with listener:
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600


async def test_a_live_socket_or_a_plain_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    listener = await bind_control_socket(path)
    async with listener:
        with pytest.raises(ControlSocketError, match="another daemon"):
            await bind_control_socket(path)
    other = tmp_path / "not-a-socket"
    other.write_text("precious")
    with pytest.raises(ControlSocketError, match="not a socket"):
        await bind_control_socket(other)
    assert other.read_text() == "precious"


async def test_the_parent_directory_is_created_0700(tmp_path: Path) -> None:
    path = tmp_path / "run" / "aleph" / "control.sock"
    async with await bind_control_socket(path):
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def _raw_exchange(path: Path, data: bytes) -> list[object]:
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        await stream.send_all(data)
        await stream.send_eof()
        received = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some():
                received += chunk
    return [orjson.loads(line) for line in received.splitlines()]


async def test_bad_requests_get_json_rpc_errors_and_the_connection_stays(
    cd: ControlledDaemon,
) -> None:
    replies = await _raw_exchange(
        cd.socket,
        b"{not json\n"
        b'{"jsonrpc": "2.0", "id": 1, "method": "no.such"}\n'
        b'{"jsonrpc": "2.0", "id": 2, "method": "clients.kick", "params": {"client_id": 5}}\n'
        b'{"jsonrpc": "1.0", "id": 3, "method": "status"}\n'
        b"[]\n"
        b'[{"jsonrpc": "2.0", "id": 4, "method": "tokens.list"}, {"jsonrpc": "2.0",'
        b' "method": "status"}, 7]\n'
        b'{"jsonrpc": "2.0", "method": "status"}\n'
        b'{"jsonrpc": "2.0", "id": 5, "method": "status", "params": {"x": 1}}\n',
    )
    codes = [
        [r.get("error", {}).get("code") for r in reply]
        if isinstance(reply, list)
        else reply.get("error", {}).get("code")  # type: ignore[union-attr]
        for reply in replies
    ]
    assert codes == [-32700, -32601, -32602, -32600, -32600, [None, -32600], -32602]
    assert replies[0]["id"] is None  # type: ignore[index]
    assert "client_id" in replies[2]["error"]["message"]  # type: ignore[index]


async def test_an_overlong_line_is_refused(cd: ControlledDaemon) -> None:
    replies = await _raw_exchange(cd.socket, b"x" * (1024 * 1024 + 70000))
    assert replies[-1]["error"]["code"] == -32600  # type: ignore[index]


def _nobody_python() -> str | None:
    """An interpreter uid 65534 may run (ours may sit under /root), of our version."""
    for candidate in (
        sys.executable,
        f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}",
    ):
        parents = Path(candidate).resolve().parents
        if all(p.stat().st_mode & stat.S_IXOTH for p in parents) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _as_nobody(socket_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run `aleph ctl --socket control.sock ARGV` as uid 65534, from inside socket_dir."""
    python = _nobody_python()
    if python is None:
        pytest.skip("no Python interpreter that uid 65534 may run")
    site = sysconfig.get_paths()["purelib"]
    return subprocess.run(
        [python, "-m", "aleph", "ctl", "--socket", "control.sock", *argv],
        cwd=socket_dir,  # entered as root, before the uid changes
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin", "HOME": "/", "PYTHONPATH": f"{Path.cwd()}:{site}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _connect_as(uid: int, path: Path) -> bytes:
    """In a forked child running as `uid`: connect, send one request, return what came back."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: plain syscalls only, then _exit
        try:
            os.chdir(path.parent)  # as root: the directories above may be closed to `uid`
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                try:
                    sock.connect(path.name)
                except PermissionError:
                    os.write(write_end, b"EACCES")
                    os._exit(0)
                sock.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}\n')
                sock.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                os.write(write_end, data)
        except BaseException as exc:
            os.write(write_end, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return data


@needs_root
async def test_another_uid_cannot_open_the_0600_socket(cd: ControlledDaemon) -> None:
    cd.socket.parent.chmod(0o755)
    result = await trio.to_thread.run_sync(_as_nobody, cd.socket.parent, "status")
    assert result.returncode == EXIT_NOPERM, result.stderr
    assert "permission denied" in result.stderr
    assert "not yours to use" in result.stderr
    assert await trio.to_thread.run_sync(_connect_as, NOBODY, cd.socket) == b"EACCES"


@needs_root
async def test_the_peer_check_refuses_a_forked_child_of_another_uid(
    cd: ControlledDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    cd.socket.parent.chmod(0o755)
    cd.socket.chmod(0o666)  # a mistake the kernel's peer credentials still catch
    with caplog.at_level(logging.WARNING, logger="aleph.control.server"):
        data = await trio.to_thread.run_sync(_connect_as, NOBODY, cd.socket)
    assert data.startswith(b"{"), data
    reply = orjson.loads(data)
    assert reply["id"] is None
    assert reply["error"]["code"] == -32002
    assert f"uid {NOBODY} may not use" in reply["error"]["message"]
    assert f"uid {NOBODY}" in caplog.text
    assert not cd.daemon.stop_requested.is_set()
    # root (the daemon's own uid here) is still served
    assert (await cd.call("status"))["status"] == "ready"


@needs_root
async def test_the_peer_check_refuses_another_uid_even_if_the_mode_allows_it(
    cd: ControlledDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    cd.socket.parent.chmod(0o755)
    cd.socket.chmod(0o666)  # a mistake the kernel's peer credentials still catch
    with caplog.at_level(logging.WARNING, logger="aleph.control.server"):
        result = await trio.to_thread.run_sync(_as_nobody, cd.socket.parent, "--json", "stop")
    assert result.returncode == EXIT_NOPERM, result.stderr
    assert f"uid {NOBODY} may not use this control socket" in result.stderr
    assert orjson.loads(result.stdout)["error"]["exit_code"] == EXIT_NOPERM
    assert any(
        "refused pid" in r.getMessage() and f"uid {NOBODY}" in r.getMessage()
        for r in caplog.records
    )
    assert cd.daemon.control is not None
    assert cd.daemon.control.refused == 1
    assert not cd.daemon.stop_requested.is_set()  # the refused `stop` did nothing
    assert (await cd.call("status"))["status"] == "ready"


async def test_a_method_that_raises_is_answered_with_32603_and_logged(
    tmp_path: Path, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    server = ControlServer(tmp_path / "c.sock")

    async def broken(params: None) -> None:
        raise RuntimeError("secret detail")

    server.add("broken", broken)
    stopping = trio.Event()
    await nursery.start(serve_control, server, stopping)
    replies = await _raw_exchange(server.path, b'{"jsonrpc":"2.0","id":1,"method":"broken"}\n')
    assert replies == [
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "internal error"}}
    ]
    assert "control method broken failed" in caplog.text
    stopping.set()
