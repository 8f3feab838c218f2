"""A sans-IO decoder for server-sent events (the WHATWG EventSource format).

:class:`SseDecoder` takes the body of an ``text/event-stream`` response in
whatever pieces the network delivers (a line, a UTF-8 character or a CRLF
may be split anywhere) and gives back complete :class:`SseEvent` objects.
Comment lines (``: keep-alive``) and the ``id``/``retry`` fields are dropped;
several ``data:`` lines of one event are joined with newlines. It never
raises on odd input: deciding that a stream is garbage is the provider's job
(:attr:`SseDecoder.saw_field` says whether anything SSE-like arrived).
"""

from __future__ import annotations

import attrs

__all__ = ["SseDecoder", "SseEvent"]


@attrs.frozen
class SseEvent:
    event: str  # "message" unless the server named it
    data: str


@attrs.define(eq=False)
class SseDecoder:
    _buffer: bytearray = attrs.Factory(bytearray)
    _event: str = ""
    _data: list[str] = attrs.Factory(list)
    _pending_cr: bool = False
    saw_field: bool = False  # at least one `data:` or `event:` line
    unknown_lines: int = 0  # non-empty lines that are no SSE field at all

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Decode a piece of the body; returns the events it completed."""
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two pieces
        self._pending_cr = False
        events: list[SseEvent] = []
        if b"\r" not in chunk:
            # The usual case, lines ending in LF alone: split in one go. (The buffer
            # never holds a CR: a CR always ends a line in the general path below.)
            lines = chunk.split(b"\n")
            if self._buffer:
                lines[0] = bytes(self._buffer) + lines[0]
                self._buffer.clear()
            tail = lines.pop()  # the unfinished last line (b"" after a final LF)
            for raw in lines:
                self._line(raw, events)
            self._buffer += tail
            return events
        self._buffer += chunk
        buffer = self._buffer
        start = 0
        length = len(buffer)
        while start < length:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf >= 0 else length)
            if cr >= 0:
                end, nxt = cr, cr + 1
                if nxt < length and buffer[nxt] == 0x0A:
                    nxt += 1
                elif nxt == length:
                    self._pending_cr = True
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            self._line(bytes(buffer[start:end]), events)
            start = nxt
        del buffer[:start]
        return events

    def close(self) -> list[SseEvent]:
        """The end of the body: a last event without its blank line is dropped, as
        the specification says, but a trailing line is still read."""
        events: list[SseEvent] = []
        if self._buffer:
            self._line(bytes(self._buffer), events)
            self._buffer.clear()
        return events

    def _line(self, raw: bytes, events: list[SseEvent]) -> None:
        if raw.startswith(b"data: "):  # the common case first
            self.saw_field = True
            self._data.append(raw[6:].decode("utf-8", "replace"))
            return
        if not raw:
            if self._data:
                events.append(SseEvent(self._event or "message", "\n".join(self._data)))
            self._event, self._data = "", []
            return
        line = raw.decode("utf-8", "replace")
        if line.startswith(":"):
            return
        name, colon, value = line.partition(":")
        if not colon:
            value = ""
        elif value.startswith(" "):
            value = value[1:]
        if name == "data":
            self.saw_field = True
            self._data.append(value)
        elif name == "event":
            self.saw_field = True
            self._event = value
        elif name not in ("id", "retry"):
            self.unknown_lines += 1
