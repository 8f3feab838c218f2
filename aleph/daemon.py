"""The daemon: one Trio nursery tree that owns every long-lived task.

::

    Daemon.run
    ├── signals      SIGTERM/SIGINT -> graceful stop (twice: stop now); SIGHUP -> reload
    ├── watchdog     WATCHDOG=1 every WATCHDOG_USEC/2 while the loop runs (if asked)
    └── resources    the engine's HTTP client: closed after the services stopped
        └── services started in order by _start_services; each returns by itself
            │        once gateway.stopping is set (bounded by shutdown_grace)
            ├── control     the control socket (listening before READY=1)
            ├── sessions    the session hub: one runner per active session
            ├── interfaces  Telegram and Discord on trio-asyncio (only when enabled)
            └── gateway     serve_gateway: WebSocket + HTTP probes, started last

The state store (one SQLite file, ``aleph.db`` in the state directory) is
opened before the services start and closed after they stop; each subsystem
adds its schema to :func:`migrations`.

Start-up: READY=1 is sent to systemd, and /readyz turns 200, only once every
service is listening. Stop: STOPPING=1, /readyz 503, listeners closed,
clients closed with 1001, then exit 0.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from pathlib import Path

import attrs
import trio

from aleph import __version__, systemd
from aleph.agents import AgentRegistry, register_agent_methods
from aleph.config import Config, ConfigError, load_config
from aleph.control import ControlServer, register_control_methods, serve_control
from aleph.control.methods import CLOSE_TOKEN_REVOKED
from aleph.engine.api import SessionType
from aleph.engine.loop import AgentEngine
from aleph.engine.tools.methods import register_tool_methods
from aleph.gateway import Gateway, register_gateway_methods, serve_gateway
from aleph.security.owner import OwnerTokenError, resolve_owner_token
from aleph.security.pairing import PAIRING_MIGRATIONS, PairingStore
from aleph.security.token_store import TOKEN_MIGRATIONS, TokenStore
from aleph.security.tokens import TokenRecord
from aleph.sessions import SendLimits, SessionHub, SessionStore, register_session_methods
from aleph.sessions import migrations as session_migrations
from aleph.storage import Database, Migration, StorageError

__all__ = ["Daemon", "main", "setup_logging"]

log = logging.getLogger("aleph.daemon")


def setup_logging(level: str) -> None:
    """One line per event on stderr; journald adds the time, a terminal gets it from us."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if sys.stderr.isatty():
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)


# Sections the daemon reads once, at start; a reload that changes them says so.
_READ_AT_START = (
    "storage",
    "provider",
    "thinker",
    "media",
    "tools",
    "agents",
    "telegram",
    "discord",
)


def migrations() -> list[Migration]:
    """Every subsystem's schema steps, applied when the store opens."""
    return [*TOKEN_MIGRATIONS, *PAIRING_MIGRATIONS, *session_migrations()]


