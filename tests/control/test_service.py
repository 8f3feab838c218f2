"""The service around the daemon: units, credentials, socket activation, reload."""

from __future__ import annotations

import configparser
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aleph.config import load_config
from aleph.systemd import listen_fds
from tests.control.conftest import ControlledDaemon, write_config
from tests.gateway.wsutil import http_exchange, upgrade_request

ROOT = Path(__file__).resolve().parents[2]


def _unit(path: Path) -> dict[str, list[str]]:
    """Every `Key=value` of a unit, values in order (keys may repeat)."""
    found: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_system_unit_has_what_a_reviewer_looks_for() -> None:
    unit = _unit(ROOT / "systemd" / "aleph.service")
    expected = {
        "Type": "notify",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "Restart": "on-failure",
        "RestartPreventExitStatus": "78",
        "StateDirectory": "aleph",
        "RuntimeDirectory": "aleph",
        "ConfigurationDirectory": "aleph",
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "CapabilityBoundingSet": "",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
    }
    for key, value in expected.items():
        assert unit.get(key, [None])[0] == value, key
    assert "@system-service" in unit["SystemCallFilter"]
    assert "WatchdogSec" in unit
    assert unit["LoadCredential"] == ["owner_token:/etc/aleph/credstore/owner_token"]
    socket_unit = configparser.ConfigParser()
    socket_unit.read(ROOT / "systemd" / "aleph.socket")
    assert socket_unit["Socket"]["ListenStream"] == "127.0.0.1:2135"
    user = _unit(ROOT / "systemd" / "user" / "aleph.service")
    assert user["Type"] == ["notify"]
    assert user["WantedBy"] == ["default.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_check_passes() -> None:
    result = subprocess.run(
        [str(ROOT / ".ci" / "systemd-check")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout
    assert "Overall exposure level for aleph.service" in result.stdout


def test_secrets_come_from_systemd_credentials(tmp_path: Path) -> None:
    (tmp_path / "telegram_token").write_text("123456:telegram-secret\n")
    (tmp_path / "discord_token").write_text("discord-secret")
    config = load_config(None, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert config.telegram.token == "123456:telegram-secret"
    assert config.discord.token == "discord-secret"
    overridden = load_config(
        None, {"CREDENTIALS_DIRECTORY": str(tmp_path), "ALEPH_DISCORD__TOKEN": "from-env"}
    )
    assert overridden.discord.token == "from-env"


def test_listen_fds_takes_systemds_sockets_once() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    saved = os.dup(3) if _fd_open(3) else None
    try:
        os.dup2(listener.fileno(), 3)
        environ = {"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid()), "LISTEN_FDNAMES": "web"}
        [taken] = listen_fds(environ)
        assert environ == {}  # a child would not take them again
        assert taken.fileno() == 3
        assert taken.getsockname() == listener.getsockname()
        assert taken.type == socket.SOCK_STREAM
        assert not os.get_inheritable(3)
        taken.detach()
        assert listen_fds({"LISTEN_FDS": "1", "LISTEN_PID": "1"}) == []  # not for us
        assert listen_fds({}) == []
    finally:
        if saved is not None:
            os.dup2(saved, 3)
            os.close(saved)
        else:
            os.close(3)
        listener.close()


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


async def test_reload_in_process_changes_a_live_setting(
    start_controlled: Callable[..., Any], tmp_path: Path
) -> None:
    cd: ControlledDaemon = await start_controlled()
    origin = "https://chat.example.org"
    request = upgrade_request(extra=f"Origin: {origin}\r\n")
    assert (await http_exchange(cd.live.port, request))[0] == 403
    write_config(cd.config_file, tmp_path, 'allowed_origins = ["https://*.example.org"]')
    assert cd.daemon.reload() is True  # what SIGHUP does
    assert (await http_exchange(cd.live.port, request))[0] == 101
