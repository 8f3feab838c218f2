"""`aleph`: the one command-line entry point.

aleph serve [--config PATH]         run the daemon
aleph chat [--url URL] [--token T]  talk to the daemon from a terminal
aleph tui [--url URL] [--token T]   the multi-pane terminal interface (Textual)
aleph config check [--config PATH]  validate the config, exit 78 if bad
aleph config show [--config PATH]   the effective config, secrets masked
aleph ctl COMMAND ...                control the running daemon (see aleph.control.ctl)
aleph version
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from aleph import __version__

__all__ = ["main"]


def _config_path(args: argparse.Namespace) -> Path | None:
    from aleph.config import default_config_path

    return Path(args.config) if args.config else default_config_path()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # JSON strings and arrays of strings are valid TOML basic strings and arrays.
    return orjson.dumps(value).decode()


def _cmd_serve(args: argparse.Namespace) -> int:
    from aleph.daemon import main as serve

    return serve(_config_path(args))


def _cmd_chat(args: argparse.Namespace) -> int:
    from aleph.chat import main as chat

    config = Path(args.config) if args.config else None
    return chat(args.url, args.token, config_path=config, session_id=args.session)


def _cmd_tui(args: argparse.Namespace) -> int:
    # Imported here: `aleph serve` never loads Textual.
    from aleph.chat.target import resolve_target
    from aleph.interfaces.tui import main as tui

    target = resolve_target(args.url, args.token, Path(args.config) if args.config else None)
    return tui(target.url, target.token)


def _cmd_config(args: argparse.Namespace) -> int:
    from aleph.config import ConfigError, load_config, masked

    path = _config_path(args)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path or 'built-in defaults'}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return exc.exit_code
    if args.action == "check":
        print(f"{path or 'built-in defaults'}: ok")
        return 0
    data = masked(config)
    if args.json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"# effective configuration ({path or 'built-in defaults'}), secrets masked")
    for section, values in data.items():
        print(f"\n[{section}]")
        for key, value in values.items():
            print(f"{key} = {_toml_value(value)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aleph", description="Aleph AI-agent gateway")
    parser.add_argument("--version", action="version", version=f"aleph {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the daemon")
    serve.add_argument("--config", metavar="PATH", help="TOML config file (default: none)")
    serve.set_defaults(func=_cmd_serve)

    chat = commands.add_parser("chat", help="talk to the daemon from this terminal")
    chat.add_argument("--url", help="gateway URL (default: $ALEPH_URL, else the local daemon's)")
    chat.add_argument(
        "--token", help="token (default: $ALEPH_TOKEN, else the local daemon's owner token)"
    )
    chat.add_argument("--session", metavar="ID", help="continue this session")
    chat.add_argument("--config", metavar="PATH", help="the local daemon's TOML config file")
    chat.set_defaults(func=_cmd_chat)

    tui = commands.add_parser("tui", help="the multi-pane terminal interface")
    tui.add_argument("--url", help="gateway URL (default: $ALEPH_URL, else the local daemon's)")
    tui.add_argument(
        "--token", help="token (default: $ALEPH_TOKEN, else the local daemon's owner token)"
    )
    tui.add_argument("--config", metavar="PATH", help="the local daemon's TOML config file")
    tui.set_defaults(func=_cmd_tui)

    config = commands.add_parser("config", help="check or show the configuration")
    config.add_argument("action", choices=["check", "show"])
    config.add_argument("--config", metavar="PATH", help="TOML config file")
    config.add_argument("--json", action="store_true", help="show as JSON")
    config.set_defaults(func=_cmd_config)

    from aleph.control.ctl import add_ctl_parser

    add_ctl_parser(commands)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(func=lambda args: print(f"aleph {__version__}") or 0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result: int = args.func(args)
    return result
