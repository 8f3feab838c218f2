"""The session.* JSON-RPC methods: params, validation at the edge, and the hub.

Each handler structures its params (strict attrs classes: a wrong type is
-32602 with readable lines), lets the :class:`SessionHub` check access and
do the work, and shapes the result as PROTOCOL.md says. Errors are the
protocol's: -32003 for a session the caller may not see, -32002 for what its
role may not do, -32004/-32006/-32010/-32011 from the hub.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from aleph.engine.api import Attachment
from aleph.engine.media import MediaProcessor
from aleph.gateway.dispatch import CallContext, MethodRegistry
from aleph.protocol.errors import InvalidParams
from aleph.sessions.hub import SessionHub
from aleph.sessions.model import iso_utc

__all__ = ["register_session_methods"]

MAX_TEXT_CHARS = 100_000
MAX_HISTORY_PAGE = 500


@attrs.frozen
class CreateParams:
    type: Literal["owner", "guest"] | None = None
    title: str = ""
    system_prompt: str | None = None
    model: str | None = None


@attrs.frozen
class SessionParams:
    session_id: str


@attrs.frozen
class SubscribeParams:
    session_id: str
    after_seq: int | None = None
    epoch: str | None = None


@attrs.frozen
class AttachmentParams:
    name: str
    mime_type: str
    data: str


@attrs.frozen
class SendParams:
    session_id: str
    text: str
    attachments: list[AttachmentParams] = attrs.Factory(list)
    idempotency_key: str | None = None


@attrs.frozen
class CancelParams:
    session_id: str
    run_id: str | None = None


@attrs.frozen
class HistoryParams:
    session_id: str
    limit: int = 50
    before: str | None = None


def _attachments(media: MediaProcessor, items: list[AttachmentParams]) -> tuple[Attachment, ...]:
    """Decode and check the attachments up front, with the engine's limits and
    type checks ([media] in the config), so a bad one is refused at send."""
    found = tuple(media.decode(attrs.asdict(item)) for item in items)
    media.check_all(found)
    return found


def _message_id(value: str | None) -> int | None:
    if value is None:
        return None
    digits = value.removeprefix("m_")
    if not digits.isdigit() or len(digits) > 18:
        raise InvalidParams('before: expected a message id such as "m_42"')
    return int(digits)


def register_session_methods(
    registry: MethodRegistry, hub: SessionHub, media: MediaProcessor
) -> None:
    """Add session.create ... session.delete to the gateway's registry; `media`
    checks attachments."""

    async def create(ctx: CallContext, params: CreateParams) -> dict[str, Any]:
        session = await hub.create(
            ctx.principal,
            params.type,
            title=params.title[:200],
            system_prompt=params.system_prompt,
            model=params.model,
        )
        await hub.subscribe(ctx.principal, ctx.client, session.id)
        record = session.record
        return {
            "session_id": record.id,
            "type": record.type,
            "created_at": iso_utc(record.created_at),
        }

    async def list_sessions(ctx: CallContext, params: None) -> dict[str, Any]:
        return {"sessions": [hub.describe(s) for s in hub.visible(ctx.principal)]}

    async def subscribe(ctx: CallContext, params: SubscribeParams) -> dict[str, Any]:
        if params.after_seq is not None and params.after_seq < 0:
            raise InvalidParams("after_seq: must be at least 0")
        return await hub.subscribe(
            ctx.principal, ctx.client, params.session_id, params.after_seq, params.epoch
        )

    async def unsubscribe(ctx: CallContext, params: SessionParams) -> dict[str, Any]:
        await hub.unsubscribe(ctx.principal, ctx.client, params.session_id)
        return {}

    async def send(ctx: CallContext, params: SendParams) -> dict[str, Any]:
        if len(params.text) > MAX_TEXT_CHARS:
            raise InvalidParams(f"text: at most {MAX_TEXT_CHARS} characters")
        if params.idempotency_key is not None and len(params.idempotency_key) > 200:
            raise InvalidParams("idempotency_key: at most 200 characters")
        return await hub.send(
            ctx.principal,
            params.session_id,
            params.text,
            attachments=_attachments(media, params.attachments),
            idempotency_key=params.idempotency_key,
        )

    async def cancel(ctx: CallContext, params: CancelParams) -> dict[str, Any]:
        return {"cancelled": await hub.cancel(ctx.principal, params.session_id, params.run_id)}

    async def history(ctx: CallContext, params: HistoryParams) -> dict[str, Any]:
        if not 1 <= params.limit <= MAX_HISTORY_PAGE:
            raise InvalidParams(f"limit: between 1 and {MAX_HISTORY_PAGE}")
        before = _message_id(params.before)
        return await hub.history(ctx.principal, params.session_id, params.limit, before)

    async def clear(ctx: CallContext, params: SessionParams) -> dict[str, Any]:
        return {"cleared": await hub.clear(ctx.principal, params.session_id)}

    async def delete(ctx: CallContext, params: SessionParams) -> dict[str, Any]:
        await hub.delete(ctx.principal, params.session_id)
        return {}

    registry.add("session.create", create, params=CreateParams)
    registry.add("session.list", list_sessions)
    registry.add("session.subscribe", subscribe, params=SubscribeParams)
    registry.add("session.unsubscribe", unsubscribe, params=SessionParams)
    registry.add("session.send", send, params=SendParams)
    registry.add("session.cancel", cancel, params=CancelParams)
    registry.add("session.history", history, params=HistoryParams)
    registry.add("session.clear", clear, params=SessionParams)
    registry.add("session.delete", delete, params=SessionParams)
