"""systemd integration: sd_notify datagrams, the watchdog interval, socket activation.

sd_notify is one datagram to ``$NOTIFY_SOCKET`` (a leading ``@`` names the
abstract namespace). It never blocks and never raises: without systemd, or
with nobody listening, a message is simply not delivered.

Socket activation (``aleph.socket``): systemd passes listening sockets as
file descriptors 3, 4, ... and says how many in ``$LISTEN_FDS``, for the
process named by ``$LISTEN_PID``. :func:`listen_fds` takes them (once: the
variables are removed so that no child inherits them).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, MutableMapping

__all__ = ["listen_fds", "notify", "watchdog_interval"]

SD_LISTEN_FDS_START = 3


def notify(message: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `message` (e.g. "READY=1") to systemd; True if it was delivered."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.sendto(message.encode(), address)
    except OSError:
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None if not asked for."""
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None


def listen_fds(environ: MutableMapping[str, str] = os.environ) -> list[socket.socket]:
    """The sockets systemd passed to this process (none without socket activation)."""
    count, pid = environ.get("LISTEN_FDS"), environ.get("LISTEN_PID")
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        environ.pop(name, None)
    if not count or pid != str(os.getpid()):
        return []
    try:
        number = int(count)
    except ValueError:
        return []
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + number):
        os.set_inheritable(fd, False)
        sockets.append(socket.socket(fileno=fd))  # family and type read from the fd
    return sockets
