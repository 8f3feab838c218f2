"""Server CPU per request, gateway vs bare echo, in many short interleaved rounds.

    .venv/bin/python scripts/bench/rpc_rounds.py [--rounds 8]   # about 1.5 minutes

The CPU ratio of ``scripts/bench/rpc.py`` moves by +-20 % from one row to the
next on a shared VM. This runs the same load rows (the same servers, client
and 100-byte requests as rpc.py) as 0.5 s warm-up + 2 s measured, echo then
gateway, `--rounds` times at 1 and at 50 connections, and prints every
round's ratio and their median. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rpc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        daemon, _ = rpc.start_daemon(Path(tmp), 30.0, 0.5)
        echo = rpc.start_echo_server()
        try:
            token = rpc.owner_token(Path(tmp))
            echo_target, aleph_target = rpc.echo_target(echo), rpc.gateway_target(daemon, token)
            for conns in (1, 50):
                settings = rpc.Settings(0.5, 2.0, (conns,), (), 30.0, 0.5, 1)
                ratios = []
                for _ in range(rounds):
                    bare = asyncio.run(rpc.run_load(echo_target, conns, settings))
                    aleph = asyncio.run(rpc.run_load(aleph_target, conns, settings))
                    ratios.append(aleph.server_us / bare.server_us)
                print(
                    f"{conns:>2} connection(s): server CPU per request aleph/echo median "
                    f"x{statistics.median(ratios):.2f}  (rounds: "
                    + " ".join(f"x{r:.2f}" for r in ratios)
                    + f"; target x{rpc.TARGET_CPU_RATIO})",
                    flush=True,
                )
        finally:
            daemon.proc.terminate()
            echo.proc.terminate()


if __name__ == "__main__":
    main()
