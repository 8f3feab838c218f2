"""Model providers behind the :class:`~aleph.engine.conversation.LlmProvider` seam.

``make_provider(config.provider)`` picks one by ``provider.kind``:
``openai`` (any OpenAI-compatible chat completions server), ``anthropic``
(the messages API) or ``echo`` (no model; for trying Aleph out).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from aleph.config import ProviderConfig
from aleph.engine.conversation import LlmProvider
from aleph.engine.providers.anthropic import AnthropicProvider
from aleph.engine.providers.echo import EchoProvider
from aleph.engine.providers.http import HttpProvider
from aleph.engine.providers.openai import OpenAIProvider

__all__ = [
    "AnthropicProvider",
    "EchoProvider",
    "HttpProvider",
    "OpenAIProvider",
    "make_provider",
]


def make_provider(config: ProviderConfig, environ: Mapping[str, str] = os.environ) -> LlmProvider:
    """The provider the config names; the API key is read from `environ` now."""
    if config.kind == "openai":
        return OpenAIProvider(config, environ)
    if config.kind == "anthropic":
        return AnthropicProvider(config, environ)
    return EchoProvider()
