"""The JSON-RPC 2.0 specification's examples (jsonrpc.org/specification, section 7),
sent verbatim by a client that is not ours: the asyncio `websockets` library, in a
worker thread, against the running daemon.

The examples call methods named subtract, update, sum, notify_hello, get_data
and foobar; the test registers the first five on the live gateway with the
spec's semantics (foobar stays unknown), then compares every reply with the one
the specification gives."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import attrs
import trio
import trio.lowlevel

from aleph.gateway import CallContext
from tests.conftest import LiveDaemon

# (request text, expected reply or None for "nothing is returned")
EXAMPLES: list[tuple[str, Any]] = [
    (
        '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
        {"jsonrpc": "2.0", "result": 19, "id": 1},
    ),
    (
        '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
        {"jsonrpc": "2.0", "result": -19, "id": 2},
    ),
    (
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}',
        {"jsonrpc": "2.0", "result": 19, "id": 3},
    ),
    (
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}',
        {"jsonrpc": "2.0", "result": 19, "id": 4},
    ),
    ('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', None),
    ('{"jsonrpc": "2.0", "method": "foobar"}', None),
    (
        '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
        {"jsonrpc": "2.0", "error": {"code": -32601}, "id": "1"},
    ),
    (
        '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
        {"jsonrpc": "2.0", "error": {"code": -32700}, "id": None},
    ),
    (
        '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
        {"jsonrpc": "2.0", "error": {"code": -32600}, "id": None},
    ),
    (
        '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]',
        {"jsonrpc": "2.0", "error": {"code": -32700}, "id": None},
    ),
    ("[]", {"jsonrpc": "2.0", "error": {"code": -32600}, "id": None}),
    ("[1]", [{"jsonrpc": "2.0", "error": {"code": -32600}, "id": None}]),
    ("[1,2,3]", [{"jsonrpc": "2.0", "error": {"code": -32600}, "id": None}] * 3),
    (
        """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
        ]""",
        [
            {"jsonrpc": "2.0", "result": 7, "id": "1"},
            {"jsonrpc": "2.0", "result": 19, "id": "2"},
            {"jsonrpc": "2.0", "error": {"code": -32600}, "id": None},
            {"jsonrpc": "2.0", "error": {"code": -32601}, "id": "5"},
            {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
        ],
    ),
    (
        """[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
        ]""",
        None,
    ),
]


@attrs.frozen
class Subtract:
    minuend: int
    subtrahend: int


@attrs.frozen
class Numbers:
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0
    e: int = 0


def register_spec_methods(live: LiveDaemon) -> None:
    registry = live.gateway.registry
    registry.add("subtract", lambda ctx, p: p.minuend - p.subtrahend, params=Subtract)
    registry.add("update", lambda ctx, p: None, params=Numbers)
    registry.add("sum", lambda ctx, p: p.a + p.b + p.c + p.d + p.e, params=Numbers)
    registry.add("notify_hello", lambda ctx, p: None, params=Numbers)
    registry.add("notify_sum", lambda ctx, p: None, params=Numbers)

    async def get_data(ctx: CallContext, params: None) -> list[Any]:
        await trio.lowlevel.checkpoint()  # an async handler inside a batch
        return ["hello", 5]

    registry.add("get_data", get_data)


def matches(expected: Any, actual: Any) -> bool:
    """Error messages are ours to choose; codes, ids and results are the spec's."""
    if isinstance(expected, list):

        def canonical(items: list[Any]) -> list[str]:
            return sorted(json.dumps(_shape(item), sort_keys=True) for item in items)

        return isinstance(actual, list) and canonical(actual) == canonical(expected)
    return bool(_shape(expected) == _shape(actual))


def _shape(message: dict[str, Any]) -> dict[str, Any]:
    shaped = dict(message)
    if "error" in shaped:
        shaped["error"] = {"code": shaped["error"]["code"]}
    return shaped


async def exchange(url: str, token: str) -> list[Any]:
    import websockets

    replies: list[Any] = []
    async with websockets.connect(url) as ws:
        json.loads(await ws.recv())  # gateway.hello
        await ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "method": "auth.login", "params": {"token": token}, "id": 0}
            )
        )
        assert "result" in json.loads(await ws.recv())
        for text, expected in EXAMPLES:
            await ws.send(text)
            if expected is None:
                replies.append(None)
                continue
            replies.append(json.loads(await ws.recv()))
        # Nothing may arrive for the examples that expect nothing: a ping flushes the order.
        await ws.send('{"jsonrpc": "2.0", "method": "system.ping", "id": "last"}')
        assert json.loads(await ws.recv())["id"] == "last"
    return replies


async def test_specification_examples_with_an_independent_client(live: LiveDaemon) -> None:
    register_spec_methods(live)
    replies = await trio.to_thread.run_sync(asyncio.run, exchange(live.url, live.token))
    for (text, expected), actual in zip(EXAMPLES, replies, strict=True):
        if expected is None:
            continue
        assert matches(expected, actual), f"{text}\n expected {expected}\n got {actual}"
