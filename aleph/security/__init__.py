"""Who may connect and how often: origins, tokens, login lockout, rate limits."""

from aleph.security.limits import KeyedLimiter, LoginLockout, TokenBucket
from aleph.security.origin import OriginPolicy
from aleph.security.tokens import Principal, TokenRecord, TokenRegistry, new_token

__all__ = [
    "KeyedLimiter",
    "LoginLockout",
    "OriginPolicy",
    "Principal",
    "TokenBucket",
    "TokenRecord",
    "TokenRegistry",
    "new_token",
]
