"""What the TUI knows of one session: its loaded transcript, live answer and tools.

:class:`SessionModel` is plain state (no I/O, no Textual): history pages go
in with :meth:`~SessionModel.load_page`, ``session.event`` params with
:meth:`~SessionModel.apply`, and the widgets read it. The transcript only
grows at either end (older pages in front, new messages at the back), so a
view can mount just what is new: :attr:`~SessionModel.front` and
:attr:`~SessionModel.back` count the entries added at each end since the
last :attr:`~SessionModel.generation` (which changes when the transcript is
replaced: a reset, a clear, a reload).

Messages are keyed by message id, so a message that comes both in a history
page and as an event is shown once. A run's streamed text is held as a list
of chunks (append-only, joined only when the view asks) until its
``message.assistant`` replaces it.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

__all__ = ["Entry", "LiveAnswer", "SessionModel", "ToolCall"]

Kind = Literal["user", "assistant", "tool", "notice"]


@attrs.define(eq=False)
class Entry:
    """One finished item of the transcript."""

    kind: Kind
    text: str
    message_id: str | None = None
    run_id: str | None = None


@attrs.define(eq=False)
class LiveAnswer:
    """The answer a run is streaming; `chunks` only grows."""

    run_id: str
    started: float
    chunks: list[str] = attrs.Factory(list)
    size: int = 0  # characters received
    deltas: int = 0  # run.delta events received (about one token each)

    def add(self, text: str) -> None:
        self.chunks.append(text)
        self.size += len(text)
        self.deltas += 1

    @property
    def text(self) -> str:
        if len(self.chunks) > 1:  # join once, keep one chunk
            self.chunks[:] = ["".join(self.chunks)]
        return self.chunks[0] if self.chunks else ""


@attrs.define(eq=False)
class ToolCall:
    """A tool call of a run, as tool.started / tool.finished tell it."""

    call_id: str
    name: str
    arguments: Any = None
    result: Any = None
    error: str | None = None
    finished: bool = False


@attrs.define(eq=False)
class SessionModel:
    """One session as the TUI shows it (see the module doc)."""

    session_id: str
    title: str = ""
    type: str = "owner"
    updated_at: str = ""
    message_count: int = 0
    entries: list[Entry] = attrs.Factory(list)
    live: LiveAnswer | None = None
    tools: list[ToolCall] = attrs.Factory(list)
    loaded: bool = False  # the latest page has been loaded
    has_more: bool = False  # older messages remain on the server
    unread: int = 0
    generation: int = 0
    front: int = 0
    back: int = 0
    run_id: str | None = None  # the run in progress, if any
    run_started: float = 0.0
    run_deltas: int = 0  # run.delta events of the run in progress (about a token each)
    last_rate: float | None = None  # tokens per second of the last finished run
    _ids: set[str] = attrs.field(factory=set, init=False)
    _tools: dict[str, ToolCall] = attrs.field(factory=dict, init=False)

    @property
    def label(self) -> str:
        return self.title or self.session_id

    @property
    def oldest_id(self) -> str | None:
        for entry in self.entries:
            if entry.message_id is not None:
                return entry.message_id
        return None

    def describe(self, info: dict[str, Any]) -> None:
        """Take in one item of session.list."""
        self.title = str(info.get("title") or "")
        self.type = str(info.get("type") or "owner")
        self.updated_at = str(info.get("updated_at") or "")
        self.message_count = int(info.get("message_count") or 0)

    def reset(self) -> None:
        """Forget the transcript (the events could not be resumed); reload it."""
        self.entries, self._ids, self.live, self.run_id = [], set(), None, None
        self.tools, self._tools = [], {}
        self.loaded, self.has_more = False, False
        self._new_generation()

    def _new_generation(self) -> None:
        self.generation += 1
        self.front = self.back = 0

    def load_page(self, messages: list[dict[str, Any]], has_more: bool, *, older: bool) -> int:
        """Put a session.history page in: the latest (older=False) or the one before."""
        fresh = [_entry(m) for m in messages if str(m.get("id")) not in self._ids]
        self._ids.update(e.message_id for e in fresh if e.message_id)
        if older:
            self.entries[:0] = fresh
            self.front += len(fresh)
        else:
            # The latest page: anything that arrived as events meanwhile is newer.
            self.entries[:0] = fresh
            self._new_generation()
            self.loaded = True
        for message in messages:
            if message.get("role") == "tool":
                meta = message.get("meta") or {}
                call_id = str(meta.get("call_id") or message.get("id"))
                if call_id not in self._tools:
                    name = str(meta.get("name", "?"))
                    call = ToolCall(call_id, name, None, message.get("text"), meta.get("error"))
                    call.finished = True
                    self._add_tool(call)
        self.has_more = has_more
        return len(fresh)

    def _append(self, entry: Entry) -> None:
        if entry.message_id is not None:
            if entry.message_id in self._ids:
                return
            self._ids.add(entry.message_id)
        self.entries.append(entry)
        self.back += 1
        self.message_count += entry.kind in ("user", "assistant", "tool")

    def _add_tool(self, call: ToolCall) -> None:
        self._tools[call.call_id] = call
        self.tools.append(call)
        del self.tools[:-200]  # the pane shows the latest; keep memory bounded

    def apply(self, event: dict[str, Any], now: float) -> bool:
        """Apply one session.event; True if it is news a reader would want (unread)."""
        kind, run_id = str(event.get("type")), event.get("run_id")
        data: dict[str, Any] = event.get("data") or {}
        if kind.startswith("message.") and event.get("ts"):
            self.updated_at = str(event["ts"])  # the same ISO format as session.list's
        if kind == "message.user":
            self._append(Entry("user", str(data.get("text", "")), data.get("message_id"), run_id))
        elif kind == "run.started":
            self.run_id, self.run_started, self.run_deltas = run_id, now, 0
        elif kind == "run.delta":
            if self.live is None or self.live.run_id != run_id:
                if self.run_id != run_id:  # resumed in the middle of a run
                    self.run_id, self.run_started, self.run_deltas = run_id, now, 0
                self.live = LiveAnswer(str(run_id), self.run_started)
            self.live.add(str(data.get("text", "")))
            self.run_deltas += 1
        elif kind == "message.assistant":
            if self.live is not None and self.live.run_id == run_id:
                self.live = None
            self._append(
                Entry("assistant", str(data.get("text", "")), data.get("message_id"), run_id)
            )
            return True
        elif kind == "tool.started":
            call_id = str(data.get("call_id"))
            self._add_tool(ToolCall(call_id, str(data.get("name", "?")), data.get("arguments")))
        elif kind == "tool.finished":
            call = self._tools.get(str(data.get("call_id")))
            if call is not None:
                call.result, call.error, call.finished = data.get("result"), data.get("error"), True
        elif kind in ("run.finished", "run.failed", "run.cancelled"):
            self._end_run(kind, run_id, data, now)
            return kind == "run.failed"
        elif kind == "session.cleared":
            self.entries, self._ids, self.live = [], set(), None
            self.tools, self._tools, self.message_count = [], {}, 0
            self._new_generation()
        return False

    def _end_run(self, kind: str, run_id: Any, data: dict[str, Any], now: float) -> None:
        live = self.live if self.live is not None and self.live.run_id == run_id else None
        if kind == "run.finished":
            if live is not None and live.text:  # an engine that sent no message.assistant
                self._append(Entry("assistant", live.text, None, run_id))
            tokens = (data.get("usage") or {}).get("output_tokens") or self.run_deltas
            if self.run_id == run_id and isinstance(tokens, int) and tokens > 0:
                self.last_rate = tokens / max(now - self.run_started, 1e-3)
        elif kind == "run.failed":
            self._append(Entry("notice", f"run failed: {data.get('error', '?')}", None, run_id))
        else:
            partial = live.text if live else ""
            reason = data.get("reason") or "cancelled"
            if partial:
                self._append(Entry("assistant", partial, None, run_id))
            self._append(Entry("notice", f"run cancelled ({reason})", None, run_id))
        if live is not None:
            self.live = None
        if self.run_id == run_id:
            self.run_id = None

    def rate(self, now: float) -> float | None:
        """Tokens per second of the answer streaming now, else of the last run."""
        if self.run_id is None or not self.run_deltas:
            return self.last_rate
        elapsed = now - self.run_started
        return self.run_deltas / elapsed if elapsed > 0.05 else None


def _entry(message: dict[str, Any]) -> Entry:
    role = str(message.get("role"))
    kind: Kind = role if role in ("user", "assistant", "tool") else "notice"  # type: ignore[assignment]
    return Entry(kind, str(message.get("text", "")), str(message.get("id")), message.get("run_id"))
