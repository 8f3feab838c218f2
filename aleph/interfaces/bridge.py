"""The bridge: one trio-asyncio loop in the daemon's tree hosting both bots.

:class:`BotBridge` opens the asyncio loop (``trio_asyncio.open_loop``), runs
the :class:`~aleph.interfaces.router.InboundRouter` and one
:class:`Supervisor` per enabled bot. Each supervisor runs its adapter
(Telegram's BotHandler, Discord's ChannelManager) and, when the adapter fails
(token rejected, network down, platform outage), records why, fails the
actions waiting for it, and starts it again after a backoff that doubles up
to `max_backoff` (and starts again from `min_backoff` once a bot has stayed
up for `stable_after` seconds). A failing bot never stops the other bot, the
router or the daemon; its state is in :meth:`BotBridge.health`, which the
daemon shows as the ``interfaces`` section of system.health and
``aleph ctl status``.

This module imports trio_asyncio first: httpx (python-telegram-bot) fails
with "no running event loop" if anyio's asyncio backend bound
``asyncio.get_running_loop`` before trio-asyncio patched it; see
:func:`_rebind_anyio`. The daemon imports this module only when a bot is
enabled, so the core never loads asyncio, discord or telegram otherwise.
"""

from __future__ import annotations

import trio_asyncio  # type: ignore[import-untyped]  # isort: skip  (must come first)

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import trio

from aleph.interfaces.events import Inbound, Outbound
from aleph.interfaces.router import InboundRouter

__all__ = ["BotAdapter", "BotBridge", "BotState", "Supervisor"]

log = logging.getLogger(__name__)

KNOWN_BOTS = ("telegram", "discord")
OUTBOUND_QUEUE = 64
INBOUND_QUEUE = 64


def _rebind_anyio() -> None:
    """Give anyio's asyncio backend trio-asyncio's get_running_loop if it bound
    the original one (it does `from asyncio import get_running_loop`)."""
    backend = sys.modules.get("anyio._backends._asyncio")
    patched = asyncio.get_running_loop
    if backend is not None and getattr(backend, "get_running_loop", patched) is not patched:
        backend.get_running_loop = patched  # type: ignore[attr-defined]


def _log_asyncio_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An error inside a bot library that no one awaited: log it, keep the loop."""
    exception = context.get("exception")
    message = context.get("message") or "error in the bots' asyncio loop"
    if exception is not None:
        log.warning("%s: %s: %s", message, type(exception).__name__, exception)
    else:
        log.warning("%s", message)


class BotAdapter(Protocol):
    name: str

    async def run(
        self,
        inbound: trio.MemorySendChannel[Inbound],
        outbound: trio.MemoryReceiveChannel[Outbound],
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None: ...


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_failure(exc: BaseException) -> str:
    """One line for an operator: what failed, without a traceback or a secret."""
    leaf = _leaf(exc)
    name = type(leaf).__name__
    if name in ("InvalidToken", "LoginFailure") or "Unauthorized" in str(leaf):
        return "the bot token was rejected (check ALEPH_*__TOKEN)"
    text = str(leaf).splitlines()[0][:200] if str(leaf) else ""
    return f"{name}: {text}" if text else name


@attrs.define(eq=False)
class BotState:
    state: str = "starting"  # starting | running | backoff
    restarts: int = 0
    last_error: str | None = None
    since: float = attrs.Factory(time.time)
    account: str = ""
    retry_at: float | None = None

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {"state": self.state, "restarts": self.restarts}
        if self.account:
            report["account"] = self.account
        if self.last_error:
            report["last_error"] = self.last_error
        if self.retry_at is not None and self.state == "backoff":
            report["retry_in_s"] = max(0, round(self.retry_at - time.time()))
        return report


class _Started:
    """The task_status handed to an adapter: records that it is up."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def started(self, value: Any = None) -> None:
        self.supervisor._up(value)


