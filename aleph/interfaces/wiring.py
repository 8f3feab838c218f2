"""Building the bridge from the configuration (imported only when a bot is enabled).

:func:`build_bridge` makes the :class:`~aleph.interfaces.router.InboundRouter`
with each platform's rules and limits, and a supervised adapter for every
enabled bot. Importing this module loads trio-asyncio (first, see
:mod:`aleph.interfaces.bridge`); each bot library is imported only when its
bot is enabled. A missing token is not fatal to the daemon: that bot is
reported as failing in the health section, like a rejected one.
"""

from __future__ import annotations

from pathlib import Path

from aleph.interfaces.bridge import BotAdapter, BotBridge  # isort: skip  (trio_asyncio first)

from aleph.config import Config, DiscordConfig, TelegramConfig
from aleph.interfaces.formatting import DISCORD_LIMIT, TELEGRAM_LIMIT, utf16_len
from aleph.interfaces.router import ChatSettings, InboundRouter
from aleph.interfaces.routing import AccessPolicy
from aleph.security.pairing import PairingStore
from aleph.sessions import SessionHub

__all__ = ["MissingToken", "build_bridge", "resolve_token"]

DISCORD_FENCE_ROOM = 8  # the adapter may close an open code fence: "\n```"


class MissingToken(Exception):
    """A bot is enabled but has no token."""


def resolve_token(section: str, token: str, token_file: str) -> str:
    """The bot token: from the environment/credentials (`token`), else `token_file`."""
    if token.strip():
        return token.strip()
    if token_file:
        try:
            return Path(token_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise MissingToken(f"{section}.token_file: cannot read it: {exc.strerror}") from None
    env = f"ALEPH_{section.upper()}__TOKEN"
    raise MissingToken(f"{section} is enabled but has no token: set {env} or {section}.token_file")


def _policy(section: TelegramConfig | DiscordConfig) -> AccessPolicy:
    return AccessPolicy(
        dm_policy=section.dm_policy,
        group_policy=section.group_policy,
        allow_users=frozenset(section.allow_users),
        allow_chats=frozenset(section.allow_chats),
        require_mention=section.require_mention,
        group_sessions=section.group_sessions,
    )


class _Unconfigured:
    """Stands in for a bot without a token: fails at once, so it is reported."""

    def __init__(self, name: str, problem: str) -> None:
        self.name, self.problem = name, problem

    async def run(self, *args: object, **kwargs: object) -> None:
        raise MissingToken(self.problem)


def _telegram(config: Config) -> BotAdapter:
    from aleph.interfaces.telegram_bot import TelegramBotHandler

    section = config.telegram
    try:
        token = resolve_token("telegram", section.token, section.token_file)
    except MissingToken as exc:
        return _Unconfigured("telegram", str(exc))
    return TelegramBotHandler(
        token,
        base_url=section.base_url,
        base_file_url=section.base_file_url,
        max_attachment_bytes=config.media.max_attachment_bytes,
        poll_timeout=section.poll_timeout,
        fetch_unaddressed=not section.require_mention,
    )


def _discord(config: Config) -> BotAdapter:
    from aleph.interfaces.discord_bot import DiscordChannelManager

    section = config.discord
    try:
        token = resolve_token("discord", section.token, section.token_file)
    except MissingToken as exc:
        return _Unconfigured("discord", str(exc))
    return DiscordChannelManager(
        token,
        max_attachment_bytes=config.media.max_attachment_bytes,
        message_content_intent=section.message_content_intent,
        sync_commands=section.sync_commands,
        fetch_unaddressed=not section.require_mention,
    )


def build_bridge(config: Config, hub: SessionHub, pairing: PairingStore | None) -> BotBridge:
    """The bridge with a supervised adapter for each enabled bot (not started)."""
    settings: dict[str, ChatSettings] = {}
    if config.telegram.enabled:
        tg = config.telegram
        settings["telegram"] = ChatSettings(
            _policy(tg), TELEGRAM_LIMIT, utf16_len, tg.edit_interval, tg.group_edit_interval
        )
    if config.discord.enabled:
        dc = config.discord
        settings["discord"] = ChatSettings(
            _policy(dc), DISCORD_LIMIT - DISCORD_FENCE_ROOM, len, dc.edit_interval, dc.edit_interval
        )
    router = InboundRouter(
        hub, pairing, settings, {}, user_per_minute=config.limits.user_messages_per_minute
    )
    bridge = BotBridge(router)
    if config.telegram.enabled:
        bridge.add("telegram", lambda: _telegram(config))
    if config.discord.enabled:
        bridge.add("discord", lambda: _discord(config))
    return bridge
