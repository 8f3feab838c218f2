"""The ToolService, its validation and policy, and the built-in tools."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from aleph.config import ToolsConfig
from aleph.engine.tools import Tool, ToolContext, ToolService, builtin_tools
from aleph.engine.tools.calculator import CalcError, evaluate
from aleph.engine.tools.schema import check_schema, validate
from tests.peers.sse_server import Reply, ScriptedHttpServer

OWNER = ToolContext("owner", "owner")
GUEST = ToolContext("guest", "guest")


def _service(tmp_path: Path | None = None, **config: Any) -> ToolService:
    if tmp_path is not None:
        config.setdefault("workspace_dir", str(tmp_path / "ws"))
    service = ToolService(ToolsConfig(**config))
    service.add_all(builtin_tools(service.config))
    return service


async def _call(service: ToolService, name: str, ctx: ToolContext = OWNER, **arguments: Any) -> Any:
    tool = service.get(name)
    assert tool is not None
    return await service.call(tool, arguments, ctx)


@pytest.mark.parametrize(
    ("expression", "value"),
    [("1 + 2 * 3", 7), ("2 ** 3 ** 2", 512), ("-2 ** 2", -4), ("(1 + 2) * 3", 9),
     ("7 / 2", 3.5), ("8 / 2", 4), ("7 // 2", 3), ("7 % 3", 1), ("2 ^ 10", 1024),
     ("sqrt(16) + max(1, 5, 3)", 9.0), ("0x10 + 1e2", 116.0), ("2 * -3", -6),
     ("round(pi, 2)", 3.14), ("10 ** 100 + 1", 10**100 + 1)],
)  # fmt: skip
def test_calculator(expression: str, value: float) -> None:
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    "expression",
    ["9 ** 9 ** 9", "1 / 0", "__import__('os')", "os.system", "2 +", "sqrt(-1)", "(1",
     "x", "1e999 * 10", "[1]", "lambda: 1", "1 if 1 else 2", "a" * 600],
)  # fmt: skip
def test_calculator_refuses(expression: str) -> None:
    with pytest.raises(CalcError):
        evaluate(expression)


@given(st.text(max_size=60))
def test_calculator_never_crashes(text: str) -> None:
    try:
        value = evaluate(text)
    except CalcError:
        return
    assert isinstance(value, int) or math.isfinite(value)


def test_schema_validation_lines() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "mode": {"enum": ["a", "b"]},
        },
        "required": ["n"],
        "additionalProperties": False,
    }
    assert validate({"n": 2, "tags": ["x"], "mode": "a"}, schema) == []
    assert validate({"n": True, "tags": ["x", 1, "z"], "mode": "c", "extra": 1}, schema) == [
        "arguments.n: expected integer, got boolean",
        "arguments.tags: more than 2 items",
        "arguments.tags[1]: expected string, got integer",
        "arguments.mode: must be one of 'a', 'b'",
        "arguments.extra: unknown argument",
    ]
    assert validate({}, schema) == ["arguments.n: required"]
    assert check_schema({"type": "array"}) is not None
    assert check_schema(schema) is None


async def test_bad_arguments_are_an_outcome_not_a_crash() -> None:
    outcome = await _call(_service(), "calculator", expression=12)
    assert outcome.kind == "invalid"
    assert outcome.problems == ("arguments.expression: expected string, got integer",)
    outcome = await _call(_service(), "calculator", expression="1/0")
    assert (outcome.kind, outcome.error) == ("failed", "cannot calculate: division by zero")


async def test_a_bug_in_a_tool_is_contained() -> None:
    async def broken(arguments: dict[str, Any], ctx: ToolContext) -> Any:
        raise RuntimeError("secret internals")

    service = _service()
    service.add(Tool("broken", "", {"type": "object"}, broken))
    outcome = await _call(service, "broken")
    assert outcome.kind == "failed"
    assert "secret" not in str(outcome.error)


async def test_current_time() -> None:
    outcome = await _call(_service(), "current_time", timezone="Asia/Tokyo")
    assert outcome.result["utc_offset"] == "+0900"
    outcome = await _call(_service(), "current_time", timezone="Mars/Olympus")
    assert "unknown timezone" in outcome.error


def test_policy_guests_get_safe_tools_and_files_are_off_by_default(tmp_path: Path) -> None:
    assert {t.name for t in _service().available("owner", "owner")} == {
        "calculator",
        "current_time",
    }
    service = _service(tmp_path, enable_files=True, enable_fetch=True)
    assert {t.name for t in service.available("owner", "paired")} == {
        "calculator",
        "current_time",
        "read_file",
        "write_file",
        "list_files",
        "http_fetch",
    }
    assert {t.name for t in service.available("owner", "guest")} == {"calculator", "current_time"}
    assert {t.name for t in service.available("guest", "owner")} == {"calculator", "current_time"}


async def test_files_stay_inside_the_workspace(tmp_path: Path) -> None:
    service = _service(tmp_path, enable_files=True, max_file_bytes=64)
    written = await _call(service, "write_file", path="notes/a.txt", content="héllo")
    assert written.result == {"path": "notes/a.txt", "bytes_written": 6}
    await _call(service, "write_file", path="notes/a.txt", content="!", append=True)
    read = await _call(service, "read_file", path="notes/a.txt")
    assert read.result == {"path": "notes/a.txt", "text": "héllo!", "truncated": False}
    listing = await _call(service, "list_files", path="notes")
    assert listing.result["entries"] == [{"name": "a.txt", "type": "file", "size": 7}]
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "ws" / "link").symlink_to(tmp_path / "secret.txt")
    for path in ("../secret.txt", str(tmp_path / "secret.txt"), "notes/../../secret.txt", "link"):
        outcome = await _call(service, "read_file", path=path)
        assert outcome.kind == "failed", path
        assert "workspace" in outcome.error
    too_big = await _call(service, "write_file", path="big", content="x" * 65)
    assert "larger than 64 bytes" in too_big.error
    (tmp_path / "ws" / "huge").write_text("y" * 100)
    assert (await _call(service, "read_file", path="huge")).result["truncated"] is True


async def test_fetch_limits(nursery: trio.Nursery, tmp_path: Path) -> None:
    server = ScriptedHttpServer(lambda request: Reply(200, [("content-type", "text/plain")],
                                                      [b"a" * 100, b"b" * 100]))  # fmt: skip
    await nursery.start(server.serve)
    url = f"{server.base}/page"
    refused = await _call(_service(enable_fetch=True), "http_fetch", url=url)
    assert "private or local address" in refused.error
    service = _service(enable_fetch=True, fetch_allow_private=True, fetch_max_bytes=150)
    outcome = await _call(service, "http_fetch", url=url)
    assert outcome.result["status"] == 200
    assert outcome.result["truncated"] is True
    assert outcome.result["text"] == "a" * 100 + "b" * 50
    scheme = await _call(service, "http_fetch", url="file:///etc/passwd")
    assert "only http" in scheme.error
    server.replies.append(Reply(302, [("location", "http://127.0.0.1:1/")]))
    redirected = await _call(_service(enable_fetch=True, fetch_allow_private=True,
                                      fetch_timeout=5.0), "http_fetch", url=url)  # fmt: skip
    assert redirected.kind == "failed"
    server.replies.append(Reply(hang=True))
    slow = await _call(_service(enable_fetch=True, fetch_allow_private=True,
                                fetch_timeout=0.2), "http_fetch", url=url)  # fmt: skip
    assert "within 0.2 s" in slow.error
