"""The client side of the control socket, and the exit codes `aleph ctl` uses.

:func:`open_control` connects to the socket and returns a
:class:`ControlClient`, whose :meth:`ControlClient.call` sends one request
line and reads its reply. Everything that can go wrong is a
:class:`CtlError` carrying the exit code a script can rely on::

    CtlError
    ├── DaemonUnavailable   69  not running: no socket, refused, connection closed
    ├── CallTimedOut        75  no reply in time (or drain did not finish)
    ├── BadReply            76  the reply was not JSON-RPC
    ├── NotPermitted        77  the socket is not ours to use (file mode or peer check)
    └── CallFailed          the daemon answered with an error:
                            3 not found (-32003), 77 forbidden (-32002),
                            78 reload refused (-32012), 69 shutting down (-32011),
                            1 anything else
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import trio

__all__ = [
    "EXIT_CONFIG",
    "EXIT_ERROR",
    "EXIT_NOPERM",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_PROTOCOL",
    "EXIT_TEMPFAIL",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "BadReply",
    "CallFailed",
    "CallTimedOut",
    "ControlClient",
    "CtlError",
    "DaemonUnavailable",
    "NotPermitted",
    "open_control",
]

EXIT_OK = 0
EXIT_ERROR = 1  # the daemon refused the request (bad params, internal error)
EXIT_USAGE = 2  # bad command line (argparse's own code)
EXIT_NOT_FOUND = 3  # no such client, token or pairing code
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the daemon is not running
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL: timed out; try again
EXIT_PROTOCOL = 76  # EX_PROTOCOL: the reply made no sense
EXIT_NOPERM = 77  # EX_NOPERM: the control socket is not ours to use
EXIT_CONFIG = 78  # EX_CONFIG: bad configuration (reload refused, bad --config)

_EXIT_BY_CODE = {-32003: EXIT_NOT_FOUND, -32002: EXIT_NOPERM, -32012: EXIT_CONFIG, -32011: 69}
MAX_REPLY = 64 * 1024 * 1024


class CtlError(Exception):
    """Something `aleph ctl` reports on stderr and turns into its exit code."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class DaemonUnavailable(CtlError):
    exit_code = EXIT_UNAVAILABLE


class CallTimedOut(CtlError):
    exit_code = EXIT_TEMPFAIL


class BadReply(CtlError):
    exit_code = EXIT_PROTOCOL


class NotPermitted(CtlError):
    exit_code = EXIT_NOPERM


class CallFailed(CtlError):
    """The daemon answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.data = code, data
        self.exit_code = _EXIT_BY_CODE.get(code, EXIT_ERROR)


def _owner_hint(path: Path) -> str:
    try:
        owner = os.stat(path).st_uid
    except OSError:
        return "run as the daemon's user or root"
    return f"it belongs to uid {owner}; run as that user or root"


class ControlClient:
    """One connection to the control socket; calls are answered in order."""

    def __init__(self, stream: trio.SocketStream, path: Path) -> None:
        self._stream = stream
        self._path = path
        self._buffer = bytearray()
        self._ids = itertools.count(1)

    async def _read_line(self) -> bytes:
        while (end := self._buffer.find(b"\n")) < 0:
            try:
                data = await self._stream.receive_some(65536)
            except (trio.BrokenResourceError, OSError):
                data = b""
            if not data:
                raise DaemonUnavailable("the daemon closed the connection (is it stopping?)")
            self._buffer += data
            if len(self._buffer) > MAX_REPLY:
                raise BadReply("reply too long")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send one request and return its result. Raises CtlError."""
        call_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": call_id, "method": method}
        if params is not None:
            message["params"] = params
        # A failed send may be the daemon refusing us: its reply says why, or EOF does.
        with contextlib.suppress(trio.BrokenResourceError, OSError):
            await self._stream.send_all(orjson.dumps(message) + b"\n")
        while True:
            try:
                reply = orjson.loads(await self._read_line())
            except orjson.JSONDecodeError:
                raise BadReply("the daemon's reply is not JSON") from None
            if not isinstance(reply, dict):
                raise BadReply("the daemon's reply is not a JSON-RPC response")
            error = reply.get("error")
            if reply.get("id") is None and isinstance(error, dict):
                if error.get("code") == -32002:  # the peer check refused us
                    raise NotPermitted(f"{self._path}: {error.get('message')}")
                raise CallFailed(int(error.get("code", 0)), str(error.get("message", "")))
            if reply.get("id") != call_id:
                continue  # not ours (never happens with one call at a time)
            if isinstance(error, dict):
                raise CallFailed(
                    int(error.get("code", 0)), str(error.get("message", "")), error.get("data")
                )
            if "result" not in reply:
                raise BadReply("the daemon's reply has neither result nor error")
            return reply["result"]

    async def aclose(self) -> None:
        await self._stream.aclose()


@asynccontextmanager
async def open_control(path: Path) -> AsyncIterator[ControlClient]:
    """Connect to the control socket at `path`. Raises CtlError."""
    try:
        stream = await trio.open_unix_socket(str(path))
    except FileNotFoundError:
        raise DaemonUnavailable(
            f"the daemon is not running (no control socket at {path})"
        ) from None
    except ConnectionRefusedError:
        raise DaemonUnavailable(f"the daemon is not running (nobody listens on {path})") from None
    except PermissionError:
        raise NotPermitted(
            f"{path}: permission denied; the control socket is not yours to use "
            f"({_owner_hint(path)})"
        ) from None
    except OSError as exc:
        raise DaemonUnavailable(f"cannot connect to {path}: {exc.strerror or exc}") from None
    client = ControlClient(stream, path)
    try:
        yield client
    finally:
        with trio.CancelScope(shield=True):
            await client.aclose()
