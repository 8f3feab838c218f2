"""Interfaces: the Telegram and Discord bots (and the terminal UI in ``tui``).

The bots live behind one trio-asyncio bridge (:mod:`aleph.interfaces.bridge`,
built from the config by :mod:`aleph.interfaces.wiring`); they reach the core
only through the :class:`~aleph.interfaces.router.InboundRouter`. This package
imports nothing itself: asyncio, discord and telegram are loaded only when a
bot is enabled, by the daemon importing ``aleph.interfaces.wiring``.
"""
