"""One streamed answer in one chat: session events in, throttled sends and edits out.

:class:`ReplyStream` is fed the text of a run as it streams (:meth:`add`)
and told when the run ends (:meth:`finish`). Its task (:meth:`run`) shows
"typing..." until the first words arrive, then sends one message and edits
it at most once per the chat's :class:`~aleph.interfaces.streaming.EditThrottle`
interval, starting a new message whenever the answer outgrows the platform's
limit (:class:`~aleph.interfaces.streaming.StreamPlan`). Each action waits for
the adapter's reply, so one chat's actions happen in order; a failed action is
tried again after the next interval, and after `MAX_FAILURES` failures in a
row the stream ends (logged), never the router.
"""

from __future__ import annotations

import logging

import attrs
import trio

from aleph.interfaces.events import ActionFailed, EditText, Outbound, SendText, Target, Typing
from aleph.interfaces.streaming import EditThrottle, SendOp, StreamOp, StreamPlan

__all__ = ["ChatLine", "ReplyStream"]

log = logging.getLogger(__name__)

TYPING_EVERY = 4.5  # seconds: Telegram's chat action lasts 5 s, Discord's typing 10 s
MAX_FAILURES = 3  # failed sends or edits in a row before the answer is given up
SILENCE_LIMIT = 900.0  # seconds without a word from a run before the stream stops waiting


@attrs.define(eq=False)
class ChatLine:
    """What the answers in one chat share: the pace of its operations, one operation
    at a time, and the order of its answers (each one's first message after the
    previous one's)."""

    throttle: EditThrottle
    lock: trio.Lock = attrs.Factory(trio.Lock)
    last_placed: trio.Event | None = None


@attrs.define(eq=False)
class ReplyStream:
    target: Target
    outbound: trio.MemorySendChannel[Outbound]
    plan: StreamPlan
    line: ChatLine
    text: str = ""
    finished: bool = False
    message_ids: list[str] = attrs.Factory(list)
    placed: trio.Event = attrs.Factory(trio.Event)  # first message sent, or gave up
    _after: trio.Event | None = None
    _changed: trio.Event = attrs.Factory(trio.Event)

    def __attrs_post_init__(self) -> None:
        self._after, self.line.last_placed = self.line.last_placed, self.placed

    @property
    def throttle(self) -> EditThrottle:
        return self.line.throttle

    def add(self, delta: str) -> None:
        self.text += delta
        self._changed.set()

    def finish(self, note: str | None = None) -> None:
        """The run is over; `note` (an error, "cancelled") is appended to the answer."""
        if note:
            self.text = f"{self.text}\n\n{note}" if self.text.strip() else note
        self.finished = True
        self._changed.set()

    async def _act(self, action: Outbound) -> object:
        await self.outbound.send(action)
        return await action.reply.wait()

    async def _wait_for_text(self) -> None:
        """Show typing until something changes (and keep showing it while waiting);
        a run silent for `SILENCE_LIMIT` seconds is given up (its end was lost)."""
        deadline = trio.current_time() + SILENCE_LIMIT
        while not self._changed.is_set():
            if trio.current_time() >= deadline:
                log.warning("no news of a run for %s:%s; giving up", *self._where())
                self.finish(None)
                break
            if not self.plan.shown:
                try:
                    await self._act(Typing(self.target))
                except ActionFailed as exc:
                    log.debug("typing indicator failed: %s", exc)
            with trio.move_on_after(TYPING_EVERY):
                await self._changed.wait()
        self._changed = trio.Event()

    async def run(self) -> None:
        """Carry the answer to the chat until the run has finished and all is shown."""
        failures = 0
        try:
            while True:
                op = self.plan.next_op(self.text)
                if op is None:
                    if self.finished:
                        return
                    await self._wait_for_text()
                    continue
                if self._after is not None:
                    await self._after.wait()  # the previous answer's first message goes first
                async with self.line.lock:
                    await trio.sleep(self.throttle.wait_time(trio.current_time()))
                    op = self.plan.next_op(self.text) or op
                    try:
                        await self._apply(op)
                        failures = 0
                    except ActionFailed as exc:
                        # A network blip or a timeout: try again after the next interval.
                        failures += 1
                        if failures > MAX_FAILURES:
                            raise
                        log.info("retrying an answer to %s:%s: %s", *self._where(), exc)
                        self.throttle.record(trio.current_time())
        except ActionFailed as exc:
            log.warning("could not deliver an answer to %s:%s: %s", *self._where(), exc)
        finally:
            self.placed.set()

    async def _apply(self, op: StreamOp) -> None:
        if isinstance(op, SendOp):
            target = self.target
            if op.index > 0:
                target = attrs.evolve(target, reply_to=None)
            message_id = await self._act(SendText(target, op.text))
            self.message_ids.append(str(message_id))
            self.placed.set()
        else:
            await self._act(EditText(self.target, self.message_ids[op.index], op.text))
        self.throttle.record(trio.current_time())
        self.plan.done(op)

    def _where(self) -> tuple[str, str]:
        return self.target.platform, self.target.chat_id
