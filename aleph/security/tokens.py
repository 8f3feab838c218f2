"""Bearer tokens: generated with 256 random bits, kept only as SHA-256 hashes.

A :class:`TokenRegistry` holds the hashes of every valid token with the
principal each stands for. :meth:`TokenRegistry.verify` hashes the presented
token and compares it with every record using :func:`hmac.compare_digest`,
so the time it takes does not depend on how much of a hash matched. The owner
token that the daemon generates (or reads from the environment, a file or a
systemd credential) is one record; the control socket adds and revokes others.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

import attrs

__all__ = ["OWNER", "Principal", "Role", "TokenRecord", "TokenRegistry", "hash_token", "new_token"]

Role = Literal["owner", "guest"]


@attrs.frozen
class Principal:
    """Who a client is once authenticated."""

    id: str
    role: Role
    token_id: str | None = None

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


OWNER = Principal("owner", "owner", "owner")


def new_token() -> str:
    """A fresh token: a recognisable prefix and 256 random bits."""
    return "aleph_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@attrs.frozen
class TokenRecord:
    token_id: str
    name: str
    role: Role
    token_hash: bytes = attrs.field(repr=False)
    created_at: float = 0.0
    expires_at: float | None = None  # wall-clock seconds since the epoch

    def principal(self) -> Principal:
        principal_id = "owner" if self.role == "owner" else f"guest:{self.name}"
        return Principal(principal_id, self.role, self.token_id)


@attrs.define(eq=False)
class TokenRegistry:
    """The valid tokens, by id; verification in constant time per record."""

    _records: dict[str, TokenRecord] = attrs.field(factory=dict, alias="records")

    def add(self, record: TokenRecord) -> None:
        self._records[record.token_id] = record

    def remove(self, token_id: str) -> TokenRecord | None:
        return self._records.pop(token_id, None)

    def records(self) -> list[TokenRecord]:
        return list(self._records.values())

    def verify(self, token: str, now: float) -> Principal | None:
        """The principal of a valid, unexpired token, else None. `now` is wall-clock time."""
        presented = hash_token(token)
        found: TokenRecord | None = None
        for record in self._records.values():
            # No early exit: every record is compared, whatever matched.
            if hmac.compare_digest(presented, record.token_hash):
                found = record
        if found is None or (found.expires_at is not None and now >= found.expires_at):
            return None
        return found.principal()
