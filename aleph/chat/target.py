"""Where `aleph chat` connects and with which token.

In order of precedence: the ``--url``/``--token`` flags, the ``ALEPH_URL`` /
``ALEPH_TOKEN`` environment variables, then the local daemon's own settings:
the gateway address from its config and the owner token it keeps in its
state directory (readable when chat runs as the same user as the daemon).
A missing token is not an error here: chat then connects anonymously and
says what to do if the gateway wants a login.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from aleph.config import Config, ConfigError, default_config_path, load_config

__all__ = ["ChatTarget", "history_path", "resolve_target"]


@attrs.frozen
class ChatTarget:
    url: str
    token: str | None
    token_source: str


def _local_config(config_path: Path | None, environ: Mapping[str, str]) -> Config | None:
    try:
        return load_config(config_path or default_config_path(environ), environ)
    except ConfigError:
        return None


def resolve_target(
    url: str | None,
    token: str | None,
    config_path: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> ChatTarget:
    """The URL and token to use, from flags, the environment, or the local daemon."""
    url = url or environ.get("ALEPH_URL") or None
    source = "--token" if token else ""
    if not token and environ.get("ALEPH_TOKEN"):
        token, source = environ["ALEPH_TOKEN"], "ALEPH_TOKEN"
    config = None
    if url is None or not token:
        config = _local_config(config_path, environ)
    if url is None:
        gateway = config.gateway if config is not None else None
        host = gateway.host if gateway is not None else "127.0.0.1"
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        port = gateway.port if gateway is not None else 2135
        path = gateway.path if gateway is not None else "/ws"
        scheme = "wss" if gateway is not None and gateway.tls_cert else "ws"
        url = f"{scheme}://{host}:{port}{path}"
    if not token and config is not None:
        token_file = config.state_dir(environ) / "owner_token"
        try:
            token = token_file.read_text(encoding="utf-8").strip() or None
            source = str(token_file)
        except OSError:
            token = None
    return ChatTarget(url, token or None, source)


def history_path(environ: Mapping[str, str] = os.environ) -> Path:
    """The input history file: ALEPH_CHAT_HISTORY, else under XDG_STATE_HOME."""
    if environ.get("ALEPH_CHAT_HISTORY"):
        return Path(environ["ALEPH_CHAT_HISTORY"])
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "aleph" / "chat_history"
