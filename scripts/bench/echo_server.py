"""A bare trio-websocket echo server: the ceiling the gateway is measured against.

Started by ``scripts/bench/rpc.py`` as a subprocess. It listens on 127.0.0.1
(port 0 picks a free one), prints ``listening PORT`` on stdout once it
accepts connections, and sends every message it receives straight back on
the same connection. It runs until it is terminated (SIGTERM or SIGINT).

    .venv/bin/python scripts/bench/echo_server.py [--port PORT]
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import trio
import trio_websocket
from trio_websocket import ConnectionClosed, WebSocketRequest

MAX_MESSAGE = 1_048_576  # the gateway's default max_payload


async def echo(request: WebSocketRequest) -> None:
    """Accept the upgrade, then echo each message until the peer goes away."""
    ws = await request.accept()
    try:
        while True:
            message = await ws.get_message()
            await ws.send_message(message)
    except ConnectionClosed:
        pass


async def serve(port: int) -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            trio_websocket.serve_websocket,
            echo,
            "127.0.0.1",
            port,
            None,  # no TLS
        )
        print(f"listening {server.port}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
