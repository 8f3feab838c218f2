"""The engine's peers and clocks, shared with the agent tests."""

from tests.engine.conftest import idle_clock, openai_peer

__all__ = ["idle_clock", "openai_peer"]
