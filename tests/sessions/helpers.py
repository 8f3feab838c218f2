"""Helpers for session tests: reading session.event notifications off a client."""

from __future__ import annotations

from typing import Any

import trio

from aleph.client import GatewayClient

TERMINAL = ("run.finished", "run.failed", "run.cancelled")


async def events_until(
    client: GatewayClient, stop: str = "run.finished", *, count: int = 1, within: float = 10
) -> list[dict[str, Any]]:
    """The session.event params received until `count` events of type `stop` arrived."""
    found: list[dict[str, Any]] = []
    seen = 0
    with trio.fail_after(within):
        async for message in client.notifications:
            if message.get("method") != "session.event":
                continue
            found.append(message["params"])
            if message["params"]["type"] == stop:
                seen += 1
                if seen >= count:
                    return found
    raise AssertionError(f"connection closed before {stop}; got {found}")


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["text"] for e in events if e["type"] == "run.delta")
