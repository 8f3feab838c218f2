"""Reading and writing files inside one workspace directory (owner only).

Every path a model gives is relative to ``tools.workspace_dir``; it is
resolved (symlinks followed) and refused unless it stays inside the
workspace, so ``../``, absolute paths and links pointing out are all
refused with a :class:`~aleph.engine.tools.service.ToolError`. Reads and
writes are capped at ``tools.max_file_bytes`` and run in a worker thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import trio

from aleph.engine.tools.service import Tool, ToolContext, ToolError

__all__ = ["Workspace", "file_tools"]

_PATH = {"type": "string", "description": "a path relative to the workspace", "minLength": 1}


@attrs.frozen
class Workspace:
    root: Path
    max_bytes: int

    def resolve(self, relative: str) -> Path:
        """The real path of `relative` inside the workspace; ToolError outside it."""
        if "\x00" in relative:
            raise ToolError("the path contains a NUL character")
        candidate = Path(relative)
        if candidate.is_absolute():
            raise ToolError("absolute paths are refused: give a path inside the workspace")
        root = self.root.resolve()
        target = (root / candidate).resolve()
        if target != root and not target.is_relative_to(root):
            raise ToolError("the path leaves the workspace")
        return target

    def read(self, relative: str) -> dict[str, Any]:
        path = self.resolve(relative)
        if not path.is_file():
            raise ToolError(f"no such file: {relative}")
        with path.open("rb") as handle:
            data = handle.read(self.max_bytes + 1)
        truncated = len(data) > self.max_bytes
        text = data[: self.max_bytes].decode("utf-8", "replace")
        return {"path": relative, "text": text, "truncated": truncated}

    def write(self, relative: str, text: str, append: bool) -> dict[str, Any]:
        data = text.encode("utf-8")
        if len(data) > self.max_bytes:
            raise ToolError(f"the content is larger than {self.max_bytes} bytes")
        path = self.resolve(relative)
        if path == self.root.resolve() or path.is_dir():
            raise ToolError(f"{relative} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab" if append else "wb") as handle:
            handle.write(data)
        return {"path": relative, "bytes_written": len(data)}

    def listing(self, relative: str) -> dict[str, Any]:
        path = self.resolve(relative or ".")
        if not path.is_dir():
            raise ToolError(f"no such directory: {relative}")
        entries = []
        for child in sorted(path.iterdir())[:500]:
            kind = "dir" if child.is_dir() else "file"
            size = child.stat().st_size if kind == "file" else None
            entries.append({"name": child.name, "type": kind, "size": size})
        return {"path": relative or ".", "entries": entries}


def file_tools(workspace: Workspace) -> list[Tool]:
    """read_file, write_file and list_files over `workspace` (none marked safe)."""

    async def read_file(arguments: dict[str, Any], ctx: ToolContext) -> Any:
        return await trio.to_thread.run_sync(workspace.read, arguments["path"])

    async def write_file(arguments: dict[str, Any], ctx: ToolContext) -> Any:
        append = bool(arguments.get("append", False))
        return await trio.to_thread.run_sync(
            workspace.write, arguments["path"], arguments["content"], append
        )

    async def list_files(arguments: dict[str, Any], ctx: ToolContext) -> Any:
        return await trio.to_thread.run_sync(workspace.listing, arguments.get("path", "."))

    return [
        Tool(
            "read_file",
            "Read a UTF-8 text file from the workspace directory.",
            {"type": "object", "properties": {"path": _PATH}, "required": ["path"],
             "additionalProperties": False},
            read_file,
        ),
        Tool(
            "write_file",
            "Write (or append to) a UTF-8 text file in the workspace directory.",
            {
                "type": "object",
                "properties": {
                    "path": _PATH,
                    "content": {"type": "string"},
                    "append": {"type": "boolean", "description": "append instead of replacing"},
                },
                "required": ["path", "content"],
                "additionalProperties": False,
            },
            write_file,
        ),
        Tool(
            "list_files",
            "List the files in a directory of the workspace.",
            {"type": "object", "properties": {"path": {"type": "string"}},
             "additionalProperties": False},
            list_files,
        ),
    ]  # fmt: skip
