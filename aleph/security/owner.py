"""Where the owner token comes from, and creating one on first start.

In order: the ``ALEPH_AUTH__OWNER_TOKEN`` environment variable, the file named
by ``auth.owner_token_file``, the systemd credential ``owner_token``
(``$CREDENTIALS_DIRECTORY/owner_token``), and last the file ``owner_token`` in
the state directory, which is generated (256 random bits, mode 0600) if it
does not exist. Only the token's hash is kept in memory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import attrs

from aleph.config import Config
from aleph.security.tokens import TokenRecord, hash_token, new_token

__all__ = ["OwnerToken", "OwnerTokenError", "resolve_owner_token"]


class OwnerTokenError(Exception):
    """The configured owner token cannot be used."""


@attrs.frozen
class OwnerToken:
    record: TokenRecord
    source: str  # where it came from, for the operator
    path: Path | None  # the file holding it, when there is one
    generated: bool = False


def _read_token_file(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise OwnerTokenError(f"cannot read owner token {path}: {exc.strerror or exc}") from None
    if len(token) < 16:
        raise OwnerTokenError(f"owner token in {path} is too short (16 characters at least)")
    return token


def _record(token: str) -> TokenRecord:
    return TokenRecord("owner", "owner", "owner", hash_token(token), time.time())


def resolve_owner_token(
    config: Config, state_dir: Path, environ: Mapping[str, str] = os.environ
) -> OwnerToken:
    """Find (or create) the owner token. Raises OwnerTokenError."""
    if config.auth.owner_token:
        if len(config.auth.owner_token) < 16:
            raise OwnerTokenError("ALEPH_AUTH__OWNER_TOKEN is too short (16 characters at least)")
        return OwnerToken(_record(config.auth.owner_token), "ALEPH_AUTH__OWNER_TOKEN", None)
    if config.auth.owner_token_file:
        path = Path(config.auth.owner_token_file).expanduser()
        return OwnerToken(_record(_read_token_file(path)), str(path), path)
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / "owner_token").is_file():
        path = Path(credentials) / "owner_token"
        return OwnerToken(_record(_read_token_file(path)), f"systemd credential {path}", path)
    path = state_dir / "owner_token"
    if path.exists():
        return OwnerToken(_record(_read_token_file(path)), str(path), path)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return OwnerToken(_record(token), str(path), path, generated=True)
