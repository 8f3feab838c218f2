"""Human-readable output of `aleph ctl`: one function per control method result.

Each takes the method's result (plain JSON data) and returns the text to
print. Tables are left-aligned columns separated by two spaces, with a
header row; an empty list prints a one-line note instead. Fields a result
does not have are shown as ``-``, so older or newer daemons still print.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "agents",
    "clients",
    "drained",
    "pairing",
    "pairing_decided",
    "reloaded",
    "sessions",
    "status",
    "table",
    "token_created",
    "token_revoked",
    "tokens",
]


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(_cell(item) for item in value) or "-"
    if isinstance(value, dict):
        return " ".join(f"{key}={_cell(item)}" for key, item in value.items()) or "-"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    """Columns aligned on the widest cell; `empty` when there are no rows."""
    if not rows:
        return empty
    cells = [list(headers)] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    return "\n".join(line.rstrip() for line in lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


_STATUS_KEYS = {
    "name",
    "version",
    "pid",
    "status",
    "uptime_s",
    "listening",
    "control_socket",
    "clients",
    "interfaces",
    "provider",
    "tokens",
    "pairing",
}


def status(result: dict[str, Any]) -> str:
    clients = result.get("clients", {})
    provider = result.get("provider", {})
    interfaces = result.get("interfaces", {})
    lines = [
        f"aleph {result.get('version', '?')} (pid {result.get('pid', '?')}): "
        f"{result.get('status', '?')}, up {_duration(float(result.get('uptime_s', 0)))}",
        f"listening:   {', '.join(result.get('listening', [])) or '-'}",
        f"control:     {result.get('control_socket', '-')}",
        f"clients:     {clients.get('connected', 0)} connected, "
        f"{clients.get('authenticated', 0)} authenticated "
        f"({clients.get('owners', 0)} owner, {clients.get('guests', 0)} guest)",
        f"provider:    {provider.get('kind', '?')}"
        + (f" model {provider['model']}" if provider.get("model") else "")
        + (f" at {provider['base_url']}" if provider.get("base_url") else "")
        + (" (built-in echo, for trying Aleph out)" if provider.get("kind") == "echo" else ""),
        "interfaces:  "
        + (", ".join(f"{name} {_state(value)}" for name, value in interfaces.items()) or "-"),
        f"tokens:      {result.get('tokens', 0)}",
    ]
    if "pairing" in result:
        pairing_counts = result["pairing"]
        lines.append(
            f"pairing:     {pairing_counts.get('pending', 0)} pending, "
            f"{pairing_counts.get('paired', 0)} paired"
        )
    for key, value in result.items():
        if key not in _STATUS_KEYS:
            lines.append(f"{key + ':':<12} {_section(value)}")
    return "\n".join(lines)


def _state(value: Any) -> str:
    return str(value.get("state", "?")) if isinstance(value, dict) else _cell(value)


def _section(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {_cell(item)}" for key, item in value.items()) or "-"
    return _cell(value)


Column = tuple[str, Callable[[dict[str, Any]], Any]]  # header, how to read the cell


def _column(header: str, key: str) -> Column:
    return header, lambda item: item.get(key)


def listing(items: Sequence[dict[str, Any]], columns: Sequence[Column], empty: str) -> str:
    """A table with one row per item and one column per (header, reader)."""
    rows = [[read(item) for _, read in columns] for item in items]
    return table([header for header, _ in columns], rows, empty)


_CLIENTS = [
    _column("CLIENT", "client_id"),
    _column("REMOTE", "remote"),
    _column("PRINCIPAL", "principal"),
    _column("ROLE", "role"),
    _column("TOKEN", "token_id"),
    _column("CONNECTED", "connected_at"),
    _column("ORIGIN", "origin"),
]
_SESSIONS = [
    _column("SESSION", "session_id"),
    _column("TYPE", "type"),
    _column("TITLE", "title"),
    _column("MESSAGES", "message_count"),
    _column("WATCHERS", "subscribers"),
    _column("STATE", "state"),
    _column("UPDATED", "updated_at"),
]
_AGENTS = [
    _column("AGENT", "agent_id"),
    _column("NAME", "name"),
    _column("STATUS", "status"),
    _column("CAPABILITIES", "capabilities"),
    _column("CONNECTED", "connected_at"),
]
_TOKENS = [
    _column("ID", "token_id"),
    _column("NAME", "name"),
    _column("ROLE", "role"),
    _column("CREATED", "created_at"),
    ("EXPIRES", lambda t: "expired" if t.get("expired") else (t.get("expires_at") or "never")),
    ("CONNECTIONS", lambda t: t.get("connections", 0)),
]


def clients(result: dict[str, Any]) -> str:
    return listing(result.get("clients", []), _CLIENTS, "no clients connected")


def sessions(result: dict[str, Any]) -> str:
    return listing(result.get("sessions", []), _SESSIONS, "no sessions")


def agents(result: dict[str, Any]) -> str:
    return listing(result.get("agents", []), _AGENTS, "no agents connected")


def tokens(result: dict[str, Any]) -> str:
    return listing(result.get("tokens", []), _TOKENS, "no tokens")


def token_created(result: dict[str, Any]) -> str:
    expires = result.get("expires_at") or "never"
    return (
        f"created {result.get('role')} token {result.get('token_id')} "
        f"({result.get('name')}), expires {expires}\n\n"
        f"    {result.get('token')}\n\n"
        "This is the only time the token is shown; only its hash is stored."
    )


def token_revoked(result: dict[str, Any]) -> str:
    closed = result.get("closed", 0)
    return (
        f"revoked {result.get('revoked')} ({result.get('name')}); "
        f"closed {closed} connection{'' if closed == 1 else 's'}"
    )


def pairing(result: dict[str, Any]) -> str:
    pending = [
        [p.get("code"), p.get("channel"), p.get("user"), p.get("expires_at")]
        for p in result.get("pending", [])
    ]
    paired = [
        [p.get("channel"), p.get("user"), p.get("approved_at")] for p in result.get("paired", [])
    ]
    return (
        "pending requests:\n"
        + table(["CODE", "CHANNEL", "USER", "EXPIRES"], pending, "  none")
        + "\n\npaired channels:\n"
        + table(["CHANNEL", "USER", "APPROVED"], paired, "  none")
    )


def pairing_decided(result: dict[str, Any]) -> str:
    return f"{result.get('outcome')} {result.get('channel')} ({result.get('user')})"


def reloaded(result: dict[str, Any]) -> str:
    changed = result.get("changed", [])
    if not changed:
        return "configuration reloaded; nothing changed"
    return "configuration reloaded; changed: " + ", ".join(changed)


def drained(result: dict[str, Any]) -> str:
    remaining = result.get("remaining", {})
    if result.get("drained"):
        return (
            f"drained after {result.get('waited_s', 0):g} s: nothing running; "
            f"{result.get('clients', 0)} client(s) still connected"
        )
    return (
        f"drain timed out after {result.get('waited_s', 0):g} s: "
        f"{remaining.get('runs', 0)} run(s) and {remaining.get('calls', 0)} call(s) still running"
    )