@attrs.define(eq=False)
class Daemon:
    """Everything the running daemon holds, and how to reload and stop it."""

    config: Config
    config_path: Path | None
    gateway: Gateway = attrs.field(init=False)
    engine: AgentEngine = attrs.field(init=False)
    agents: AgentRegistry = attrs.field(init=False)
    db: Database | None = attrs.field(default=None, init=False)
    stop_requested: trio.Event = attrs.Factory(trio.Event)
    token_store: TokenStore | None = attrs.field(default=None, init=False)
    pairing: PairingStore | None = attrs.field(default=None, init=False)
    control: ControlServer | None = attrs.field(default=None, init=False)
    sessions: SessionHub | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.gateway = Gateway(self.config)
        register_gateway_methods(self.gateway.registry)
        self._setup_engine()
        self._load_owner_token(self.config)

    def _setup_engine(self) -> None:
        """The execution engine, its tools and the remote agents, with their methods."""
        self.engine = AgentEngine.from_config(self.config)
        self.agents = AgentRegistry(self.config.agents, self.engine.tools)
        register_tool_methods(self.gateway.registry, self.engine.tools)
        register_agent_methods(self.gateway.registry, self.agents)
        self.gateway.health_sections["engine"] = lambda: {
            **self.engine.health(),
            "agents": len(self.agents),
        }
        self.engine.tools.session_type_of = self._session_type

    def _session_type(self, session_id: str) -> SessionType | None:
        """For tool.call with a session_id: that session's type, if it exists."""
        session = self.sessions.sessions.get(session_id) if self.sessions else None
        return session.record.type if session is not None else None

    def _load_owner_token(self, config: Config) -> None:
        owner = resolve_owner_token(config, config.state_dir())
        self.gateway.tokens.remove("owner")
        self.gateway.tokens.add(owner.record)
        if owner.generated:
            log.info("generated an owner token in %s (mode 0600)", owner.path)
        if owner.path is not None:
            log.info("owner token: %s  (e.g. `cat %s`)", owner.source, owner.path)
        else:
            log.info("owner token: from %s", owner.source)

    def reload(self) -> bool:
        """Re-read the config file; keep the old config if the new one is bad."""
        try:
            config = load_config(self.config_path)
            self._load_owner_token(config)
        except (ConfigError, OwnerTokenError) as exc:
            log.error("reload refused, keeping the running config:\n%s", exc)
            return False
        restart = self.gateway.apply_config(config)
        restart += [
            f"[{section}]"
            for section in _READ_AT_START
            if getattr(config, section) != getattr(self.config, section)
        ]
        if config.control.socket != self.config.control.socket:
            restart.append("control.socket")
        if config.limits.event_retention != self.config.limits.event_retention:
            restart.append("limits.event_retention")
        if self.sessions is not None:
            limits = config.limits
            self.sessions.limits.session_per_minute = limits.session_messages_per_minute
            self.sessions.limits.user_per_minute = limits.user_messages_per_minute
            self.sessions.max_queued_runs = limits.max_queued_runs
            self.sessions.guest_ttl = limits.guest_session_ttl
            self.sessions.set_delta_interval(limits.delta_interval)
        for key in restart:
            log.warning("%s changed; it takes effect after a restart", key)
        self.config = config
        logging.getLogger().setLevel(config.daemon.log_level.upper())
        log.info("configuration reloaded")
        return True

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.reload()
                elif self.stop_requested.is_set():
                    log.warning("second stop signal: stopping now")
                    raise _StopNow()
                else:
                    log.info("%s received: stopping", signal.Signals(signum).name)
                    self.stop_requested.set()

    async def run(
        self,
        *,
        listeners: list[trio.SocketListener] | None = None,
        task_status: trio.TaskStatus[Gateway] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until a stop is requested, then stop gracefully."""
        self.db = await Database.open(self.config.state_dir() / "aleph.db", migrations())
        try:
            async with trio.open_nursery() as root:
                root.start_soon(self._watch_signals)
                # Resources outlive the services that use them: closed once they stopped.
                async with trio.open_nursery() as resources:
                    await resources.start(self.engine.serve)
                    async with trio.open_nursery() as services:
                        await self._start_services(services, listeners)
                        self.gateway.ready = True
                        for address in self.gateway.listen_addresses:
                            log.info("listening on %s", address)
                        systemd.notify("READY=1")
                        interval = systemd.watchdog_interval()
                        if interval is not None:
                            root.start_soon(_watchdog, interval)
                        task_status.started(self.gateway)
                        await self.stop_requested.wait()
                        systemd.notify("STOPPING=1")
                        self.gateway.draining = True
                        # Every service returns by itself once `stopping` is set; the
                        # deadline only bounds one that does not.
                        self.gateway.stopping.set()
                        grace = self.config.daemon.shutdown_grace + 5.0
                        services.cancel_scope.deadline = trio.current_time() + grace
                    resources.cancel_scope.cancel()
                root.cancel_scope.cancel()
        except* _StopNow:
            log.warning("stopped without waiting for clients")
        finally:
            with trio.CancelScope(shield=True):
                await self.db.aclose()
        log.info("stopped")

    async def _start_services(
        self, services: trio.Nursery, listeners: list[trio.SocketListener] | None
    ) -> None:
        """Start every long-lived service, in dependency order; each is listening when
        its `start` returns. The gateway goes last so that clients never reach a
        part that is not up yet."""
        await self._start_control(services)
        await self._start_sessions(services)
        if self.config.telegram.enabled or self.config.discord.enabled:
            await self._start_interfaces(services)
        await services.start(serve_gateway, self.gateway, listeners)

    async def _start_sessions(self, services: trio.Nursery) -> None:
        """The session hub, its session.* methods and its health section."""
        assert self.db is not None
        limits = self.config.limits
        self.sessions = SessionHub(
            SessionStore(self.db),
            self.engine,  # the real engine: echo, openai or anthropic per provider.kind
            SendLimits(limits.session_messages_per_minute, limits.user_messages_per_minute),
            max_queued_runs=limits.max_queued_runs,
            event_retention=limits.event_retention,
            delta_interval=limits.delta_interval,
            context_budget=self.config.thinker.context_budget,
            guest_ttl=limits.guest_session_ttl,
        )
        register_session_methods(self.gateway.registry, self.sessions, self.engine.media)
        self.gateway.health_sections["sessions"] = self.sessions.health
        grace = self.config.daemon.shutdown_grace
        await services.start(self.sessions.serve, self.gateway.stopping, grace)

    async def _start_interfaces(self, services: trio.Nursery) -> None:
        """The Telegram and Discord bots on one trio-asyncio loop, imported only when a
        bot is enabled. Their libraries (about 0.4 s and 35 MiB) load in a worker
        thread while the daemon starts, so they never delay READY; a bot that cannot
        log in is retried and reported, never fatal."""
        config = self.config
        loading = {
            name: {"state": "loading" if getattr(config, name).enabled else "disabled"}
            for name in ("telegram", "discord")
        }
        self.gateway.health_sections["interfaces"] = lambda: loading
        services.start_soon(self._run_interfaces, config)

    def _interfaces_failed(self, error: str) -> None:
        failed = {"state": "failed", "last_error": error}
        report = {
            name: failed if getattr(self.config, name).enabled else {"state": "disabled"}
            for name in ("telegram", "discord")
        }
        self.gateway.health_sections["interfaces"] = lambda: report

    async def _run_interfaces(self, config: Config) -> None:
        from aleph.interfaces.loading import load_bridge_module

        try:
            wiring = await trio.to_thread.run_sync(load_bridge_module, config)
        except ImportError as exc:
            log.error("the bots cannot start: %s (is the package installed?)", exc)
            self._interfaces_failed(f"ImportError: {exc}")
            return
        assert self.sessions is not None
        bridge = wiring.build_bridge(config, self.sessions, self.pairing)
        self.gateway.health_sections["interfaces"] = bridge.health
        try:
            await bridge.serve(self.gateway.stopping)
        except Exception:
            # A bug in the bridge: the bots stop, the rest of the daemon goes on.
            log.exception("the bots stopped after an internal error")
            self._interfaces_failed("internal error")

    def _token_expired(self, record: TokenRecord) -> None:
        closed = self.gateway.close_token_connections(
            record.token_id, CLOSE_TOKEN_REVOKED, "token expired"
        )
        log.info(
            "token %s (%s) expired; %d connection(s) closed", record.token_id, record.name, closed
        )

    async def _start_control(self, services: trio.Nursery) -> None:
        """Stored tokens and pairings, then the control socket (listening before READY)."""
        assert self.db is not None
        self.token_store = TokenStore(self.db, self.gateway.tokens)
        await self.token_store.load()
        await services.start(
            self.token_store.watch_expiry, self.gateway.stopping, self._token_expired
        )
        self.pairing = PairingStore(self.db, ttl=lambda: self.config.control.pairing_ttl)
        await self.pairing.load()
        self.control = ControlServer(self.config.control_socket())
        register_control_methods(self.control, self)
        await services.start(serve_control, self.control, self.gateway.stopping)


class _StopNow(Exception):
    """A second SIGTERM/SIGINT: leave at once."""


async def _watchdog(interval: float) -> None:
    while True:
        systemd.notify("WATCHDOG=1")
        await trio.sleep(interval)


def _messages(group: BaseExceptionGroup[BaseException]) -> list[str]:
    """The messages of every leaf exception, however deeply nurseries nested them."""
    messages = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            messages += _messages(exc)
        else:
            messages.append(str(exc))
    return messages


def main(config_path: Path | None) -> int:
    """`aleph serve`: load the config, run the daemon, return the exit code."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(
            f"aleph: bad configuration{f' in {config_path}' if config_path else ''}:",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return exc.exit_code
    setup_logging(config.daemon.log_level)
    log.info("aleph %s starting (config: %s)", __version__, config_path or "built-in defaults")

    async def serve() -> None:
        # Socket activation (aleph.socket): systemd's listening sockets replace
        # gateway.host/port.
        activated = [
            trio.SocketListener(trio.socket.from_stdlib_socket(sock))
            for sock in systemd.listen_fds()
            if sock.type == socket.SOCK_STREAM
        ]
        await Daemon(config, config_path).run(listeners=activated or None)

    problems: list[str] = []
    exit_code = 0
    try:
        trio.run(serve)
    except* OwnerTokenError as group:
        problems += _messages(group)
        exit_code = ConfigError.exit_code
    except* StorageError as group:
        problems += _messages(group)
        exit_code = 73  # EX_CANTCREAT: the state store cannot be opened or migrated
    except* OSError as group:
        problems += _messages(group)
        exit_code = 71  # EX_OSERR: cannot listen, cannot write the state directory
    except* Exception as group:
        # A bug: say so once, with the traceback, and let systemd restart us.
        log.critical("stopped by an internal error", exc_info=group)
        exit_code = 70  # EX_SOFTWARE
    for problem in problems:
        log.error("%s", problem)
    return exit_code
