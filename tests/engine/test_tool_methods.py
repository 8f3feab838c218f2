"""tool.list and tool.call over a real WebSocket, for owners and guests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from aleph.client import CallFailed
from tests.conftest import LiveDaemon


async def test_owner_and_guest_see_different_tools(
    start_daemon: Callable[..., Awaitable[LiveDaemon]], tmp_path: Path
) -> None:
    live = await start_daemon(
        gateway={"allow_guests": True},
        tools={"enable_files": True, "workspace_dir": str(tmp_path / "ws")},
    )
    async with live.connect() as owner, live.connect(token=None) as guest:
        await guest.call("auth.login", {"guest": True})
        owner_tools = {t["name"] for t in (await owner.call("tool.list"))["tools"]}
        guest_tools = {t["name"] for t in (await guest.call("tool.list", {}))["tools"]}
        assert owner_tools == {"calculator", "current_time", "list_files", "read_file",
                               "write_file"}  # fmt: skip
        assert guest_tools == {"calculator", "current_time"}
        written = await owner.call(
            "tool.call", {"name": "write_file", "arguments": {"path": "a", "content": "x"}}
        )
        assert written == {"result": {"path": "a", "bytes_written": 1}}
        summed = await guest.call(
            "tool.call", {"name": "calculator", "arguments": {"expression": "2+2"}}
        )
        assert summed["result"]["value"] == 4
        with pytest.raises(CallFailed) as forbidden:
            await guest.call("tool.call", {"name": "read_file", "arguments": {"path": "a"}})
        assert forbidden.value.code == -32002
        with pytest.raises(CallFailed) as failed:
            await owner.call("tool.call", {"name": "read_file", "arguments": {"path": "../x"}})
        assert failed.value.code == -32008
        assert failed.value.data == {"tool": "read_file", "reason": "failed"}
        with pytest.raises(CallFailed) as no_agents:
            await guest.call("agent.register", {"name": "g", "capabilities": []})
        assert no_agents.value.code == -32002
        with pytest.raises(CallFailed) as bad_params:
            await owner.call("tool.call", {"arguments": {}})
        assert bad_params.value.code == -32602


async def test_tool_call_follows_the_session_type(
    start_daemon: Callable[..., Awaitable[LiveDaemon]], tmp_path: Path
) -> None:
    live = await start_daemon(tools={"enable_files": True, "workspace_dir": str(tmp_path / "ws")})
    async with live.connect() as owner:
        guest_session = (await owner.call("session.create", {"type": "guest"}))["session_id"]
        own_session = (await owner.call("session.create", {}))["session_id"]
        in_guest = await owner.call("tool.list", {"session_id": guest_session})
        assert {t["name"] for t in in_guest["tools"]} == {"calculator", "current_time"}
        in_own = await owner.call("tool.list", {"session_id": own_session})
        assert "read_file" in {t["name"] for t in in_own["tools"]}
        with pytest.raises(CallFailed) as refused:
            await owner.call("tool.call", {"name": "list_files", "arguments": {},
                                           "session_id": guest_session})  # fmt: skip
        assert refused.value.code == -32002
        with pytest.raises(CallFailed) as missing:
            await owner.call("tool.list", {"session_id": "s_nope"})
        assert missing.value.code == -32003
