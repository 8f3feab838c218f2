"""An httpx transport: HTTP/1.1 over Trio streams, responses parsed by llhttp (httptools).

Why it exists: a model streams every token as its own HTTP chunk, and
httpcore parses HTTP/1.1 with h11, in pure Python, at about 13 us per chunk
on the benchmark machine: a third of the daemon's whole budget per token
(docs/performance.md). httptools wraps llhttp, the C parser of Node.js, and
does the same in well under 1 us. Everything above the wire stays httpx
(requests, headers, timeouts, errors, content decoding), so the providers do
not know which transport they run on; this module only connects, writes the
request and feeds the bytes it reads to the parser. A body is handed on as
one piece per network read, however many chunks that read held.

Scope: ``http`` and ``https`` (TLS through :class:`trio.SSLStream`, verified
like httpx's default), HTTP/1.1 only, no proxies (the providers use
``trust_env=False``), request bodies of known length or chunked.

Connections are kept alive per origin (scheme, host, port) and reused LIFO;
an idle one is dropped after :data:`KEEPALIVE_EXPIRY` seconds, or when it
has become readable while idle (the server closed it or sent something
unasked). A request that fails on a reused connection before a single byte
of its response arrived is retried once on a new connection, as the server
may have closed the old one just as it was taken.

Timeouts are httpx's: ``connect`` (TCP and TLS), ``write`` (each send),
``read`` (each network read, so a stream may run as long as bytes keep
coming). ``pool`` has nothing to wait for: there is no connection limit.
Failures are the httpx exceptions httpx's own transport raises:
:class:`httpx.ConnectError`, :class:`httpx.ConnectTimeout`,
:class:`httpx.WriteTimeout`, :class:`httpx.ReadTimeout`,
:class:`httpx.ReadError`, :class:`httpx.WriteError` and
:class:`httpx.RemoteProtocolError`.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httptools
import httpx
import trio

__all__ = ["KEEPALIVE_EXPIRY", "MAX_IDLE_PER_ORIGIN", "Http1Transport"]

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default)
MAX_IDLE_PER_ORIGIN = 8
READ_SIZE = 16384  # a piece parses in well under a millisecond, whatever the burst

Origin = tuple[str, str, int]

_FORBIDDEN_IN_HEADERS = (b"\r", b"\n", b"\0")


class _Stale(Exception):
    """A reused connection failed before the response started: safe to retry."""


@attrs.define(eq=False)
class _Connection:
    origin: Origin
    stream: trio.abc.Stream
    socket: trio.socket.SocketType
    idle_since: float = 0.0

    def readable(self) -> bool:
        """True if the idle connection has something to read: EOF or stray bytes."""
        try:
            readable, _, _ = select.select([self.socket.fileno()], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


class _Response:
    """The parser's callbacks: the response head, body pieces and where the message ends."""

    def __init__(self, head_request: bool) -> None:
        self.head_request = head_request
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.informational = False
        self.body: list[bytes] = []
        self.complete = False
        self.extra = False  # bytes after the end of the message: do not reuse
        self.close_delimited = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.informational = True  # 103 Early Hints and the like: wait for the real one
            return
        self.status = status
        self.headers_done = True
        if self.head_request:
            # llhttp does not know the request was HEAD and would wait for the body the
            # headers announce: the answer ends here, and the connection is not reused.
            self.complete = True
            return
        names = {name.lower(): value for name, value in self.headers}
        chunked = b"chunked" in names.get(b"transfer-encoding", b"").lower()
        self.close_delimited = not chunked and b"content-length" not in names

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            self.reason, self.headers = b"", []
            return
        if not self.complete:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise httpx.RemoteProtocolError(
                "the server switched protocols; not supported"
            ) from None
        except httptools.HttpParserError as exc:
            if self.complete:  # garbage after a complete message: only the reuse is off
                self.extra = True
                return
            raise httpx.RemoteProtocolError(f"malformed HTTP response: {exc}") from None

    def take_body(self) -> bytes:
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body.clear()
        return body


