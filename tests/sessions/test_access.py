"""Who may reach a session: guests never see an owner's session, nor each other's."""

from __future__ import annotations

from typing import Any

import pytest

from aleph.client import CallFailed
from tests.sessions.helpers import events_until

SESSION_METHODS = [
    ("session.subscribe", {}),
    ("session.unsubscribe", {}),
    ("session.send", {"text": "let me in"}),
    ("session.cancel", {}),
    ("session.history", {}),
    ("session.clear", {}),
    ("session.delete", {}),
]


async def test_guests_are_isolated(start_daemon: Any) -> None:
    live = await start_daemon(gateway={"allow_guests": True})
    async with live.connect() as owner, live.connect(None) as g1, live.connect(None) as g2:
        await g1.call("auth.login", {"guest": True})
        await g2.call("auth.login", {"guest": True})
        owned = (await owner.call("session.create", {"title": "secret"}))["session_id"]
        await owner.call("session.send", {"session_id": owned, "text": "private words"})
        await events_until(owner)

        with pytest.raises(CallFailed) as refused:
            await g1.call("session.create", {"type": "owner"})
        assert refused.value.code == -32002
        guest_session = await g1.call("session.create", {})
        assert guest_session["type"] == "guest"
        gsid = guest_session["session_id"]
        await g1.call("session.send", {"session_id": gsid, "text": "guest words"})
        events = await events_until(g1)
        assert events[-1]["type"] == "run.finished"

        assert [s["session_id"] for s in (await g1.call("session.list"))["sessions"]] == [gsid]
        assert (await g2.call("session.list"))["sessions"] == []
        assert gsid not in {s["session_id"] for s in (await owner.call("session.list"))["sessions"]}

        for target, intruder in ((owned, g1), (owned, g2), (gsid, g2)):
            for method, extra in SESSION_METHODS:
                with pytest.raises(CallFailed) as denied:
                    await intruder.call(method, {"session_id": target, **extra})
                assert denied.value.code in (-32002, -32003)
                assert "private" not in str(denied.value.data) + denied.value.message
        history = await owner.call("session.history", {"session_id": owned})
        assert [m["text"] for m in history["messages"]] == ["private words", "[echo] private words"]
        assert (await g1.call("session.history", {"session_id": gsid}))["messages"][0]["text"] == (
            "guest words"
        )
