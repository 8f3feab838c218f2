"""The HTTP half every real provider shares: one request, retries, a streamed body.

:class:`HttpProvider` owns one ``httpx.AsyncClient`` (opened on first use,
closed by :meth:`HttpProvider.aclose`). :meth:`HttpProvider.complete` POSTs
the JSON body that the subclass builds and feeds the ``text/event-stream``
answer through an :class:`~aleph.engine.providers.sse.SseDecoder` into the
subclass's :class:`StreamParser`, which turns events into text deltas and,
at the end, a :class:`~aleph.engine.conversation.Turn`.

How it fails (always :class:`~aleph.engine.api.EngineError`, code -32007,
data ``{"provider", "status"?}``, never the API key):

- 401/403: the key was refused; 404: the model (or the base_url) is wrong;
  other 4xx: the request was refused, with the server's own message.
- 429 and 5xx (and a refused connection) are retried up to
  ``provider.max_retries`` times, waiting ``Retry-After`` when the server
  gives one (unless it is longer than ``provider.max_retry_delay``) and
  ``retry_base_delay * 2**attempt`` otherwise. Nothing is retried once the
  answer has started to stream.
- No response headers, or no new bytes, within ``request_timeout``: timeout.
- A body that is not an event stream, an event that is not JSON, a stream
  that ends before the model said it was done: the stream is broken.
"""

from __future__ import annotations

import abc
import contextlib
import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Protocol

import attrs
import httpx
import orjson
import trio

from aleph.config import ProviderConfig
from aleph.engine.api import EngineError
from aleph.engine.conversation import OnText, ProviderRequest, Turn
from aleph.engine.providers.sse import SseDecoder, SseEvent
from aleph.engine.providers.transport import Http1Transport

__all__ = ["HttpProvider", "StreamBroken", "StreamParser", "pump", "retry_delay"]

log = logging.getLogger(__name__)

ERROR_BODY_LIMIT = 16 * 1024


class StreamBroken(Exception):
    """The event stream is not what the API promises; the message says how."""


class StreamParser(Protocol):
    def feed(self, event: SseEvent) -> list[str]:
        """Take one event; return the text deltas it carries. Raises StreamBroken."""
        ...

    def finish(self) -> Turn:
        """The complete turn; StreamBroken if the stream ended too early."""
        ...


def retry_delay(
    attempt: int, retry_after: str | None, base: float, cap: float, now: float | None = None
) -> float | None:
    """Seconds to wait before retry number `attempt` (0-based); None: do not retry.

    `retry_after` is the Retry-After header: delta-seconds or an HTTP date.
    A server asking for more than `cap` seconds is not waited for.
    """
    if retry_after:
        value = retry_after.strip()
        try:
            delay = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value).timestamp()
            except (TypeError, ValueError, IndexError):
                when = None
            reference = time.time() if now is None else now
            delay = max(0.0, float(when) - reference) if when else -1.0
        if delay >= 0 and math.isfinite(delay):
            return delay if delay <= cap else None
    return float(min(cap, base * (2**attempt)))


async def pump(response: httpx.Response, handle: Callable[[bytes], Awaitable[bool]]) -> None:
    """Feed the body to `handle` piece by piece until it returns False or the body ends.

    httpx reads a body through a chain of async generators. Leaving the loop
    early, or raising in its body (including Cancelled while `handle` waits),
    would abandon the inner generators, which Trio then reports as garbage
    collected unfinished. So a stop is delivered the other way: a cancel scope
    around the loop is cancelled, the innermost read raises Cancelled through
    the whole chain, and then the caller gets `handle`'s exception, if any.
    """
    failure: BaseException | None = None
    with trio.CancelScope() as stop:
        async for piece in response.aiter_bytes():
            if stop.cancel_called:
                continue  # bytes already read; the cancel lands at the next read
            try:
                more = await handle(piece)
            except BaseException as exc:  # re-raised below, Cancelled included
                failure, more = exc, False
            if not more:
                stop.cancel()
    if failure is not None:
        raise failure


