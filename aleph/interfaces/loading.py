"""Loading the bot libraries off the event loop (sans asyncio itself).

:func:`load_bridge_module` imports :mod:`aleph.interfaces.wiring` (which
imports trio-asyncio first) and the adapter of every enabled bot, with
python-telegram-bot or discord.py behind it. The daemon calls it through
``trio.to_thread.run_sync`` so the half second these imports take never
blocks the gateway or delays readiness. Raises ImportError if a library is
missing.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from aleph.config import Config

__all__ = ["load_bridge_module"]


def load_bridge_module(config: Config) -> ModuleType:
    """Import the bridge's wiring and the enabled bots' adapters; return the wiring."""
    wiring = importlib.import_module("aleph.interfaces.wiring")
    if config.telegram.enabled:
        importlib.import_module("aleph.interfaces.telegram_bot")
    if config.discord.enabled:
        importlib.import_module("aleph.interfaces.discord_bot")
    return wiring
