"""A reload applies what can change live and names what needs a restart."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from aleph.security.tokens import OWNER


async def test_reload_applies_live_keys_and_logs_the_rest(
    tmp_path: Path, start_daemon: Any, make_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    live = await start_daemon()
    session = await live.daemon.sessions.create(OWNER)
    config_file = tmp_path / "aleph.toml"
    state = live.daemon.config.storage.state_dir
    socket = live.daemon.config.control.socket
    config_file.write_text(
        f'[storage]\nstate_dir = "{state}"\n[control]\nsocket = "{socket}"\n'
        "[gateway]\nport = 0\nauth_timeout = 3.0\n[limits]\nlogin_failures = 2\n"
        "session_messages_per_minute = 7\nmax_queued_runs = 2\ndelta_interval = 0.02\n"
        '[provider]\nmodel = "another"\n'
    )
    live.daemon.config_path = config_file
    with caplog.at_level(logging.WARNING):
        assert live.daemon.reload()
    assert live.gateway.config.gateway.auth_timeout == 3.0
    assert live.gateway.lockout.failures == 2
    assert live.daemon.sessions.limits.session_per_minute == 7
    assert live.daemon.sessions.max_queued_runs == 2
    assert session.events.delta_interval == 0.02  # sessions already open too
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "[provider] changed; it takes effect after a restart" in warnings
    assert not any("[storage]" in w for w in warnings)

    config_file.write_text('[gateway]\nport = "nope"\n')
    with caplog.at_level(logging.ERROR):
        assert not live.daemon.reload()
    assert live.gateway.config.gateway.auth_timeout == 3.0  # the running config is kept
    assert any("gateway.port: expected int" in r.getMessage() for r in caplog.records)
