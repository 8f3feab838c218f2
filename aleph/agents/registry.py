"""AgentRegistry: remote agents connected over the WebSocket, and their tools.

An agent is a client that called ``agent.register``: it has an id
(``a_...``), a name, capabilities, a status and the connection it came on.
Its declared tools join the :class:`~aleph.engine.tools.ToolService` under
their own names, with ``provider`` set to its agent id; calling one sends
the agent a JSON-RPC request ``agent.invoke {"call_id", "name",
"arguments"}`` on its connection and relays the result. The wait is bounded
by ``agents.invoke_timeout`` (the ToolService's timeout for these tools).

How it fails: registering a tool name that a built-in tool or another agent
already has, a malformed tool spec, or a second registration on the same
connection raise :class:`~aleph.protocol.errors.InvalidParams`. An agent
whose connection closes is removed with its tools, and its calls in flight
fail (the tool error reaches the model, or -32008 for ``tool.call``); an
agent that answers with an error, or is ``offline``, fails the call the same
way.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any, Literal

import attrs

from aleph.config import AgentsConfig
from aleph.engine.tools.schema import check_schema
from aleph.engine.tools.service import Tool, ToolConflict, ToolContext, ToolError, ToolService
from aleph.gateway.client import Client, ClientGone, PeerError
from aleph.protocol.errors import InvalidParams, NotFound
from aleph.timestamps import iso_utc

__all__ = ["Agent", "AgentRegistry", "AgentStatus", "AgentToolSpec"]

log = logging.getLogger(__name__)

AgentStatus = Literal["idle", "busy", "offline"]
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _empty_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


@attrs.frozen
class AgentToolSpec:
    """A tool as an agent declares it in ``agent.register``."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = attrs.Factory(_empty_schema)
    safe: bool = False  # may guests (and guest sessions) use it


@attrs.define(eq=False)
class Agent:
    agent_id: str
    name: str
    capabilities: tuple[str, ...]
    client: Client = attrs.field(repr=False)
    tools: tuple[str, ...] = ()
    status: AgentStatus = "idle"

    def describe(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "name": self.name,
            "capabilities": list(self.capabilities),
            "status": self.status,
            "connected_at": iso_utc(self.client.connected_at),
            "tools": list(self.tools),
        }


@attrs.define(eq=False)
class AgentRegistry:
    config: AgentsConfig
    tools: ToolService
    _agents: dict[str, Agent] = attrs.field(factory=dict, init=False)
    _by_client: dict[str, str] = attrs.field(factory=dict, init=False)

    def __len__(self) -> int:
        return len(self._agents)

    def get(self, agent_id: str) -> Agent | None:
        return self._agents.get(agent_id)

    def of_client(self, client: Client) -> Agent | None:
        agent_id = self._by_client.get(client.id)
        return self._agents.get(agent_id) if agent_id else None

    def listing(self) -> list[Agent]:
        return list(self._agents.values())

    def find(self, capability: str) -> list[Agent]:
        return [agent for agent in self._agents.values() if capability in agent.capabilities]

    def register(
        self,
        client: Client,
        name: str,
        capabilities: list[str],
        specs: list[AgentToolSpec],
    ) -> Agent:
        """Add the agent and its tools (all or none); InvalidParams if refused."""
        existing = self.of_client(client)
        if existing is not None:
            raise InvalidParams(f"this connection already registered agent {existing.agent_id}")
        if not name.strip() or len(name) > 100:
            raise InvalidParams("name: must be 1 to 100 characters")
        if len(specs) > self.config.max_tools_per_agent:
            raise InvalidParams(f"tools: at most {self.config.max_tools_per_agent} per agent")
        agent = Agent("a_" + secrets.token_hex(8), name, tuple(capabilities), client)
        tools = [self._tool(agent, spec, index) for index, spec in enumerate(specs)]
        try:
            self.tools.add_all(tools)
        except ToolConflict as exc:
            raise InvalidParams(f"tools: {exc}", {"errors": [f"tools: {exc}"]}) from None
        agent.tools = tuple(tool.name for tool in tools)
        self._agents[agent.agent_id] = agent
        self._by_client[client.id] = agent.agent_id
        client.on_close(lambda _client: self.remove(agent.agent_id))
        log.info("agent %s (%s) registered with %d tools", agent.agent_id, name, len(tools))
        return agent

    def remove(self, agent_id: str) -> None:
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return
        self._by_client.pop(agent.client.id, None)
        self.tools.remove_provider(agent_id)
        log.info("agent %s (%s) removed", agent_id, agent.name)

    def set_status(self, client: Client, status: AgentStatus) -> None:
        agent = self.of_client(client)
        if agent is None:
            raise NotFound("this connection has not registered an agent (call agent.register)")
        agent.status = status

    def _tool(self, agent: Agent, spec: AgentToolSpec, index: int) -> Tool:
        where = f"tools[{index}]"
        if not TOOL_NAME.match(spec.name):
            raise InvalidParams(f"{where}.name: letters, digits, _ and - only, 1 to 64 of them")
        problem = check_schema(spec.parameters)
        if problem is not None:
            raise InvalidParams(f"{where}.parameters: {problem}")
        return Tool(
            spec.name,
            spec.description or f"{spec.name} (served by agent {agent.name})",
            spec.parameters,
            self._invoker(agent, spec.name),
            safe=spec.safe,
            provider=agent.agent_id,
            timeout=self.config.invoke_timeout,
        )

    def _invoker(self, agent: Agent, tool_name: str) -> Any:
        async def invoke(arguments: dict[str, Any], ctx: ToolContext) -> Any:
            if self._agents.get(agent.agent_id) is not agent:
                raise ToolError(f"agent {agent.name} is no longer connected")
            if agent.status == "offline":
                raise ToolError(f"agent {agent.name} is offline")
            params = {
                "call_id": ctx.call_id or "t_" + secrets.token_hex(6),
                "name": tool_name,
                "arguments": arguments,
            }
            try:
                return await agent.client.call("agent.invoke", params)
            except ClientGone:
                raise ToolError(f"agent {agent.name} disconnected before answering") from None
            except PeerError as exc:
                raise ToolError(f"agent {agent.name}: {str(exc)[:500]}") from None

        return invoke
