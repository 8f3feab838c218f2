"""Drain with a run in flight, then shut down: the run finishes and nothing is lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from aleph.client import CallFailed, connect
from aleph.config import load_config
from aleph.control.client import open_control
from aleph.daemon import Daemon
from aleph.engine.api import AssistantMessage, Emit, RunRequest, TextDelta, Usage
from tests.control.conftest import run_ctl_argv, write_config
from tests.gateway.wsutil import http_exchange, upgrade_request
from tests.sessions.helpers import events_until


class GatedEngine:
    """Streams a first word, then waits for `release` before it finishes."""

    def __init__(self) -> None:
        self.started = trio.Event()
        self.release = trio.Event()
        self.runs: list[str] = []

    async def run(self, request: RunRequest, emit: Emit) -> Usage:
        self.runs.append(request.text)
        self.started.set()
        await emit(TextDelta("thinking "))
        await self.release.wait()
        await emit(TextDelta("done"))
        await emit(AssistantMessage(f"answer to {request.text}"))
        return Usage(provider="gated")


async def _status(socket: Path) -> str:
    async with open_control(socket) as control:
        status: str = (await control.call("status"))["status"]
        return status


async def test_drain_waits_for_the_run_in_flight_then_shutdown_loses_nothing(
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "aleph.toml"
    write_config(config_file, tmp_path)
    socket = tmp_path / "control.sock"
    engine = GatedEngine()
    drained: dict[str, Any] = {}
    drain_done = trio.Event()
    daemon = Daemon(load_config(config_file, environ={}), config_file)
    async with trio.open_nursery() as nursery:
        gateway = await nursery.start(daemon.run)
        assert daemon.sessions is not None
        daemon.sessions.engine = engine
        url = gateway.listen_addresses[0]
        token = (tmp_path / "state" / "owner_token").read_text().strip()
        async with connect(url, token) as owner:
            session = (await owner.call("session.create", {}))["session_id"]
            await owner.call("session.send", {"session_id": session, "text": "first"})
            queued = await owner.call("session.send", {"session_id": session, "text": "second"})
            assert queued["queued"] == 1
            await engine.started.wait()

            async def drain() -> None:
                drained.update(await _ctl_json("--socket", str(socket), "drain", "--wait", "60"))
                drain_done.set()

            nursery.start_soon(drain)
            while await _status(socket) != "draining":
                await trio.lowlevel.checkpoint()
            assert not drained  # still waiting for the run
            with pytest.raises(CallFailed) as refused:
                await owner.call("session.send", {"session_id": session, "text": "third"})
            assert refused.value.code == -32011
            assert (await http_exchange(_port(url), upgrade_request()))[0] == 503

            engine.release.set()
            events = await events_until(owner, "run.finished", count=2)
            assert [e["type"] for e in events].count("run.finished") == 2
            assert engine.runs == ["first", "second"]
            await drain_done.wait()
            assert drained["drained"] is True
            assert drained["remaining"] == {"runs": 0, "calls": 0}

            stopped = await run_ctl_argv("--socket", str(socket), "stop")
            assert stopped.code == 0
        # run() returns when the daemon has stopped; the nursery then exits.

    daemon = Daemon(load_config(config_file, environ={}), config_file)
    async with trio.open_nursery() as nursery:
        gateway = await nursery.start(daemon.run)
        async with connect(gateway.listen_addresses[0], token) as owner:
            history = await owner.call("session.history", {"session_id": session})
        daemon.stop_requested.set()
    texts = [(m["role"], m["text"]) for m in history["messages"]]
    assert texts == [  # both messages were stored when sent, the answers as they came
        ("user", "first"),
        ("user", "second"),
        ("assistant", "answer to first"),
        ("assistant", "answer to second"),
    ]


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def _ctl_json(*argv: str) -> dict[str, Any]:
    result = await run_ctl_argv("--json", *argv)
    assert result.code == 0, result.err
    parsed: dict[str, Any] = orjson.loads(result.out)
    return parsed


async def test_drain_timeout_is_exit_75(tmp_path: Path) -> None:
    config_file = tmp_path / "aleph.toml"
    write_config(config_file, tmp_path)
    socket = tmp_path / "control.sock"
    engine = GatedEngine()
    daemon = Daemon(load_config(config_file, environ={}), config_file)
    async with trio.open_nursery() as nursery:
        gateway = await nursery.start(daemon.run)
        assert daemon.sessions is not None
        daemon.sessions.engine = engine
        token = (tmp_path / "state" / "owner_token").read_text().strip()
        async with connect(gateway.listen_addresses[0], token) as owner:
            session = (await owner.call("session.create", {}))["session_id"]
            await owner.call("session.send", {"session_id": session, "text": "slow"})
            await engine.started.wait()
            result = await run_ctl_argv("--socket", str(socket), "drain", "--wait", "0.2")
            assert result.code == 75
            assert result.out.startswith("drain timed out after ")
            assert "1 run(s)" in result.out
            engine.release.set()
            await events_until(owner, "run.finished")
        daemon.stop_requested.set()
