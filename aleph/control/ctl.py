"""`aleph ctl`: the operator's command-line client for the control socket.

    aleph ctl status | clients | kick ID | sessions | agents
    aleph ctl token create --name NAME [--role guest|owner] [--expires 7d]
    aleph ctl token list | revoke ID_OR_NAME
    aleph ctl pairing list | approve CODE | deny CODE
    aleph ctl reload | drain [--wait SECONDS] | stop

Tables for people by default, ``--json`` for scripts (the method's result as
it came, or ``{"error": {...}}``); ``--socket PATH`` picks the socket. The
socket is otherwise found from ``$ALEPH_CONTROL__SOCKET``, the config file's
``control.socket``, the user's runtime directory and ``/run/aleph``, the
first that exists. Exit codes are listed in :mod:`aleph.control.client`.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import orjson
import trio

from aleph.control import render
from aleph.control.client import EXIT_CONFIG, EXIT_OK, EXIT_TEMPFAIL, CtlError, open_control

__all__ = ["add_ctl_parser", "parse_duration", "resolve_socket", "run_ctl"]

DEFAULT_TIMEOUT = 30.0
SYSTEM_SOCKET = Path("/run/aleph/control.sock")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """'90', '90s', '30m', '12h', '7d', '2w' -> seconds. Raises argparse.ArgumentTypeError."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (use e.g. 90s, 30m, 12h, 7d, 2w)"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def resolve_socket(
    explicit: str | None, config_path: str | None, environ: Mapping[str, str] = os.environ
) -> Path:
    """The control socket to use: the first candidate that exists, else the first one.

    Raises CtlError (exit 78) only when an explicitly named config is bad.
    """
    if explicit:
        return Path(explicit).expanduser()
    if environ.get("ALEPH_CONTROL__SOCKET"):
        return Path(environ["ALEPH_CONTROL__SOCKET"]).expanduser()
    from aleph.config import ConfigError, default_config_path, load_config

    candidates: list[Path] = []
    path = Path(config_path) if config_path else default_config_path(environ)
    try:
        candidates.append(load_config(path, environ).control_socket(environ))
    except ConfigError as exc:
        if config_path:
            error = CtlError(f"bad configuration in {config_path}: " + "; ".join(exc.problems))
            error.exit_code = EXIT_CONFIG
            raise error from None
    candidates.append(SYSTEM_SOCKET)
    return next((candidate for candidate in candidates if candidate.exists()), candidates[0])


# -- command table ---------------------------------------------------------

Request = tuple[str, dict[str, Any] | None]


def _request(args: argparse.Namespace) -> Request:
    """The control method and params for a parsed command line."""
    command = args.ctl_command
    if command == "kick":
        return "clients.kick", {"client_id": args.client_id}
    if command == "token":
        if args.token_action == "create":
            params: dict[str, Any] = {"name": args.name, "role": args.role}
            if args.expires is not None:
                params["expires_in"] = args.expires
            return "tokens.create", params
        if args.token_action == "revoke":
            return "tokens.revoke", {"token": args.token}
        return "tokens.list", None
    if command == "pairing":
        if args.pairing_action in ("approve", "deny"):
            return f"pairing.{args.pairing_action}", {"code": args.code}
        return "pairing.list", None
    if command == "drain":
        return "drain", None if args.wait is None else {"timeout": args.wait}
    simple = {
        "status": "status",
        "clients": "clients.list",
        "sessions": "sessions.list",
        "agents": "agents.list",
        "reload": "config.reload",
        "stop": "shutdown",
    }
    return simple[command], None


_RENDERERS: dict[str, Callable[[Any], str]] = {
    "status": render.status,
    "clients.list": render.clients,
    "clients.kick": lambda r: f"kicked {r['kicked']}",
    "sessions.list": render.sessions,
    "agents.list": render.agents,
    "tokens.create": render.token_created,
    "tokens.list": render.tokens,
    "tokens.revoke": render.token_revoked,
    "pairing.list": render.pairing,
    "pairing.approve": render.pairing_decided,
    "pairing.deny": render.pairing_decided,
    "config.reload": render.reloaded,
    "drain": render.drained,
    "shutdown": lambda r: "the daemon is stopping",
}