@attrs.define(eq=False)
class Supervisor:
    """Runs one adapter for ever: restarts it with backoff when it fails."""

    name: str
    make: Callable[[], BotAdapter]
    outbound: trio.MemoryReceiveChannel[Outbound]
    min_backoff: float = 1.0
    max_backoff: float = 300.0
    stable_after: float = 60.0
    state: BotState = attrs.Factory(BotState)
    _up_at: float | None = None
    _running: trio.Event = attrs.Factory(trio.Event)

    def _up(self, account: Any) -> None:
        self.state.state, self.state.since = "running", time.time()
        self.state.account = str(account or "")
        self.state.retry_at = None
        self._up_at = trio.current_time()
        self._running.set()

    async def wait_running(self) -> None:
        await self._running.wait()

    async def run(self, inbound: trio.MemorySendChannel[Inbound]) -> None:
        backoff = self.min_backoff
        while True:
            self.state.state, self._up_at = "starting", None
            try:
                await self.make().run(inbound, self.outbound, task_status=_Started(self))
                failure = "the bot stopped"
            except Exception as exc:
                failure = describe_failure(exc)
                if not failure.startswith("the bot token"):  # PTB puts the token in those
                    log.debug("%s bot failure", self.name, exc_info=exc)
            self._running = trio.Event()
            if self._up_at is not None and trio.current_time() - self._up_at >= self.stable_after:
                backoff = self.min_backoff
            self.state.restarts += 1
            self.state.last_error = failure
            self.state.state, self.state.since = "backoff", time.time()
            self.state.retry_at = time.time() + backoff
            log.error("%s bot failed: %s; retrying in %.0f s", self.name, failure, backoff)
            await self._refuse_actions(backoff)
            backoff = min(self.max_backoff, backoff * 2)

    async def _refuse_actions(self, seconds: float) -> None:
        """While the bot is down, fail what the core asks of it instead of queueing."""
        with trio.move_on_after(seconds):
            async for action in self.outbound:
                action.reply.fail(f"the {self.name} bot is not connected")


@attrs.define(eq=False)
class BotBridge:
    """The asyncio loop, the router and a supervised adapter per enabled bot."""

    router: InboundRouter
    supervisors: dict[str, Supervisor] = attrs.Factory(dict)
    _inbound: tuple[trio.MemorySendChannel[Inbound], trio.MemoryReceiveChannel[Inbound]] = (
        attrs.Factory(lambda: trio.open_memory_channel[Inbound](INBOUND_QUEUE))
    )

    def add(
        self,
        name: str,
        make: Callable[[], BotAdapter],
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 300.0,
    ) -> Supervisor:
        """Supervise the adapters `make()` returns; their outbound channel is made here."""
        send, receive = trio.open_memory_channel[Outbound](OUTBOUND_QUEUE)
        self.router.outbound[name] = send
        supervisor = Supervisor(name, make, receive, min_backoff, max_backoff)
        self.supervisors[name] = supervisor
        return supervisor

    def health(self) -> dict[str, Any]:
        """Each bot's state: disabled, starting, running or backoff (with the last error)."""
        report: dict[str, Any] = {name: {"state": "disabled"} for name in KNOWN_BOTS}
        report.update({name: sup.state.report() for name, sup in self.supervisors.items()})
        return report

    async def serve(
        self,
        stopping: trio.Event | None = None,
        *,
        task_status: trio.TaskStatus[BotBridge] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until `stopping` is set (or cancelled); started() once the loop and the
        router are up. The bots connect in the background, so a bot that cannot log
        in never delays the daemon."""
        _rebind_anyio()
        send, receive = self._inbound
        async with trio_asyncio.open_loop() as loop, trio.open_nursery() as nursery:
            # trio-asyncio's default handler re-raises an asyncio error nobody awaited
            # (a library's stray task) into its nursery, which would stop both bots.
            loop.set_exception_handler(_log_asyncio_error)
            await nursery.start(self.router.serve, receive)
            for supervisor in self.supervisors.values():
                nursery.start_soon(supervisor.run, send)
            task_status.started(self)
            if stopping is not None:
                await stopping.wait()
                log.info("stopping the bots")
                nursery.cancel_scope.cancel()
