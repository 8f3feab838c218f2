"""`agent.register`, `agent.status`, `agent.list` and `agent.find` (PROTOCOL.md).

Registering and reporting status are for owners' connections (an agent's
tools run in owner sessions); listing and finding are open to any
authenticated client. Params are checked strictly (-32602).
"""

from __future__ import annotations

from typing import Any

import attrs

from aleph.agents.registry import AgentRegistry, AgentStatus, AgentToolSpec
from aleph.gateway.dispatch import CallContext, MethodRegistry

__all__ = ["RegisterParams", "StatusParams", "register_agent_methods"]


@attrs.frozen
class RegisterParams:
    name: str
    capabilities: list[str]
    tools: list[AgentToolSpec] = attrs.Factory(list)


@attrs.frozen
class StatusParams:
    status: AgentStatus


@attrs.frozen
class FindParams:
    capability: str


def register_agent_methods(registry: MethodRegistry, agents: AgentRegistry) -> None:
    def register(ctx: CallContext, params: RegisterParams) -> dict[str, Any]:
        agent = agents.register(ctx.client, params.name, params.capabilities, params.tools)
        return {"agent_id": agent.agent_id}

    def status(ctx: CallContext, params: StatusParams) -> dict[str, Any]:
        agents.set_status(ctx.client, params.status)
        return {}

    def list_agents(ctx: CallContext, params: None) -> dict[str, Any]:
        return {"agents": [agent.describe() for agent in agents.listing()]}

    def find(ctx: CallContext, params: FindParams) -> dict[str, Any]:
        return {"agents": [agent.describe() for agent in agents.find(params.capability)]}

    registry.add("agent.register", register, params=RegisterParams, roles=("owner",))
    registry.add("agent.status", status, params=StatusParams, roles=("owner",))
    registry.add("agent.list", list_agents)
    registry.add("agent.find", find, params=FindParams)
