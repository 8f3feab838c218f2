"""Browser origin checks for the WebSocket handshake (cross-site hijacking defence).

An origin is compared by its parts, never as a string: scheme, host and port
must each match. A pattern is ``*`` (anything), or ``scheme://host[:port]``
where the host may start with a ``*.`` label (one or more whole labels, never
the bare domain) and the port may be ``*``. So ``https://*.example.com``
accepts ``https://app.example.com`` but not ``https://app.example.com.evil.net``,
``https://evilexample.com``, ``http://app.example.com`` or ``app.example.com``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import attrs

__all__ = ["OriginPattern", "OriginPolicy", "check_patterns", "parse_origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
ANY_PORT = -1


def _split(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of `scheme://host[:port]`, or None if it is not one."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    scheme = parts.scheme.lower()
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
        if port is None:
            return None
    return scheme, parts.hostname.lower().rstrip("."), port


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """Parse an `Origin` header; None when it is not a usable origin (e.g. "null")."""
    return _split(value)


@attrs.frozen
class OriginPattern:
    scheme: str
    host_labels: tuple[str, ...]
    port: int  # ANY_PORT for "*"

    @classmethod
    def parse(cls, text: str) -> OriginPattern:
        """Raise ValueError with a readable reason when `text` is not a pattern."""
        any_port = text.endswith(":*")
        candidate = text[:-2] if any_port else text
        wildcard = "://*." in candidate
        candidate = candidate.replace("://*.", "://wildcard-label.", 1)
        if "*" in candidate:
            raise ValueError(f'"{text}": "*" may only stand for the leftmost labels of the host')
        split = _split(candidate)
        if split is None:
            raise ValueError(f'"{text}" is not "*" or scheme://host[:port]')
        scheme, host, port = split
        labels = tuple(host.split("."))
        if wildcard:
            labels = ("*", *labels[1:])
        if any(not label for label in labels):
            raise ValueError(f'"{text}" has an empty host label')
        if labels[0] == "*" and len(labels) < 3:
            raise ValueError(f'"{text}": a wildcard needs a domain of two labels or more after it')
        return cls(scheme, labels, ANY_PORT if any_port else port)

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme or (self.port != ANY_PORT and port != self.port):
            return False
        labels = host.split(".")
        if self.host_labels[0] != "*":
            return tuple(labels) == self.host_labels
        suffix = self.host_labels[1:]
        return len(labels) > len(suffix) and tuple(labels[-len(suffix) :]) == suffix


@attrs.frozen
class OriginPolicy:
    """Decides whether a handshake's `Origin` header is allowed."""

    patterns: tuple[OriginPattern, ...] = ()
    allow_any: bool = False

    @classmethod
    def from_config(cls, allowed: Iterable[str]) -> OriginPolicy:
        allowed = list(allowed)
        if "*" in allowed:
            return cls(allow_any=True)
        return cls(tuple(OriginPattern.parse(text) for text in allowed))

    def allows(self, origin: str | None) -> bool:
        """No Origin header (a non-browser client) is allowed; otherwise it must match."""
        if origin is None:
            return True
        if self.allow_any:
            return True
        parsed = parse_origin(origin)
        if parsed is None:
            return False
        return any(pattern.matches(*parsed) for pattern in self.patterns)


def check_patterns(allowed: Iterable[str]) -> list[str]:
    """Problems with configured patterns, for config validation."""
    problems = []
    for index, text in enumerate(allowed):
        if text == "*":
            continue
        try:
            OriginPattern.parse(text)
        except ValueError as exc:
            problems.append(f"gateway.allowed_origins[{index}]: {exc}")
    return problems
