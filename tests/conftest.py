"""Shared fixtures: configs in a temporary state dir, a live daemon on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from aleph.client import GatewayClient, connect
from aleph.config import Config, load_config
from aleph.daemon import Daemon
from aleph.gateway import Gateway

MakeConfig = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path) -> MakeConfig:
    """Config(**{section: {key: value}}) on port 0 with state in tmp_path."""

    made = 0

    def make(**sections: dict[str, Any]) -> Config:
        nonlocal made
        made += 1  # each daemon of a test gets its own state dir and control socket
        config = load_config(None, environ={})
        config = attrs.evolve(
            config,
            gateway=attrs.evolve(config.gateway, port=0),
            storage=attrs.evolve(config.storage, state_dir=str(tmp_path / f"state{made}")),
            control=attrs.evolve(config.control, socket=str(tmp_path / f"control{made}.sock")),
        )
        for section, values in sections.items():
            config = attrs.evolve(
                config, **{section: attrs.evolve(getattr(config, section), **values)}
            )
        return config

    return make


@attrs.define
class LiveDaemon:
    daemon: Daemon
    gateway: Gateway
    url: str
    port: int
    token: str

    def connect(self, token: str | None = "owner", **kwargs: Any) -> Any:
        """`async with live.connect() as client:` logged in as owner (token=None: anonymous)."""
        return connect(self.url, self.token if token == "owner" else token, **kwargs)


@pytest.fixture
async def start_daemon(nursery: trio.Nursery, make_config: MakeConfig) -> Callable[..., Any]:
    """`live = await start_daemon(gateway={...})`: a daemon running until the test ends."""

    async def start(config: Config | None = None, **sections: dict[str, Any]) -> LiveDaemon:
        config = config or make_config(**sections)
        daemon = Daemon(config, None)
        gateway: Gateway = await nursery.start(daemon.run)
        port = int(gateway.listen_addresses[0].rsplit(":", 1)[1].split("/")[0])
        token = (config.state_dir() / "owner_token").read_text().strip()
        return LiveDaemon(
            daemon, gateway, f"ws://127.0.0.1:{port}{config.gateway.path}", port, token
        )

    return start


@pytest.fixture
async def live(start_daemon: Callable[..., Any]) -> LiveDaemon:
    result: LiveDaemon = await start_daemon()
    return result


@pytest.fixture
async def owner(live: LiveDaemon) -> AsyncIterator[GatewayClient]:
    async with live.connect() as client:
        yield client
