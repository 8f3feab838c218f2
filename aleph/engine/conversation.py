"""What the engine says to a model and what a model says back, provider-neutral.

The :class:`LlmProvider` protocol is the one seam between the agent loop and
a model API: ``await provider.complete(request, on_text)`` sends one
:class:`ProviderRequest` (system prompt, messages, tools on offer), calls
``on_text(delta)`` for every piece of text as it streams in, and returns the
finished :class:`Turn` (its full text, the tool calls it asked for, token
usage). It raises :class:`~aleph.engine.api.EngineError` (-32007, data
``{"provider", "status"?}``) when the model cannot be reached or fails; a
provider never retries once text has been handed to `on_text`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import attrs

__all__ = [
    "ImagePart",
    "LlmProvider",
    "Message",
    "OnText",
    "ProviderRequest",
    "ToolCall",
    "ToolSpec",
    "Turn",
]

OnText = Callable[[str], Awaitable[None]]


@attrs.frozen
class ImagePart:
    mime_type: str
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")


@attrs.frozen
class ToolCall:
    """One call a model asked for. `invalid` says why its arguments could not be
    read (not JSON, not an object); such a call is answered with an error."""

    id: str
    name: str
    arguments: dict[str, Any] = attrs.Factory(dict)
    invalid: str | None = None


@attrs.frozen
class Message:
    """One message of the conversation, in the order the model sees them.

    user: `text` and `images`; assistant: `text` and `tool_calls`; tool: the
    result of call `call_id` (tool `name`) as `text`, `is_error` if it failed.
    """

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    images: tuple[ImagePart, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    call_id: str = ""
    name: str = ""
    is_error: bool = False


@attrs.frozen
class ToolSpec:
    """A tool as a model is told about it."""

    name: str
    description: str
    parameters: dict[str, Any]


@attrs.frozen
class ProviderRequest:
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    model: str = ""  # empty: the provider's configured model


@attrs.frozen
class Turn:
    """A model's complete answer to one request."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str = ""


class LlmProvider(Protocol):
    @property
    def kind(self) -> str:
        """ "openai", "anthropic" or "echo"."""
        ...

    @property
    def model(self) -> str: ...

    @property
    def accepts_images(self) -> bool: ...

    async def complete(self, request: ProviderRequest, on_text: OnText) -> Turn: ...

    async def aclose(self) -> None: ...
