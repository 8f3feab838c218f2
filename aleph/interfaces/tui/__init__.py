"""`aleph tui`: a multi-pane terminal interface to the gateway.

Textual runs on asyncio inside Trio (trio-asyncio); the protocol code is the
Trio client of :mod:`aleph.client`, shared with `aleph chat`. See docs/tui.md.
Import this package lazily: it pulls in Textual.
"""

from aleph.interfaces.tui.run import main, running_tui

__all__ = ["main", "running_tui"]
