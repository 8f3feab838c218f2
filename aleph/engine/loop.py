"""AgentEngine: the agent loop behind ``engine.run(request, emit)``.

One run: the MediaProcessor turns the attachments into text and image parts;
the Thinker builds the system prompt and trims the history; then, round
after round, the provider streams the model's answer (each text delta is
emitted as it arrives: one per network read, so a burst that came in one
read goes out as one ``run.delta``), the finished turn is emitted as an
:class:`~aleph.engine.api.AssistantMessage`, and if it asked for tools they
run concurrently in a nursery, each under its timeout, their results go
back to the model, and the next round starts. The run ends when the model
answers without tools; after ``provider.max_tool_rounds`` rounds of tools it
is asked once more with no tools on offer, so it must answer.

Failures: a provider failure raises EngineError (-32007) and ends the run;
a refused attachment raises EngineError (-32602); a tool failure, a bad
argument or an unknown tool is only a tool error that the model reads.

Cancellation (``session.cancel``) can come at any await. What is recorded:
every complete turn before it was emitted as an AssistantMessage (stored);
the turn being streamed is not emitted at all, so a cancelled partial
answer is never stored (clients saw its deltas, then ``run.cancelled``).
Tool calls already announced but not finished get a ``ToolFinished`` with
error "cancelled", emitted under a shield (at most 1 s), so the stored
history pairs every call with a result; if even that cannot be stored, the
Thinker pairs the orphan call with a "cancelled" result when the history is
next read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio

from aleph.config import Config
from aleph.engine.api import (
    AssistantMessage,
    Emit,
    RunRequest,
    TextDelta,
    ToolFinished,
    ToolStarted,
    Usage,
)
from aleph.engine.conversation import LlmProvider, Message, ProviderRequest, ToolCall, ToolSpec
from aleph.engine.media import MediaProcessor
from aleph.engine.providers import make_provider
from aleph.engine.thinker import Thinker
from aleph.engine.tools.builtin import builtin_tools
from aleph.engine.tools.service import (
    Tool,
    ToolContext,
    ToolOutcome,
    ToolService,
    result_text,
)

__all__ = ["AgentEngine"]

log = logging.getLogger(__name__)

CANCEL_EMIT_GRACE = 1.0
LAST_ROUND_NOTE = (
    "You have used every tool call allowed for this message. "
    "Answer now with what you have, without calling tools."
)


@attrs.define(eq=False)
class AgentEngine:
    """The ExecutionEngine the sessions run; owns its provider's HTTP client."""

    provider: LlmProvider
    tools: ToolService
    thinker: Thinker
    media: MediaProcessor
    max_tool_rounds: int = 8
    max_result_chars: int = 16_000

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] = os.environ) -> AgentEngine:
        tools = ToolService(config.tools)
        tools.add_all(builtin_tools(config.tools))
        return cls(
            make_provider(config.provider, environ),
            tools,
            Thinker(config.thinker),
            MediaProcessor(config.media),
            config.provider.max_tool_rounds,
            config.tools.max_result_chars,
        )

    async def aclose(self) -> None:
        await self.provider.aclose()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the engine open until cancelled, then close its HTTP client."""
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.aclose()

    def health(self) -> dict[str, Any]:
        return {
            "provider": self.provider.kind,
            "model": self.provider.model,
            "tools": len(self.tools),
        }

    # -- the loop ------------------------------------------------------------------

    async def run(self, request: RunRequest, emit: Emit) -> Usage:
        prepared = self.media.prepare(request.attachments, self.provider.accepts_images)
        available = {t.name: t for t in self.tools.available(request.role, request.session_type)}
        specs = tuple(tool.spec() for tool in available.values())
        text = request.text + (f"\n\n{prepared.text}" if prepared.text else "")
        current = Message("user", text, images=prepared.images)
        system = self.thinker.system_prompt(request, specs)
        history = self.thinker.history(request.history)
        messages = [*self.thinker.trim(system, history, current, specs), current]
        model = request.model or self.provider.model
        input_tokens = output_tokens = 0

        async def on_text(delta: str) -> None:
            await emit(TextDelta(delta))

        for round_number in range(self.max_tool_rounds + 1):
            last = round_number == self.max_tool_rounds
            offer: tuple[ToolSpec, ...] = () if last or not specs else specs
            prompt = f"{system}\n\n{LAST_ROUND_NOTE}" if last and round_number else system
            turn = await self.provider.complete(
                ProviderRequest(prompt, tuple(messages), offer, request.model or ""),
                on_text,
            )
            input_tokens += turn.input_tokens
            output_tokens += turn.output_tokens
            calls = turn.tool_calls if offer else ()
            await emit(AssistantMessage(turn.text, tuple(_call_dict(c) for c in calls)))
            if not calls:
                break
            messages.append(Message("assistant", turn.text, tool_calls=calls))
            messages += await self._run_tools(calls, available, request, emit)
        return Usage(input_tokens, output_tokens, self.provider.kind, model)

    async def _run_tools(
        self,
        calls: Sequence[ToolCall],
        available: dict[str, Tool],
        request: RunRequest,
        emit: Emit,
    ) -> list[Message]:
        """Run one turn's calls concurrently; emit their events from this task only."""
        for call in calls:
            await emit(ToolStarted(call.id, call.name, call.arguments))
        outcomes: dict[int, ToolOutcome] = {}
        send, receive = trio.open_memory_channel[tuple[int, ToolOutcome]](len(calls))
        try:
            async with trio.open_nursery() as nursery:
                async with send:
                    for index, call in enumerate(calls):
                        tool = available.get(call.name)
                        nursery.start_soon(self._call, index, call, tool, request, send.clone())
                async with receive:
                    async for index, outcome in receive:
                        outcomes[index] = outcome
                        await emit(_finished(calls[index], outcome))
        finally:
            unfinished = [call for index, call in enumerate(calls) if index not in outcomes]
            if unfinished:
                with trio.CancelScope(shield=True), trio.move_on_after(CANCEL_EMIT_GRACE):
                    for call in unfinished:
                        await emit(ToolFinished(call.id, call.name, error="cancelled"))
        return [
            Message(
                "tool",
                result_text(outcomes[index], self.max_result_chars),
                call_id=call.id,
                name=call.name,
                is_error=not outcomes[index].ok,
            )
            for index, call in enumerate(calls)
        ]

    async def _call(
        self,
        index: int,
        call: ToolCall,
        tool: Tool | None,
        request: RunRequest,
        send: trio.MemorySendChannel[tuple[int, ToolOutcome]],
    ) -> None:
        async with send:
            if call.invalid is not None:
                outcome = ToolOutcome("invalid", error=call.invalid)
            elif tool is None:
                outcome = ToolOutcome("failed", error=f'no tool named "{call.name}" is available')
            else:
                ctx = ToolContext(request.role, request.session_type, request.session_id, call.id)
                outcome = await self.tools.call(tool, call.arguments, ctx)
            await send.send((index, outcome))


def _call_dict(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def _finished(call: ToolCall, outcome: ToolOutcome) -> ToolFinished:
    if outcome.ok:
        return ToolFinished(call.id, call.name, result=outcome.result)
    return ToolFinished(call.id, call.name, error=outcome.error)
