"""Draining, and the views of sessions and agents the control socket reports.

:func:`drain` turns the gateway to draining (``/readyz`` answers 503, new
WebSocket upgrades get 503, and the session hub refuses new sessions and
runs), then waits until no run is in progress and no client call is in
flight, or until the timeout. Connected clients stay connected and keep
receiving the events of the runs that finish; ``shutdown`` closes them.

The session hub and the agent registry belong to other parts of the daemon;
this module reads them through the daemon object (an empty list when a part
is not there).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from aleph.daemon import Daemon

__all__ = ["busy_count", "drain", "list_agents", "list_sessions"]

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05  # seconds between looks at the work still running


def _runs(daemon: Daemon) -> int:
    hub = daemon.sessions
    if hub is None:
        return 0
    return sum((s.running is not None) + len(s.queue) for s in hub.sessions.values())


def busy_count(daemon: Daemon) -> dict[str, int]:
    """The work still in progress: runs running or queued, and client calls in flight."""
    calls = sum(client.inflight for client in list(daemon.gateway.clients.values()))
    return {"runs": _runs(daemon), "calls": calls}


async def _wait_idle(daemon: Daemon) -> None:
    """Return once no session has a run to do and no client call is in flight."""
    while True:
        hub = daemon.sessions
        busy = [] if hub is None else [s for s in hub.sessions.values() if not s.idle.is_set()]
        if busy:
            await busy[0].idle.wait()
        elif busy_count(daemon)["calls"]:
            await trio.sleep(POLL_INTERVAL)  # calls have no event to wait on
        else:
            return


async def drain(daemon: Daemon, max_wait: float) -> dict[str, Any]:
    """Stop taking new work, wait up to `max_wait` seconds for the rest, report.

    Runs already accepted (running or queued) are let finish: their senders
    were told they were queued.
    """
    gateway = daemon.gateway
    first = not gateway.draining
    gateway.draining = True
    if daemon.sessions is not None:
        daemon.sessions.accepting = False
    if first:
        log.info("draining: no new connections, sessions or runs")
    started = trio.current_time()
    with trio.move_on_after(max_wait):
        await _wait_idle(daemon)
    remaining = busy_count(daemon)
    drained = not any(remaining.values())
    if drained:
        log.info("drained: nothing is running")
    else:
        log.warning("drain timed out with work still running: %s", remaining)
    return {
        "drained": drained,
        "waited_s": round(trio.current_time() - started, 3),
        "remaining": remaining,
        "clients": len(gateway.clients),
    }


def list_sessions(daemon: Daemon) -> list[dict[str, Any]]:
    """Every session in the hub (the operator sees all), oldest first."""
    hub = daemon.sessions
    if hub is None:
        return []
    found = []
    for session in sorted(hub.sessions.values(), key=lambda s: (s.record.created_at, s.id)):
        entry = hub.describe(session)
        entry["running"] = session.running.run_id if session.running is not None else None
        entry["queued"] = len(session.queue)
        entry["subscribers"] = len(session.events.subscribers)
        entry["state"] = "busy" if not session.idle.is_set() else "idle"
        found.append(entry)
    return found


def list_agents(daemon: Daemon) -> list[dict[str, Any]]:
    """The connected remote agents, with the client each is connected through."""
    found = []
    for agent in daemon.agents.listing():
        entry: dict[str, Any] = agent.describe()
        entry["client_id"] = agent.client.id
        found.append(entry)
    return found