def _server_message(body: bytes, secret: str) -> str:
    """The human part of an error body (OpenAI, Ollama and Anthropic shapes)."""
    message: Any = None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("message"))
        message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str):
        message = body.decode("utf-8", "replace") if body and data is None else ""
    text = " ".join(str(message).split())[:300]
    if secret:
        text = text.replace(secret, "***")
    return text


@attrs.define(eq=False)
class HttpProvider(abc.ABC):
    """A streaming chat API over HTTP; subclasses say what to send and how to read it."""

    kind: ClassVar[str] = "http"
    default_base_url: ClassVar[str] = ""
    config: ProviderConfig
    environ: Mapping[str, str] = attrs.field(repr=False, factory=dict)
    api_key: str = attrs.field(init=False, repr=False, default="")
    _client: httpx.AsyncClient | None = attrs.field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        # The variable named by api_key_env first; else the secret provider.api_key
        # (ALEPH_PROVIDER__API_KEY, or the systemd credential provider_api_key).
        if self.config.api_key_env:
            self.api_key = self.environ.get(self.config.api_key_env, "")
        self.api_key = self.api_key or self.config.api_key

    # -- what subclasses provide -----------------------------------------------

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def accepts_images(self) -> bool:
        return self.config.accepts_images

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.default_base_url).rstrip("/")

    @abc.abstractmethod
    def url(self) -> str:
        """Provided by each API's subclass."""

    @abc.abstractmethod
    def headers(self) -> dict[str, str]:
        """Provided by each API's subclass."""

    @abc.abstractmethod
    def body(self, request: ProviderRequest) -> dict[str, Any]:
        """Provided by each API's subclass."""

    @abc.abstractmethod
    def parser(self) -> StreamParser:
        """Provided by each API's subclass."""

    # -- the request -------------------------------------------------------------

    def error(self, message: str, status: int | None = None) -> EngineError:
        data: dict[str, Any] = {"provider": self.kind}
        if status is not None:
            data["status"] = status
        return EngineError(message, code=-32007, data=data)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = self.config.request_timeout
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(timeout), trust_env=False, transport=Http1Transport()
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with trio.CancelScope(shield=True):
                await client.aclose()

    async def complete(self, request: ProviderRequest, on_text: OnText) -> Turn:
        if self.config.api_key_env and not self.api_key:  # named, but not there
            raise self.error(
                f"no API key: the environment variable {self.config.api_key_env} "
                "(named by provider.api_key_env) is not set"
            )
        content = orjson.dumps(self.body(request))
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        headers.update(self.headers())
        max_retries = self.config.max_retries
        for attempt in range(max_retries + 1):
            response = await self._open(content, headers, last=attempt == max_retries)
            if response is None:  # connection refused: retry
                await trio.sleep(min(self.config.max_retry_delay, self._backoff(attempt)))
                continue
            try:
                if response.status_code == 200:
                    return await self._stream(response, on_text)
                delay = await self._failed(response, attempt, max_retries)
            finally:
                with trio.CancelScope(shield=True):
                    await response.aclose()
            log.info(
                "%s: HTTP %s, retry %d/%d in %.2f s",
                self.kind,
                response.status_code,
                attempt + 1,
                max_retries,
                delay,
            )
            await trio.sleep(delay)
        raise AssertionError("unreachable: the last attempt raises")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return float(self.config.retry_base_delay * (2**attempt))

    async def _open(
        self, content: bytes, headers: dict[str, str], *, last: bool
    ) -> httpx.Response | None:
        """The response, its headers read; None for a refused connection worth retrying."""
        client = self._http()
        timeout = self.config.request_timeout
        request = client.build_request("POST", self.url(), content=content, headers=headers)
        try:
            with trio.fail_after(timeout):
                return await client.send(request, stream=True)
        except (trio.TooSlowError, httpx.TimeoutException):
            raise self.error(
                f"the provider at {self.base_url} did not answer within {timeout:g} s "
                "(provider.request_timeout)"
            ) from None
        except httpx.ConnectError as exc:
            if last:
                raise self.error(f"cannot reach the provider at {self.base_url}: {exc}") from None
            return None
        except httpx.HTTPError as exc:
            raise self.error(f"request to the provider failed: {type(exc).__name__}") from None

    async def _failed(self, response: httpx.Response, attempt: int, max_retries: int) -> float:
        """The delay before a retry; raises the run's error when there is none."""
        status = response.status_code
        body = b""
        with trio.move_on_after(min(self.config.request_timeout, 10.0)):

            async def collect(piece: bytes) -> bool:
                nonlocal body
                body += piece
                return len(body) <= ERROR_BODY_LIMIT

            with contextlib.suppress(httpx.HTTPError):
                await pump(response, collect)
        detail = _server_message(body, self.api_key)
        suffix = f": {detail}" if detail else ""
        if status in (401, 403):
            if self.config.api_key_env and self.environ.get(self.config.api_key_env):
                where = f"the key in ${self.config.api_key_env}"
            elif self.api_key:
                where = "the key in provider.api_key"
            else:
                where = "no key was sent (set provider.api_key_env or provider.api_key)"
            raise self.error(
                f"the provider refused the API key (HTTP {status}): {where}{suffix}", status
            )
        if status == 404:
            raise self.error(
                f'model "{self.model}" not found, or provider.base_url {self.base_url} '
                f"is not the API's root (HTTP 404){suffix}",
                status,
            )
        if status == 429 or status >= 500:
            retry_after = response.headers.get("retry-after")
            delay = retry_delay(
                attempt, retry_after, self.config.retry_base_delay, self.config.max_retry_delay
            )
            what = "rate limited by the provider" if status == 429 else "provider server error"
            if delay is None:
                raise self.error(
                    f"{what} (HTTP {status}); it asks to wait {retry_after} s, more than "
                    f"provider.max_retry_delay{suffix}",
                    status,
                )
            if attempt >= max_retries:
                raise self.error(
                    f"{what} (HTTP {status}), still failing after {attempt + 1} attempts{suffix}",
                    status,
                )
            return delay
        raise self.error(f"the provider refused the request (HTTP {status}){suffix}", status)

    async def _stream(self, response: httpx.Response, on_text: OnText) -> Turn:
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            raise self.error(
                "the provider did not answer with a stream of server-sent events "
                f"(content-type {content_type or 'missing'!r})",
                200,
            )
        decoder = SseDecoder()
        parser = self.parser()
        timeout = self.config.request_timeout
        try:

            async def handle(chunk: bytes) -> bool:
                # Everything one network read brought is handed on as one delta,
                # including what came before an event that breaks the stream.
                deltas: list[str] = []
                try:
                    for event in decoder.feed(chunk):
                        deltas += parser.feed(event)
                finally:
                    if deltas:
                        await on_text(deltas[0] if len(deltas) == 1 else "".join(deltas))
                if decoder.unknown_lines and not decoder.saw_field:
                    raise StreamBroken("the answer is not a server-sent event stream")
                return True

            # The transport's read timeout is request_timeout: no new bytes for that
            # long ends the stream with httpx.ReadTimeout (below).
            await pump(response, handle)
            for event in decoder.close():
                for delta in parser.feed(event):
                    await on_text(delta)
            return parser.finish()
        except StreamBroken as exc:
            raise self.error(f"broken stream from the provider: {exc}", 200) from None
        except httpx.TimeoutException:
            raise self.error(
                f"the provider stopped sending for {timeout:g} s in the middle of an answer "
                "(provider.request_timeout)"
            ) from None
        except httpx.HTTPError as exc:
            raise self.error(
                f"the stream from the provider was cut in the middle of the answer "
                f"({type(exc).__name__})",
                200,
            ) from None
