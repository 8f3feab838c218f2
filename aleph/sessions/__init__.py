"""Sessions: isolated conversations, durable history, resumable event streams.

:class:`SessionHub` holds the live sessions and runs them;
:func:`register_session_methods` puts ``session.*`` on the gateway;
:func:`migrations` is the schema of the ``sessions`` store component.
See docs/sessions.md for the design decisions.
"""

from aleph.sessions.hub import GUEST_TTL, SessionHub
from aleph.sessions.methods import register_session_methods
from aleph.sessions.model import Session, SessionRecord, check_access
from aleph.sessions.ratelimit import SendLimits
from aleph.sessions.store import SessionStore, migrations

__all__ = [
    "GUEST_TTL",
    "SendLimits",
    "Session",
    "SessionHub",
    "SessionRecord",
    "SessionStore",
    "check_access",
    "migrations",
    "register_session_methods",
]
