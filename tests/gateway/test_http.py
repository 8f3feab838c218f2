"""Plain HTTP and handshake decisions on the WebSocket port, over real sockets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import LiveDaemon
from tests.gateway.wsutil import http_exchange, upgrade_request


async def get(
    live: LiveDaemon, path: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    request = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    return await http_exchange(live.port, request)


async def test_healthz_and_readyz(live: LiveDaemon) -> None:
    status, headers, body = await get(live, "/healthz")
    assert (status, orjson.loads(body)) == (200, {"status": "ok"})
    assert headers["content-type"] == "application/json"
    status, _, body = await get(live, "/readyz")
    assert (status, orjson.loads(body)) == (200, {"status": "ready"})


async def test_readyz_is_503_while_draining_and_healthz_stays_200(live: LiveDaemon) -> None:
    live.gateway.draining = True
    status, _, body = await get(live, "/readyz")
    assert (status, orjson.loads(body)) == (503, {"status": "draining"})
    assert (await get(live, "/healthz"))[0] == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/ws"), ("POST", "/healthz"), ("GET", "/healthz/x"), ("PUT", "/readyz")],
)
async def test_everything_else_is_404(live: LiveDaemon, method: str, path: str) -> None:
    assert (await get(live, path, method))[0] == 404


async def test_head_has_no_body(live: LiveDaemon) -> None:
    status, headers, body = await get(live, "/healthz", "HEAD")
    assert status == 200
    assert body == b""
    assert headers["content-length"] == "15"


async def test_malformed_and_oversized_heads(live: LiveDaemon) -> None:
    assert (await http_exchange(live.port, b"NONSENSE\r\n\r\n"))[0] == 400
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    assert (await http_exchange(live.port, huge))[0] == 431


async def test_upgrade_on_another_path_is_404(live: LiveDaemon) -> None:
    status, _, _ = await http_exchange(live.port, upgrade_request("/other"))
    assert status == 404


async def test_upgrade_accepted_without_origin_and_with_query_string(live: LiveDaemon) -> None:
    assert (await http_exchange(live.port, upgrade_request("/ws")))[0] == 101
    assert (await http_exchange(live.port, upgrade_request("/ws?x=1")))[0] == 101


async def test_origin_policy(start_daemon: Any) -> None:
    live = await start_daemon(gateway={"allowed_origins": ["https://*.example.com"]})
    good = upgrade_request(extra="Origin: https://app.example.com\r\n")
    evil = upgrade_request(extra="Origin: https://app.example.com.evil.net\r\n")
    bare = upgrade_request(extra="Origin: app.example.com\r\n")
    assert (await http_exchange(live.port, good))[0] == 101
    status, _, body = await http_exchange(live.port, evil)
    assert status == 403
    assert orjson.loads(body) == {"error": "origin not allowed"}
    assert (await http_exchange(live.port, bare))[0] == 403


async def test_bearer_token_at_handshake(live: LiveDaemon) -> None:
    ok = upgrade_request(extra=f"Authorization: Bearer {live.token}\r\n")
    assert (await http_exchange(live.port, ok))[0] == 101
    bad = upgrade_request(extra="Authorization: Bearer wrong-token\r\n")
    status, headers, _ = await http_exchange(live.port, bad)
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    basic = upgrade_request(extra="Authorization: Basic dXNlcjpwYXNz\r\n")
    assert (await http_exchange(live.port, basic))[0] == 401


async def test_repeated_bad_bearer_tokens_lock_the_address_out(live: LiveDaemon) -> None:
    bad = upgrade_request(extra="Authorization: Bearer wrong-token\r\n")
    for _ in range(5):
        assert (await http_exchange(live.port, bad))[0] == 401
    ok = upgrade_request(extra=f"Authorization: Bearer {live.token}\r\n")
    status, headers, _ = await http_exchange(live.port, ok)
    assert status == 429
    assert 290 <= int(headers["retry-after"]) <= 300


async def test_refuses_upgrades_while_shutting_down(live: LiveDaemon) -> None:
    live.gateway.draining = True
    assert (await http_exchange(live.port, upgrade_request()))[0] == 503