class _Body(httpx.AsyncByteStream):
    """The response body: one piece per network read; gives the connection back at the end."""

    def __init__(
        self,
        transport: Http1Transport,
        connection: _Connection,
        response: _Response,
        read_timeout: float | None,
        reusable: bool,
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._response = response
        self._read_timeout = read_timeout
        self._reusable = reusable
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        response = self._response
        if response.body:
            yield response.take_body()
        while not response.complete:
            data = await _receive(self._connection, self._read_timeout)
            if not data:
                if response.close_delimited:
                    response.complete = True  # the body ends where the connection does
                    self._reusable = False
                    break
                raise httpx.RemoteProtocolError(
                    "the server closed the connection in the middle of the response body"
                )
            response.feed(data)
            if response.body:
                yield response.take_body()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        response = self._response
        if self._reusable and response.complete and response.keep_alive and not response.extra:
            self._transport._release(self._connection)
        else:
            await self._transport._discard(self._connection)


@attrs.define(eq=False)
class Http1Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive; use as ``httpx.AsyncClient(transport=Http1Transport())``."""

    ssl_context: ssl.SSLContext | None = None
    _idle: dict[Origin, list[_Connection]] = attrs.Factory(dict)
    _open: set[_Connection] = attrs.Factory(set)
    _closed: bool = False

    def _tls(self) -> ssl.SSLContext:
        """The TLS context, made on first use: loading the CA bundle takes ~50 ms."""
        if self.ssl_context is None:
            self.ssl_context = httpx.create_ssl_context()
            self.ssl_context.set_alpn_protocols(["http/1.1"])
        return self.ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        port = url.port or (443 if url.scheme == "https" else 80)
        origin: Origin = (url.scheme, url.host, port)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        head = _request_head(request)
        body = await _request_body(request)
        replayable = isinstance(request.stream, httpx.ByteStream)
        while True:
            connection, reused = self._take(origin)
            if connection is None:
                connection = await self._connect(origin, timeouts.get("connect"))
            try:
                response = await self._exchange(
                    connection, request, head, body, timeouts, reused=reused
                )
            except _Stale:
                await self._discard(connection)
                if replayable:
                    continue  # once more, on a new connection (it is never `reused`)
                raise httpx.RemoteProtocolError(
                    "the server closed a kept-alive connection before answering"
                ) from None
            except BaseException:
                await self._discard(connection)
                raise
            asked_close = "close" in request.headers.get("connection", "").lower()
            stream = _Body(
                self, connection, response, timeouts.get("read"), reusable=not asked_close
            )
            return httpx.Response(
                response.status,
                headers=response.headers,
                stream=stream,
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason},
            )

    async def aclose(self) -> None:
        self._closed = True
        connections, self._open = list(self._open), set()
        self._idle.clear()
        for connection in connections:
            await trio.aclose_forcefully(connection.stream)

    # -- connections ----------------------------------------------------------------------

    def _take(self, origin: Origin) -> tuple[_Connection | None, bool]:
        idle = self._idle.get(origin)
        now = trio.current_time()
        while idle:
            connection = idle.pop()
            if now - connection.idle_since <= KEEPALIVE_EXPIRY and not connection.readable():
                return connection, True
            self._drop(connection)
        return None, False

    def _release(self, connection: _Connection) -> None:
        if self._closed:
            self._drop(connection)
            return
        idle = self._idle.setdefault(connection.origin, [])
        connection.idle_since = trio.current_time()
        idle.append(connection)
        while len(idle) > MAX_IDLE_PER_ORIGIN:
            self._drop(idle.pop(0))

    def _drop(self, connection: _Connection) -> None:
        """Close an idle connection at once (a plain close; nothing is waiting on it)."""
        self._open.discard(connection)
        connection.socket.close()

    async def _discard(self, connection: _Connection) -> None:
        self._open.discard(connection)
        await trio.aclose_forcefully(connection.stream)

    async def _connect(self, origin: Origin, limit: float | None) -> _Connection:
        scheme, host, port = origin
        tcp: trio.SocketStream | None = None
        try:
            with trio.fail_after(_no_limit(limit)):
                tcp = await trio.open_tcp_stream(host, port)
                stream: trio.abc.Stream = tcp
                if scheme == "https":
                    tls = trio.SSLStream(
                        tcp, self._tls(), server_hostname=host, https_compatible=True
                    )
                    await tls.do_handshake()
                    stream = tls
        except BaseException as exc:
            if tcp is not None:
                await trio.aclose_forcefully(tcp)
            if isinstance(exc, trio.TooSlowError):
                raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
            if isinstance(exc, trio.BrokenResourceError):
                reason = exc.__cause__ or exc
                raise httpx.ConnectError(
                    f"TLS handshake with {host}:{port} failed: {reason}"
                ) from None
            if isinstance(exc, OSError):
                raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from None
            raise
        connection = _Connection(origin, stream, tcp.socket)
        self._open.add(connection)
        return connection

    async def _exchange(
        self,
        connection: _Connection,
        request: httpx.Request,
        head: bytes,
        body: list[bytes],
        timeouts: dict[str, float | None],
        *,
        reused: bool,
    ) -> _Response:
        """Send the request and read up to the end of the response head."""
        try:
            await _send(connection, [head, *body], timeouts.get("write"))
        except httpx.WriteError:
            if reused:
                raise _Stale from None
            raise
        response = _Response(head_request=request.method == "HEAD")
        received = False
        while not response.headers_done:
            try:
                data = await _receive(connection, timeouts.get("read"))
            except httpx.ReadError:
                if reused and not received:
                    raise _Stale from None
                raise
            if not data:
                if reused and not received:
                    raise _Stale
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without answering"
                )
            received = True
            response.feed(data)
        return response


def _no_limit(timeout: float | None) -> float:
    return float("inf") if timeout is None else timeout


def _request_head(request: httpx.Request) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    for name, value in request.headers.raw:
        if any(bad in name or bad in value for bad in _FORBIDDEN_IN_HEADERS) or b":" in name:
            raise httpx.LocalProtocolError(f"invalid header {name!r}")
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


async def _request_body(request: httpx.Request) -> list[bytes]:
    """The body as it goes on the wire (chunked framing added when the headers say so)."""
    pieces: list[bytes] = []
    stream: Any = request.stream
    async for piece in stream:
        if piece:
            pieces.append(piece)
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        framed = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]
        return [*framed, b"0\r\n\r\n"]
    return pieces


async def _send(connection: _Connection, pieces: list[bytes], limit: float | None) -> None:
    data = b"".join(pieces)
    try:
        with trio.fail_after(_no_limit(limit)):
            await connection.stream.send_all(data)
    except trio.TooSlowError:
        raise httpx.WriteTimeout("sending the request timed out") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise httpx.WriteError(f"sending the request failed: {exc}") from None


async def _receive(connection: _Connection, limit: float | None) -> bytes | bytearray:
    with trio.move_on_after(_no_limit(limit)):
        try:
            return await connection.stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise httpx.ReadError(f"reading the response failed: {exc}") from None
    raise httpx.ReadTimeout("no bytes from the server within the read timeout")
