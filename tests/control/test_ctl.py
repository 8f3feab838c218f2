"""`aleph ctl`: what it prints and the exit codes scripts rely on."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import orjson
import pytest
import trio
import trio.testing

from aleph.cli import _parser
from aleph.client import connect
from aleph.control.ctl import parse_duration, resolve_socket
from tests.control.conftest import ControlledDaemon, run_ctl_argv, write_config


async def test_status_prints_a_summary(cd: ControlledDaemon) -> None:
    result = await cd.ctl("status")
    assert result.code == 0, result.err
    first, *rest = result.out.splitlines()
    assert first.startswith("aleph ")
    assert ": ready, up " in first
    assert f"listening:   {cd.live.url}" in rest
    assert f"control:     {cd.socket}" in rest
    assert any(line.startswith("provider:    echo") for line in rest)
    assert "interfaces:  telegram disabled, discord disabled" in rest
    as_json = await cd.ctl("status", "--json")
    assert orjson.loads(as_json.out)["listening"] == [cd.live.url]


async def test_clients_table_and_kick(cd: ControlledDaemon) -> None:
    assert (await cd.ctl("clients")).out == "no clients connected\n"
    async with cd.live.connect() as owner:
        table = await cd.ctl("clients")
        header, row = table.out.splitlines()
        assert header.split() == [
            "CLIENT",
            "REMOTE",
            "PRINCIPAL",
            "ROLE",
            "TOKEN",
            "CONNECTED",
            "ORIGIN",
        ]
        assert row.split()[:5] == [owner.client_id, "127.0.0.1", "owner", "owner", "owner"]
        kicked = await cd.ctl("kick", owner.client_id)
        assert (kicked.code, kicked.out) == (0, f"kicked {owner.client_id}\n")
    missing = await cd.ctl("kick", "c_nobody")
    assert missing.code == 3
    assert missing.err == "aleph ctl: no connected client 'c_nobody'\n"
    as_json = await cd.ctl("--json", "kick", "c_nobody")
    assert as_json.code == 3
    assert orjson.loads(as_json.out)["error"]["code"] == -32003


async def test_token_lifecycle(cd: ControlledDaemon) -> None:
    created = await cd.ctl(
        "token", "create", "--role", "guest", "--name", "phone", "--expires", "7d"
    )
    assert created.code == 0, created.err
    lines = created.out.splitlines()
    assert lines[0].startswith("created guest token t_")
    assert "(phone), expires 20" in lines[0]
    token = lines[2].strip()
    assert token.startswith("aleph_")
    assert "only time the token is shown" in created.out
    async with connect(cd.live.url, token) as phone:
        assert phone.principal == {"id": "guest:phone", "role": "guest"}
        listed = await cd.ctl("token", "list")
        rows = {line.split()[1]: line.split() for line in listed.out.splitlines()[1:]}
        assert rows["phone"][2] == "guest"
        assert rows["phone"][-1] == "1"  # one connection
        assert rows["owner"][4] == "never"
        assert token not in listed.out
        revoked = await cd.ctl("token", "revoke", "phone")
        assert revoked.code == 0
        assert revoked.out.endswith("(phone); closed 1 connection\n")
    again = await cd.ctl("token", "revoke", "phone")
    assert again.code == 3
    owner = await cd.ctl("token", "revoke", "owner")
    assert owner.code == 77
    as_json = await cd.ctl("token", "create", "--name", "ci", "--json")
    assert orjson.loads(as_json.out)["token"].startswith("aleph_")


async def test_sessions_and_agents_tables(cd: ControlledDaemon) -> None:
    assert (await cd.ctl("sessions")).out == "no sessions\n"
    assert (await cd.ctl("agents")).out == "no agents connected\n"
    async with cd.live.connect() as owner:
        created = await owner.call("session.create", {"title": "plans"})
        table = await cd.ctl("sessions")
    assert created["session_id"] in table.out
    assert "plans" in table.out


async def test_reload_drain_and_stop(cd: ControlledDaemon, tmp_path: Path) -> None:
    reloaded = await cd.ctl("reload")
    assert (reloaded.code, reloaded.out) == (0, "configuration reloaded; nothing changed\n")
    write_config(cd.config_file, tmp_path, "allowed_origins = ['https://a.example']")
    reloaded = await cd.ctl("reload")
    assert reloaded.out == "configuration reloaded; changed: gateway.allowed_origins\n"
    cd.config_file.write_text("[gateway]\nport = 'abc'\n")
    refused = await cd.ctl("reload")
    assert refused.code == 78
    assert "gateway.port" in refused.err
    drained = await cd.ctl("drain", "--wait", "10s")
    assert drained.code == 0
    assert drained.out.startswith("drained after ")
    stopped = await cd.ctl("stop")
    assert (stopped.code, stopped.out) == (0, "the daemon is stopping\n")
    assert cd.daemon.stop_requested.is_set()


async def test_no_daemon_is_exit_69(tmp_path: Path) -> None:
    result = await run_ctl_argv("--socket", str(tmp_path / "none.sock"), "status")
    assert result.code == 69
    assert result.err == (
        f"aleph ctl: the daemon is not running (no control socket at {tmp_path / 'none.sock'})\n"
    )
    stale = tmp_path / "stale.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(stale))
    sock.close()
    result = await run_ctl_argv("--socket", str(stale), "--json", "status")
    assert result.code == 69
    assert "nobody listens" in orjson.loads(result.out)["error"]["message"]


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["ctl"],
        ["ctl", "kick"],
        ["ctl", "token", "create"],
        ["ctl", "token", "create", "--name", "x", "--expires", "soon"],
    ):
        with pytest.raises(SystemExit) as exited:
            _parser().parse_args(argv)
        assert exited.value.code == 2
    assert "not a duration" in capsys.readouterr().err


def test_durations() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("30m") == 1800
    assert parse_duration("12h") == 43200
    assert parse_duration("7d") == 604800
    assert parse_duration("2w") == 1209600
    assert parse_duration("1.5h") == 5400
    for bad in ("", "0", "-1d", "7y", "d"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_duration(bad)


def test_the_socket_is_found(tmp_path: Path) -> None:
    assert resolve_socket("/x/y.sock", None, {}) == Path("/x/y.sock")
    assert resolve_socket(None, None, {"ALEPH_CONTROL__SOCKET": "/a.sock"}) == Path("/a.sock")
    config = tmp_path / "aleph.toml"
    config.write_text(f'[control]\nsocket = "{tmp_path / "c.sock"}"\n')
    assert resolve_socket(None, str(config), {}) == tmp_path / "c.sock"
    runtime = {"XDG_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path)}
    assert resolve_socket(None, None, runtime) in (
        tmp_path / "aleph" / "control.sock",
        Path("/run/aleph/control.sock"),
    )
    config.write_text("[control]\nsocket = 5\n")
    with pytest.raises(Exception) as bad:  # noqa: PT011 - CtlError carries the exit code
        resolve_socket(None, str(config), {})
    assert getattr(bad.value, "exit_code", None) == 78


async def test_a_refused_request_is_exit_1(cd: ControlledDaemon) -> None:
    result = await cd.ctl("token", "create", "--name", "   ")
    assert result.code == 1
    assert "a token name is 1 to 64 printable characters" in result.err


async def _fake_daemon(nursery: trio.Nursery, path: Path, reply: bytes | None) -> None:
    """A socket that answers every line with `reply`, or never answers (None)."""
    sock = trio.socket.socket(socket.AF_UNIX)
    await sock.bind(str(path))
    sock.listen()
    listener = trio.SocketListener(sock)

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            while await stream.receive_some():
                if reply is not None:
                    await stream.send_all(reply)

    await nursery.start(trio.serve_listeners, handle, [listener])


async def test_nonsense_is_exit_76_and_silence_is_exit_75(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    await _fake_daemon(nursery, tmp_path / "garbage.sock", b"<html>\n")
    result = await run_ctl_argv("--socket", str(tmp_path / "garbage.sock"), "status")
    assert (result.code, result.err) == (76, "aleph ctl: the daemon's reply is not JSON\n")
    await _fake_daemon(nursery, tmp_path / "silent.sock", None)
    started = trio.current_time()
    result = await run_ctl_argv(
        "--socket", str(tmp_path / "silent.sock"), "--timeout", "5", "status"
    )
    assert (result.code, result.err) == (75, "aleph ctl: no reply within 5 s\n")
    assert trio.current_time() - started == pytest.approx(5.0)