async def run_ctl(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run one `aleph ctl` command; returns the exit code."""
    method, params = _request(args)
    timeout = args.timeout
    if method == "drain":
        timeout += args.wait if args.wait is not None else 86400.0
    try:
        path = resolve_socket(args.socket, args.config)
        with trio.fail_after(timeout if timeout > 0 else math.inf):
            async with open_control(path) as control:
                result = await control.call(method, params)
    except trio.TooSlowError:
        return _fail(args, err, out, EXIT_TEMPFAIL, f"no reply within {timeout:g} s", None)
    except CtlError as exc:
        data = getattr(exc, "data", None)
        return _fail(args, err, out, exc.exit_code, exc.message, data, getattr(exc, "code", None))
    if args.json:
        out.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out.write(_RENDERERS[method](result).rstrip("\n") + "\n")
    if method == "drain" and not result.get("drained", True):
        return EXIT_TEMPFAIL
    return EXIT_OK


def _fail(
    args: argparse.Namespace,
    err: TextIO,
    out: TextIO,
    exit_code: int,
    message: str,
    data: Any,
    code: int | None = None,
) -> int:
    err.write(f"aleph ctl: {message}\n")
    if isinstance(data, dict):
        for line in data.get("errors", []):
            err.write(f"  {line}\n")
    if args.json:
        error = {"message": message, "exit_code": exit_code, "code": code, "data": data}
        out.write(orjson.dumps({"error": error}, option=orjson.OPT_INDENT_2).decode() + "\n")
    return exit_code


# -- argument parser -------------------------------------------------------


def _common(suppress: bool) -> argparse.ArgumentParser:
    """Options accepted both before and after the subcommand.

    The copy given to subcommands (`suppress`) has no defaults, so that an
    option given before the subcommand is not reset by the subcommand's parser.
    """

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the result as JSON, for scripts",
    )
    common.add_argument(
        "--socket",
        metavar="PATH",
        default=default(None),
        help="the control socket (default: found as described in the docs)",
    )
    common.add_argument(
        "--config",
        metavar="PATH",
        default=default(None),
        help="read control.socket from this config file",
    )
    common.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=default(DEFAULT_TIMEOUT),
        help=f"give up after this long (default {DEFAULT_TIMEOUT:g}; 0: never)",
    )
    return common


def add_ctl_parser(commands: Any) -> argparse.ArgumentParser:
    """Add `ctl` and its subcommands to the `aleph` parser's subparsers."""
    ctl: argparse.ArgumentParser = commands.add_parser(
        "ctl",
        parents=[_common(False)],
        help="control the running daemon",
        description="Talk to the running daemon over its control socket.",
    )
    sub = ctl.add_subparsers(dest="ctl_command", required=True, metavar="COMMAND")
    common = _common(True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, parents=[common], help=help_text)
        return parser

    add("status", "version, uptime, addresses, counts, interfaces, provider")
    add("clients", "the connected WebSocket clients")
    add("kick", "disconnect one client (close code 4004)").add_argument("client_id", metavar="ID")
    add("sessions", "the sessions")
    add("agents", "the connected remote agents")
    add("reload", "re-read the config file (like SIGHUP), report what changed")
    drain = add("drain", "stop taking new sessions and runs, wait for running ones")
    drain.add_argument(
        "--wait",
        metavar="DURATION",
        type=parse_duration,
        help="wait at most this long (default: control.drain_timeout)",
    )
    add("stop", "stop the daemon gracefully")

    token = add("token", "create, list and revoke access tokens")
    token_sub = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    create = token_sub.add_parser("create", parents=[common], help="create a token")
    create.add_argument("--name", required=True, help="what the token is for, e.g. phone")
    create.add_argument("--role", choices=["guest", "owner"], default="guest")
    create.add_argument(
        "--expires",
        metavar="DURATION",
        type=parse_duration,
        help="lifetime, e.g. 12h, 7d (default: never)",
    )
    token_sub.add_parser("list", parents=[common], help="list tokens (never the secrets)")
    revoke = token_sub.add_parser(
        "revoke", parents=[common], help="revoke a token and close its connections (4003)"
    )
    revoke.add_argument("token", metavar="ID_OR_NAME")

    pairing = add("pairing", "pairing requests from the bot interfaces")
    pairing_sub = pairing.add_subparsers(dest="pairing_action", required=True, metavar="ACTION")
    pairing_sub.add_parser("list", parents=[common], help="pending requests and paired channels")
    for action in ("approve", "deny"):
        parser = pairing_sub.add_parser(action, parents=[common], help=f"{action} a request")
        parser.add_argument("code", metavar="CODE")
    ctl.set_defaults(func=cmd_ctl)
    return ctl


def cmd_ctl(args: argparse.Namespace) -> int:
    """Entry point from `aleph.cli`."""
    code: int = trio.run(run_ctl, args, sys.stdout, sys.stderr)
    return code
