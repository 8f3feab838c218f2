"""Tokens: created on the control socket, used on the gateway, persisted, revoked."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from aleph.client import CallFailed, connect
from aleph.config import load_config
from aleph.control.client import CallFailed as ControlCallFailed
from aleph.control.client import open_control
from aleph.daemon import Daemon
from aleph.gateway import Gateway
from aleph.security.token_store import TokenStore, TokenStoreError, UnknownToken
from aleph.security.tokens import TokenRegistry
from aleph.storage import Database
from tests.control.conftest import ControlledDaemon, close_reason, write_config
from tests.gateway.wsutil import http_exchange, upgrade_request


async def test_a_created_token_logs_in_as_a_guest(cd: ControlledDaemon) -> None:
    created = await cd.call("tokens.create", {"name": "phone", "role": "guest"})
    token = created["token"]
    assert token.startswith("aleph_")
    assert len(token) - len("aleph_") >= 22  # 128 bits at least, url-safe base64
    assert created["token_id"].startswith("t_")
    assert created["role"] == "guest"
    assert created["expires_at"] is None
    async with connect(cd.live.url, token) as phone:
        assert phone.principal == {"id": "guest:phone", "role": "guest"}
        with pytest.raises(CallFailed) as forbidden:
            await phone.call("system.health")
        assert forbidden.value.code == -32002
        listed = {t["name"]: t for t in (await cd.call("tokens.list"))["tokens"]}
        assert listed["phone"]["connections"] == 1
        assert "token" not in listed["phone"]
        assert listed["owner"]["role"] == "owner"


async def test_only_the_hash_is_stored(cd: ControlledDaemon) -> None:
    created = await cd.call("tokens.create", {"name": "laptop", "role": "owner"})
    state = cd.daemon.config.state_dir()
    for path in state.glob("aleph.db*"):
        assert created["token"].encode() not in path.read_bytes(), path
    with sqlite3.connect(state / "aleph.db") as db:
        rows = db.execute("SELECT name, role, length(token_hash) FROM tokens").fetchall()
    assert rows == [("laptop", "owner", 32)]


async def test_revoking_closes_live_connections_at_once(cd: ControlledDaemon) -> None:
    created = await cd.call("tokens.create", {"name": "tablet"})
    async with connect(cd.live.url, created["token"]) as tablet, cd.live.connect() as owner:
        result = await cd.call("tokens.revoke", {"token": "tablet"})  # by name
        assert result == {"revoked": created["token_id"], "name": "tablet", "closed": 1}
        reason = await close_reason(tablet)
        assert (reason.code, reason.reason) == (4003, "token revoked")
        assert "time" in await owner.call("system.ping")  # others are untouched
    async with connect(cd.live.url) as again:
        with pytest.raises(CallFailed) as refused:
            await again.login(created["token"])
        assert refused.value.code == -32001
    bearer = upgrade_request(extra=f"Authorization: Bearer {created['token']}\r\n")
    assert (await http_exchange(cd.live.port, bearer))[0] == 401


async def test_revoke_refusals(cd: ControlledDaemon) -> None:
    async with open_control(cd.socket) as control:
        await control.call("tokens.create", {"name": "one"})
        with pytest.raises(ControlCallFailed) as duplicate:
            await control.call("tokens.create", {"name": "one"})
        assert duplicate.value.code == -32602
        with pytest.raises(ControlCallFailed) as owner:
            await control.call("tokens.revoke", {"token": "owner"})
        assert owner.value.code == -32002
        with pytest.raises(ControlCallFailed) as missing:
            await control.call("tokens.revoke", {"token": "t_nope"})
        assert missing.value.code == -32003
        with pytest.raises(ControlCallFailed) as bad_role:
            await control.call("tokens.create", {"name": "x", "role": "admin"})
        assert bad_role.value.code == -32602


@asynccontextmanager
async def _daemon(config_file: Path) -> AsyncIterator[Daemon]:
    daemon = Daemon(load_config(config_file, environ={}), config_file)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        yield daemon
        daemon.stop_requested.set()


def _url(gateway: Gateway) -> str:
    return gateway.listen_addresses[0]


async def test_tokens_survive_a_restart_and_revocations_too(tmp_path: Path) -> None:
    config_file = tmp_path / "aleph.toml"
    write_config(config_file, tmp_path)
    socket = tmp_path / "control.sock"
    async with _daemon(config_file), open_control(socket) as control:
        kept = await control.call("tokens.create", {"name": "kept", "expires_in": 3600.0})
        dropped = await control.call("tokens.create", {"name": "dropped"})
        await control.call("tokens.revoke", {"token": dropped["token_id"]})
    async with _daemon(config_file) as daemon:
        async with connect(_url(daemon.gateway), kept["token"]) as client:
            assert client.principal == {"id": "guest:kept", "role": "guest"}
        async with connect(_url(daemon.gateway)) as client:
            with pytest.raises(CallFailed):
                await client.login(dropped["token"])
        async with open_control(socket) as control:
            listed = (await control.call("tokens.list"))["tokens"]
        assert [t["name"] for t in listed] == ["owner", "kept"] or [t["name"] for t in listed] == [
            "kept",
            "owner",
        ]
        assert {t["name"]: t["expires_at"] for t in listed}["kept"] == kept["expires_at"]


async def test_an_expired_token_no_longer_logs_in(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "t.db", __import__("aleph.daemon").daemon.migrations())
    registry = TokenRegistry()
    store = TokenStore(db, registry, clock=lambda: time.time() - 3600)
    issued = await store.create("old", "guest", expires_in=60)  # expired an hour ago... less 60 s
    assert registry.verify(issued.token, time.time()) is None
    assert registry.verify(issued.token, time.time() - 3590) is not None
    with pytest.raises(TokenStoreError):
        await store.create("", "guest")
    with pytest.raises(TokenStoreError):
        await store.create("owner", "guest")
    with pytest.raises(TokenStoreError):
        await store.create("neg", "guest", expires_in=-1)
    with pytest.raises(UnknownToken):
        await store.revoke("nobody")
    fresh = TokenRegistry()
    assert await TokenStore(db, fresh).load() == 1
    assert fresh.records()[0].token_hash == issued.record.token_hash
    await db.aclose()


async def test_expiry_watcher_fires_once_per_token_at_its_expiry(
    tmp_path: Path, nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    from aleph.security.token_store import TOKEN_MIGRATIONS

    # The store writes in a worker thread; jump the clock only once everything has
    # been idle for a moment, so a write is never overtaken by a jump.
    mock_clock.autojump_threshold = 0.05
    db = await Database.open(tmp_path / "t.db", TOKEN_MIGRATIONS)
    try:
        store = TokenStore(db, TokenRegistry(), clock=lambda: 1_000.0 + trio.current_time())
        expired: list[tuple[str, float]] = []
        stopping = trio.Event()
        start = trio.current_time()
        await store.create("long", "guest", expires_in=60)
        await nursery.start(
            store.watch_expiry,
            stopping,
            lambda record: expired.append((record.name, trio.current_time() - start)),
        )
        await trio.sleep(5)
        await store.create("short", "guest", expires_in=10)  # wakes the watcher
        await store.create("forever", "guest")
        await trio.sleep(100)
        assert expired == [("short", 15.0), ("long", 60.0)]
        stopping.set()
        await trio.testing.wait_all_tasks_blocked()
    finally:
        await db.aclose()


async def test_an_expiring_token_closes_its_live_connections(cd: ControlledDaemon) -> None:
    created = await cd.call("tokens.create", {"name": "visitor", "expires_in": 1})
    async with connect(cd.live.url, created["token"]) as visitor, cd.live.connect() as owner:
        reason = await close_reason(visitor)
        assert (reason.code, reason.reason) == (4003, "token expired")
        assert "time" in await owner.call("system.ping")
