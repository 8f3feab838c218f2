"""The built-in tools, and which of them a config turns on.

Always on, and safe for guests: ``current_time`` (the date and time in an
IANA timezone) and ``calculator`` (safe arithmetic). Owner only, off unless
configured: ``read_file``/``write_file``/``list_files`` inside
``tools.workspace_dir`` (``tools.enable_files``) and ``http_fetch``
(``tools.enable_fetch``).
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from pathlib import Path
from typing import Any

from aleph.config import ToolsConfig
from aleph.engine.tools.calculator import CalcError, evaluate
from aleph.engine.tools.fetch import fetch_tool
from aleph.engine.tools.files import Workspace, file_tools
from aleph.engine.tools.service import Tool, ToolContext, ToolError

__all__ = ["builtin_tools"]

log = logging.getLogger(__name__)


async def current_time(arguments: dict[str, Any], ctx: ToolContext) -> Any:
    name = arguments.get("timezone") or "UTC"
    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ToolError(
            f'unknown timezone "{name}" (use an IANA name such as Europe/Paris)'
        ) from None
    now = dt.datetime.now(zone)
    return {
        "timezone": name,
        "iso": now.isoformat(timespec="seconds"),
        "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H:%M:%S"),
        "weekday": now.strftime("%A"),
        "utc_offset": now.strftime("%z"),
    }


async def calculator(arguments: dict[str, Any], ctx: ToolContext) -> Any:
    try:
        return {"expression": arguments["expression"], "value": evaluate(arguments["expression"])}
    except CalcError as exc:
        raise ToolError(f"cannot calculate: {exc}") from None


def builtin_tools(config: ToolsConfig) -> list[Tool]:
    tools = [
        Tool(
            "current_time",
            "The current date and time in a timezone (IANA name, default UTC).",
            {
                "type": "object",
                "properties": {"timezone": {"type": "string", "description": "e.g. Europe/Paris"}},
                "additionalProperties": False,
            },
            current_time,
            safe=True,
        ),
        Tool(
            "calculator",
            "Evaluate an arithmetic expression exactly: + - * / // % ** ( ), sqrt, log, "
            "sin, cos, min, max, pi, e.",
            {
                "type": "object",
                "properties": {"expression": {"type": "string", "maxLength": 500}},
                "required": ["expression"],
                "additionalProperties": False,
            },
            calculator,
            safe=True,
        ),
    ]
    if config.enable_files:
        if not config.workspace_dir:
            log.warning("tools.enable_files is set but tools.workspace_dir is empty: no file tools")
        else:
            root = Path(config.workspace_dir).expanduser()
            root.mkdir(parents=True, exist_ok=True)
            tools += file_tools(Workspace(root, config.max_file_bytes))
    if config.enable_fetch:
        tools.append(fetch_tool(config))
    return tools
