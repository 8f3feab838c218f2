"""wss:// when a certificate and key are configured."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import orjson
import trio
import trio_websocket
import trustme


async def test_wss_serves_the_protocol_and_probes_over_tls(
    tmp_path: Path, start_daemon: Any
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    live = await start_daemon(gateway={"tls_cert": str(cert_file), "tls_key": str(key_file)})
    assert live.gateway.listen_addresses[0].startswith("wss://")

    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    url = live.url.replace("ws://", "wss://")
    async with trio.open_nursery() as nursery:
        ws = await trio_websocket.connect_websocket_url(nursery, url, ssl_context=client_context)
        hello = orjson.loads(await ws.get_message())
        assert hello["params"]["authenticated"] is False
        login = {"jsonrpc": "2.0", "method": "auth.login", "params": {"token": live.token}, "id": 1}
        await ws.send_message(orjson.dumps(login).decode())
        assert orjson.loads(await ws.get_message())["result"]["principal"]["role"] == "owner"
        await ws.aclose()
        await ws._stream.aclose()

    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", live.port, ssl_context=client_context)
    async with stream:
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in response or not response.endswith(b"}"):
                response += await stream.receive_some()
    assert response.startswith(b"HTTP/1.1 200")

    plain = await trio.open_tcp_stream("127.0.0.1", live.port)
    async with plain:  # a plain-text client cannot speak to a TLS port
        await plain.send_all(b"GET /healthz HTTP/1.1\r\n\r\n")
        with trio.fail_after(10):
            data = await plain.receive_some()
        assert not data.startswith(b"HTTP/1.1 200")
