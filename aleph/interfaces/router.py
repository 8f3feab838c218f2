"""InboundRouter: bot events in, paired sessions out, streamed answers back.

DESIGN.md's routing: Telegram -> BotHandler -> SessionManager and Discord ->
ChannelManager -> SessionManager. The adapters (the BotHandler and the
ChannelManager) translate platform objects into the frozen events of
:mod:`aleph.interfaces.events`; this router takes them from one Trio channel,
applies the rules of :mod:`aleph.interfaces.routing`, asks the
:class:`~aleph.security.pairing.PairingStore` for codes, applies the per-user
rate limit, and sends the message to the chat's paired session through the
:class:`~aleph.sessions.SessionHub`'s public API (``paired_session``,
``send``, ``subscribe``, ``clear``, ``cancel``, ``history``).

The router subscribes to each paired session it uses, like any WebSocket
client, so the bots see exactly the events every other subscriber sees; runs
it started are streamed back to their chat by a
:class:`~aleph.interfaces.reply.ReplyStream` (:mod:`aleph.interfaces.answers`
holds the commands and the notices).

Failure policy: one event's failure is logged and answered with a short
apology where there is someone to answer; it never stops the router.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import attrs
import orjson
import trio

from aleph.gateway.client import Client, new_client_id
from aleph.interfaces import answers
from aleph.interfaces.events import (
    ActionFailed,
    AnswerInline,
    Command,
    Inbound,
    InlineQuery,
    MessageIn,
    Outbound,
    Platform,
    SendText,
    Target,
)
from aleph.interfaces.reply import ChatLine, ReplyStream
from aleph.interfaces.routing import (
    AccessPolicy,
    Deliver,
    Ignore,
    Pair,
    Refuse,
    channel_key,
    decide,
    parse_channel_key,
)
from aleph.interfaces.streaming import EditThrottle, StreamPlan
from aleph.protocol.errors import RpcError
from aleph.security.limits import KeyedLimiter
from aleph.security.pairing import PairingDecision, PairingError, PairingStore
from aleph.security.tokens import OWNER, Principal
from aleph.sessions import Session, SessionHub

__all__ = ["ChatSettings", "InboundRouter"]

log = logging.getLogger(__name__)

WATCH_QUEUE = 10_000  # session events buffered per watched session
INLINE_TIMEOUT = 8.0  # seconds an inline query waits for its answer
CHAT_BACKLOG = 20  # events waiting in one chat beyond which new ones are dropped
REMEMBERED_CHATS = 10_000  # chats whose throttle and address are kept (least recent dropped)


@attrs.frozen
class ChatSettings:
    """One platform's rules and message limits."""

    policy: AccessPolicy = attrs.Factory(AccessPolicy)
    limit: int = 2000
    measure: Callable[[str], int] = len
    dm_interval: float = 1.0  # seconds between edits in a direct message
    group_interval: float = 3.0  # seconds between edits in a group


@attrs.define(eq=False)
class _Collector:
    """The text of a run answering an inline query, and when it is done."""

    text: str = ""
    done: trio.Event = attrs.Factory(trio.Event)

    def add(self, delta: str) -> None:
        self.text += delta

    def finish(self, note: str | None = None) -> None:
        self.done.set()


