"""Every control method against a running daemon, through the real socket."""

from __future__ import annotations

from pathlib import Path

import pytest

from aleph import __version__
from aleph.client import CallFailed
from aleph.control.client import CallFailed as ControlCallFailed
from tests.control.conftest import ControlledDaemon, close_reason, write_config
from tests.gateway.wsutil import http_exchange, upgrade_request


async def test_status_reports_the_daemon(cd: ControlledDaemon) -> None:
    async with cd.live.connect():
        status = await cd.call("status")
    assert status["name"] == "aleph"
    assert status["version"] == __version__
    assert status["status"] == "ready"
    assert status["uptime_s"] >= 0
    assert status["listening"] == [cd.live.url]
    assert status["control_socket"] == str(cd.socket)
    assert status["clients"] == {"connected": 1, "authenticated": 1, "owners": 1, "guests": 0}
    assert status["interfaces"] == {
        "telegram": {"state": "disabled"},
        "discord": {"state": "disabled"},
    }
    assert status["provider"]["kind"] == "echo"
    assert status["tokens"] == 1  # the owner's
    assert status["pairing"] == {"pending": 0, "paired": 0}


async def test_clients_list_and_kick(cd: ControlledDaemon) -> None:
    async with cd.live.connect() as owner, cd.live.connect(None) as anonymous:
        clients = {c["client_id"]: c for c in (await cd.call("clients.list"))["clients"]}
        assert set(clients) == {owner.client_id, anonymous.client_id}
        assert clients[owner.client_id]["principal"] == "owner"
        assert clients[owner.client_id]["role"] == "owner"
        assert clients[owner.client_id]["remote"] == "127.0.0.1"
        assert clients[anonymous.client_id]["principal"] is None
        assert clients[owner.client_id]["connected_at"].endswith("Z")

        assert await cd.call("clients.kick", {"client_id": owner.client_id}) == {
            "kicked": owner.client_id
        }
        reason = await close_reason(owner)
        assert reason.code == 4004
        assert reason.reason == "kicked by the operator"
        with pytest.raises(ControlCallFailed) as missing:
            await cd.call("clients.kick", {"client_id": owner.client_id})
        assert missing.value.code == -32003


async def test_sessions_list_shows_every_session(cd: ControlledDaemon) -> None:
    assert await cd.call("sessions.list") == {"sessions": []}
    async with cd.live.connect() as owner:
        created = await owner.call("session.create", {"title": "notes"})
        sessions = (await cd.call("sessions.list"))["sessions"]
    assert [s["session_id"] for s in sessions] == [created["session_id"]]
    assert sessions[0]["type"] == "owner"
    assert sessions[0]["title"] == "notes"
    assert sessions[0]["queued"] == 0
    assert sessions[0]["state"] == "idle"


async def test_agents_list(cd: ControlledDaemon) -> None:
    assert await cd.call("agents.list") == {"agents": []}


async def test_pairing_list_approve_deny(cd: ControlledDaemon) -> None:
    pairing = cd.daemon.pairing
    assert pairing is not None
    alice = await pairing.request("telegram:1001", "@alice")
    bob = await pairing.request("discord:2002", "bob#1")
    listed = await cd.call("pairing.list")
    assert [p["code"] for p in listed["pending"]] == [alice.code, bob.code]
    assert listed["pending"][0]["channel"] == "telegram:1001"
    assert listed["pending"][0]["user"] == "@alice"
    assert listed["paired"] == []

    approved = await cd.call("pairing.approve", {"code": alice.code.lower()})
    assert approved["outcome"] == "approved"
    assert approved["channel"] == "telegram:1001"
    assert pairing.is_approved("telegram:1001")
    denied = await cd.call("pairing.deny", {"code": bob.code})
    assert denied["outcome"] == "denied"
    assert not pairing.is_approved("discord:2002")

    listed = await cd.call("pairing.list")
    assert listed["pending"] == []
    assert [p["channel"] for p in listed["paired"]] == ["telegram:1001"]
    with pytest.raises(ControlCallFailed) as missing:
        await cd.call("pairing.approve", {"code": bob.code})
    assert missing.value.code == -32003


async def test_config_reload_changes_a_live_setting(cd: ControlledDaemon, tmp_path: Path) -> None:
    origin = "https://app.example.com"
    headers = [(b"Origin", origin.encode())]
    with_origin = upgrade_request(extra=f"Origin: {origin}\r\n")
    assert (await http_exchange(cd.live.port, with_origin))[0] == 403

    write_config(cd.config_file, tmp_path, f'allowed_origins = ["{origin}"]')
    result = await cd.call("config.reload")
    assert result == {"reloaded": True, "changed": ["gateway.allowed_origins"]}
    async with cd.live.connect(headers=headers) as client:
        assert client.principal == {"id": "owner", "role": "owner"}

    cd.config_file.write_text("[gateway]\nport = 'abc'\n")
    with pytest.raises(ControlCallFailed) as bad:
        await cd.call("config.reload")
    assert bad.value.code == -32012
    assert any("gateway.port" in line for line in bad.value.data["errors"])
    assert cd.daemon.config.gateway.allowed_origins == [origin]  # the running config stays


async def test_drain_refuses_new_work_then_shutdown_stops(cd: ControlledDaemon) -> None:
    async with cd.live.connect() as owner:
        session = await owner.call("session.create", {})
        result = await cd.call("drain", {"timeout": 5})
        assert result["drained"] is True
        assert result["remaining"] == {"runs": 0, "calls": 0}
        assert result["clients"] == 1
        assert (await cd.call("status"))["status"] == "draining"
        with pytest.raises(CallFailed) as refused:
            await owner.call("session.send", {"session_id": session["session_id"], "text": "hi"})
        assert refused.value.code == -32011
        assert (await http_exchange(cd.live.port, upgrade_request()))[0] == 503
        ready = b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert (await http_exchange(cd.live.port, ready))[0] == 503

        assert await cd.call("shutdown") == {"stopping": True}
        reason = await close_reason(owner)
        assert reason.code == 1001
    assert cd.daemon.stop_requested.is_set()


async def test_agents_list_shows_a_registered_agent(cd: ControlledDaemon) -> None:
    async with cd.live.connect() as agent:
        registered = await agent.call(
            "agent.register", {"name": "builder", "capabilities": ["build"]}
        )
        agents = (await cd.call("agents.list"))["agents"]
    assert [a["agent_id"] for a in agents] == [registered["agent_id"]]
    assert agents[0]["name"] == "builder"
    assert agents[0]["capabilities"] == ["build"]
    assert agents[0]["client_id"] == agent.client_id
