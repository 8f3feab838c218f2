"""Remote agents: the AgentRegistry and the agent.* methods."""

from aleph.agents.methods import register_agent_methods
from aleph.agents.registry import Agent, AgentRegistry, AgentToolSpec

__all__ = ["Agent", "AgentRegistry", "AgentToolSpec", "register_agent_methods"]