@attrs.define(eq=False)
class InboundRouter:
    hub: SessionHub
    pairing: PairingStore | None
    settings: dict[str, ChatSettings]
    outbound: dict[str, trio.MemorySendChannel[Outbound]]
    user_per_minute: float = 60.0
    _limiter: KeyedLimiter = attrs.field(init=False)
    _notices: KeyedLimiter = attrs.Factory(lambda: KeyedLimiter(1, 30.0))
    _pair_limiter: KeyedLimiter = attrs.Factory(lambda: KeyedLimiter(3, 60.0))
    _queues: dict[tuple[str, str], deque[Inbound]] = attrs.Factory(dict)
    _watchers: dict[str, Client] = attrs.Factory(dict)
    _runs: dict[str, ReplyStream | _Collector] = attrs.Factory(dict)
    _lines: dict[tuple[str, str], ChatLine] = attrs.Factory(dict)
    _targets: dict[str, Target] = attrs.Factory(dict)
    _decided: trio.MemorySendChannel[PairingDecision] = attrs.field(init=False)
    _to_announce: trio.MemoryReceiveChannel[PairingDecision] = attrs.field(init=False)
    _nursery: trio.Nursery | None = None

    def __attrs_post_init__(self) -> None:
        self._limiter = KeyedLimiter(self.user_per_minute, 60.0)
        self._decided, self._to_announce = trio.open_memory_channel[PairingDecision](100)

    # -- lifetime ------------------------------------------------------------

    async def serve(
        self,
        inbound: trio.MemoryReceiveChannel[Inbound],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Handle inbound events until the channel closes or the task is cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.pairing is not None:
                self.pairing.add_listener(self._on_decision)
                nursery.start_soon(self._announce_decisions)
            task_status.started()
            async with inbound:
                async for event in inbound:
                    self._enqueue(event, nursery)
            nursery.cancel_scope.cancel()

    def _enqueue(self, event: Inbound, nursery: trio.Nursery) -> None:
        """Events of one chat are handled one at a time, in order (a session is
        created once, messages are sent in the order they were written); different
        chats are handled concurrently, by one short-lived task each."""
        if isinstance(event, InlineQuery):
            chat = (event.platform, f"inline:{event.user_id}")
        else:
            chat = (event.target.platform, event.target.chat_id)
        queue = self._queues.get(chat)
        if queue is None:
            queue = self._queues[chat] = deque([event])
            nursery.start_soon(self._chat_worker, chat, queue)
        elif len(queue) >= CHAT_BACKLOG:
            log.info("%s:%s is flooding; dropped a message", *chat)
        else:
            queue.append(event)

    async def _chat_worker(self, chat: tuple[str, str], queue: deque[Inbound]) -> None:
        try:
            while queue:
                event = queue[0]
                try:
                    await self.handle(event)
                except Exception:
                    log.exception("could not handle a %s event", type(event).__name__)
                queue.popleft()
        finally:
            del self._queues[chat]

    # -- inbound -------------------------------------------------------------

    async def handle(self, event: Inbound) -> None:
        if isinstance(event, InlineQuery):
            await self._inline(event)
            return
        settings = self.settings[event.target.platform]
        decision = decide(event, settings.policy, self._is_paired)
        if isinstance(decision, Ignore):
            log.debug("ignored a message in %s: %s", event.target.chat_id, decision.reason)
            if event.target.interaction is not None:  # a slash command waits for an answer
                await self.notify(event.target, answers.NOT_HERE)
        elif isinstance(decision, Refuse):
            await self.notify(event.target, decision.text)
        elif isinstance(decision, Pair):
            await self._offer_pairing(event, decision.channel_key)
        elif isinstance(decision, Deliver):
            self._remember_target(decision.channel_key, event.target)
            if isinstance(event, Command) and event.name != "ask":
                await self._command(event, decision.channel_key)
            else:
                await self._deliver(event, decision.channel_key, decision.trusted)

    def _remember_target(self, key: str, target: Target) -> None:
        """Where a channel key was last seen (to tell it about a pairing decision)."""
        self._targets.pop(key, None)
        self._targets[key] = target
        if len(self._targets) > REMEMBERED_CHATS:
            del self._targets[next(iter(self._targets))]

    def _is_paired(self, key: str) -> bool:
        return self.pairing is not None and self.pairing.is_approved(key)

    async def _offer_pairing(self, event: MessageIn | Command, key: str) -> None:
        if self.pairing is None:
            await self.notify(event.target, answers.REFUSAL)
            return
        now = trio.current_time()
        if self._pair_limiter.take((event.target.platform, event.user_id), now) is not None:
            return  # a stranger repeating themselves: the code was sent already
        self._remember_target(key, event.target)
        try:
            request = await self.pairing.request(key, f"{event.user_name} (id {event.user_id})")
        except PairingError as exc:
            log.info("pairing refused for %s: %s", key, exc)
            await self.notify(event.target, answers.PAIRING_UNAVAILABLE)
            return
        await self.notify(event.target, answers.pairing_offer(request.code, self.pairing.ttl))

    def _allow(self, platform: str, user_id: str) -> float | None:
        """None if this platform user may send now, else seconds to wait."""
        return self._limiter.take((platform, user_id), trio.current_time())

    async def _rate_limited(self, target: Target, user_id: str, wait: float) -> None:
        """Say so politely, but only once per user in a while."""
        if self._notices.take((target.platform, user_id), trio.current_time()) is None:
            await self.notify(target, answers.slow_down(wait))

    async def _session(self, key: str, event: MessageIn | Command) -> Session:
        title = f"{event.target.platform} {event.user_name}"[:100]
        session = await self.hub.paired_session(key, title=title)
        await self._watch(session)
        return session

    async def _deliver(self, event: MessageIn | Command, key: str, trusted: bool = True) -> None:
        target = event.target
        wait = self._allow(target.platform, event.user_id)
        if wait is not None:
            await self._rate_limited(target, event.user_id, wait)
            return
        attachments = event.attachments if isinstance(event, MessageIn) else ()
        refused = event.refused_attachments if isinstance(event, MessageIn) else ()
        if refused:
            await self.notify(target, answers.attachments_refused(refused))
        if not event.text.strip() and not attachments:
            return
        session = await self._session(key, event)
        principal = Principal(f"{target.platform}:{event.user_id}", "owner")
        try:
            result = await self.hub.send(
                principal,
                session.id,
                event.text,
                attachments=attachments,
                run_role="owner" if trusted else "guest",
            )
        except RpcError as exc:
            await self._send_failed(target, event.user_id, exc)
            return
        # No checkpoint since the send: the run's events cannot have been seen yet.
        stream = self._new_stream(target)
        self._runs[result["run_id"]] = stream
        assert self._nursery is not None
        self._nursery.start_soon(self._stream, result["run_id"], stream)

    async def _send_failed(self, target: Target, user_id: str, exc: RpcError) -> None:
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, float | int):
            await self._rate_limited(target, user_id, float(retry_after))
        else:
            await self.notify(target, answers.send_failed(exc))

    def _new_stream(self, target: Target) -> ReplyStream:
        settings = self.settings[target.platform]
        interval = settings.group_interval if target.kind == "group" else settings.dm_interval
        chat = (target.platform, target.chat_id)
        line = self._lines.pop(chat, None)  # re-inserted: the dict is kept LRU
        if line is None:
            line = ChatLine(EditThrottle(interval))
        line.throttle.interval = interval
        self._lines[chat] = line
        if len(self._lines) > REMEMBERED_CHATS:
            del self._lines[next(iter(self._lines))]
        plan = StreamPlan(settings.limit, settings.measure)
        return ReplyStream(target, self.outbound[target.platform], plan, line)

    async def _stream(self, run_id: str, stream: ReplyStream) -> None:
        try:
            await stream.run()
        finally:
            self._runs.pop(run_id, None)

    async def _command(self, event: Command, key: str) -> None:
        session = await self._session(key, event)
        text = await answers.run_command(self.hub, session, event.name)
        await self.notify(event.target, text)

    async def _inline(self, query: InlineQuery) -> None:
        policy = self.settings[query.platform].policy
        target = Target(query.platform, query.user_id)
        key = channel_key(target, query.user_id, policy)
        trusted = query.user_id in policy.allow_users or (
            policy.dm_policy != "allowlist" and self._is_paired(key)
        )
        allowed = policy.dm_policy != "disabled" and (trusted or policy.dm_policy == "open")
        text = answers.INLINE_PRIVATE
        if allowed and query.text.strip():
            text = await self._inline_answer(query, key, trusted)
        elif allowed:
            return
        action = AnswerInline(query.platform, query.query_id, query.text[:60] or "Aleph", text)
        await self._act(action)

    async def _inline_answer(self, query: InlineQuery, key: str, trusted: bool) -> str:
        if self._allow(query.platform, query.user_id) is not None:
            return answers.slow_down(60.0)
        title = f"{query.platform} {query.user_name}"[:100]
        session = await self.hub.paired_session(key, title=title)
        await self._watch(session)
        principal = Principal(f"{query.platform}:{query.user_id}", "owner")
        collector = _Collector()
        try:
            result = await self.hub.send(
                principal, session.id, query.text, run_role="owner" if trusted else "guest"
            )
        except RpcError as exc:
            return answers.send_failed(exc)
        self._runs[result["run_id"]] = collector
        try:
            with trio.move_on_after(INLINE_TIMEOUT):
                await collector.done.wait()
        finally:
            self._runs.pop(result["run_id"], None)
        return collector.text.strip()[:4000] or answers.INLINE_SLOW

    # -- session events ------------------------------------------------------

    async def _watch(self, session: Session) -> None:
        """Subscribe to `session` once, like a WebSocket client would."""
        if session.id in self._watchers:
            return
        send, receive = trio.open_memory_channel[str](WATCH_QUEUE)
        client = Client(new_client_id(), "interfaces", send, principal=OWNER)
        self._watchers[session.id] = client
        await self.hub.subscribe(OWNER, client, session.id)
        assert self._nursery is not None
        self._nursery.start_soon(self._watcher, session.id, client, receive)

    async def _watcher(
        self, session_id: str, client: Client, frames: trio.MemoryReceiveChannel[str]
    ) -> None:
        try:
            async with frames:
                async for frame in frames:
                    self._on_event(orjson.loads(frame)["params"])
                    if client.closing:
                        log.warning("session %s: the bots fell behind its events", session_id)
                        break
        finally:
            self._watchers.pop(session_id, None)
            client.closed()

    def _on_event(self, params: dict[str, Any]) -> None:
        run = self._runs.get(params.get("run_id") or "")
        if run is None:
            return
        kind, data = params["type"], params.get("data") or {}
        if kind == "run.delta":
            run.add(str(data.get("text", "")))
        elif kind == "run.finished":
            run.finish()
        elif kind == "run.failed":
            run.finish(answers.run_failed(data.get("error") or {}))
        elif kind == "run.cancelled":
            run.finish(answers.CANCELLED)

    # -- outbound ------------------------------------------------------------

    async def _act(self, action: Outbound) -> Any:
        platform = action.platform if isinstance(action, AnswerInline) else action.target.platform
        await self.outbound[platform].send(action)
        try:
            return await action.reply.wait()
        except ActionFailed as exc:
            log.warning("%s on %s failed: %s", type(action).__name__, platform, exc)
            return None

    async def notify(self, target: Target, text: str) -> None:
        """A short plain-text message from the bot itself (not the model)."""
        await self._act(SendText(target, text, plain=True))

    def _on_decision(self, decision: PairingDecision) -> None:
        try:
            self._decided.send_nowait(decision)
        except (trio.WouldBlock, trio.ClosedResourceError):
            log.info("pairing decision for %s not announced", decision.request.channel_key)

    async def _announce_decisions(self) -> None:
        async for decision in self._to_announce:
            key = decision.request.channel_key
            platform, chat_id = parse_channel_key(key)
            if platform not in self.outbound:
                continue
            target = self._targets.get(key) or Target(cast(Platform, platform), chat_id)
            text = answers.APPROVED if decision.outcome == "approved" else answers.DENIED
            await self.notify(attrs.evolve(target, reply_to=None, interaction=None), text)
