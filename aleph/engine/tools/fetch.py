"""The http_fetch tool: GET one http(s) URL with size and time limits (owner only).

The body is read up to ``tools.fetch_max_bytes`` (the rest is dropped and
``truncated`` set) within ``tools.fetch_timeout`` seconds, redirects
included (at most 5). Unless ``tools.fetch_allow_private`` is set, a URL
whose host resolves to a loopback, private, link-local or otherwise
non-public address is refused, so a model cannot reach the machine's own
services. Failures are :class:`~aleph.engine.tools.service.ToolError`.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import trio

from aleph.config import ToolsConfig
from aleph.engine.providers.http import pump
from aleph.engine.tools.service import Tool, ToolContext, ToolError

__all__ = ["fetch_tool"]

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml", "+json", "+xml")


async def _check_public(host: str) -> None:
    try:
        infos = await trio.socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ToolError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise ToolError(f"{host} is a private or local address; fetching it is refused")


async def _read(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()

    async def collect(piece: bytes) -> bool:
        body.extend(piece)
        return len(body) <= limit

    await pump(response, collect)
    return bytes(body)


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolError("only http:// and https:// URLs can be fetched")
    return parts.hostname


async def _get(
    client: httpx.AsyncClient, url: str, limit: int, allow_private: bool
) -> tuple[httpx.Response, bytes]:
    """GET `url`, following at most 5 redirects, each one checked like the first."""
    for _ in range(6):
        host = _check_url(url)
        if not allow_private:
            await _check_public(host)
        async with client.stream("GET", url, headers={"user-agent": "aleph-fetch"}) as response:
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            body = await _read(response, limit)
            return response, body
    raise ToolError("too many redirects")


def fetch_tool(config: ToolsConfig) -> Tool:
    async def http_fetch(arguments: dict[str, Any], ctx: ToolContext) -> Any:
        limit = min(int(arguments.get("max_bytes", config.fetch_max_bytes)), config.fetch_max_bytes)
        _check_url(arguments["url"])
        try:
            with trio.fail_after(config.fetch_timeout):
                async with httpx.AsyncClient(
                    timeout=config.fetch_timeout, trust_env=False
                ) as client:
                    response, body = await _get(
                        client, arguments["url"], limit, config.fetch_allow_private
                    )
        except trio.TooSlowError:
            raise ToolError(f"no complete answer within {config.fetch_timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"fetch failed: {type(exc).__name__}: {exc}") from None
        content_type = response.headers.get("content-type", "")
        result: dict[str, Any] = {
            "url": str(response.url),
            "status": response.status_code,
            "content_type": content_type,
            "truncated": len(body) > limit,
        }
        if any(kind in content_type for kind in _TEXT_TYPES) or not content_type:
            result["text"] = body[:limit].decode(response.encoding or "utf-8", "replace")
        else:
            result["text"] = f"[{len(body)} bytes of {content_type}, not shown]"
        return result

    return Tool(
        "http_fetch",
        "Fetch a web page or API over HTTP(S) with GET and return its status and text.",
        {
            "type": "object",
            "properties": {
                "url": {"type": "string", "description": "an http:// or https:// URL"},
                "max_bytes": {"type": "integer", "minimum": 1},
            },
            "required": ["url"],
            "additionalProperties": False,
        },
        http_fetch,
        timeout=config.fetch_timeout + 1.0,
    )
