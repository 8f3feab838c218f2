"""The daemon: one Trio nursery tree that owns every long-lived task.

::

    Daemon.run
    ├── signals     SIGTERM/SIGINT -> graceful stop (twice: stop now); SIGHUP -> reload
    ├── watchdog    WATCHDOG=1 every WATCHDOG_USEC/2 while the loop runs (if asked)
    └── services    started in order by _start_services, stopped within shutdown_grace
        └── gateway   serve_gateway: WebSocket + HTTP probes

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
import sys
from pathlib import Path

import attrs
import trio

from aleph import __version__, systemd
from aleph.config import Config, ConfigError, load_config
from aleph.gateway import Gateway, register_gateway_methods, serve_gateway
from aleph.security.owner import OwnerTokenError, resolve_owner_token
from aleph.storage import Database, Migration, StorageError

__all__ = ["Daemon", "main", "setup_logging"]

log = logging.getLogger("aleph.daemon")


def setup_logging(level: str) -> None:
    """One line per event on stderr; journald adds the time, a terminal gets it from us."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if sys.stderr.isatty():
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)


def migrations() -> list[Migration]:
    """Every subsystem's schema steps, applied when the store opens."""
    return []


@attrs.define(eq=False)
class Daemon:
    """Everything the running daemon holds, and how to reload and stop it."""

    config: Config
    config_path: Path | None
    gateway: Gateway = attrs.field(init=False)
    db: Database | None = attrs.field(default=None, init=False)
    stop_requested: trio.Event = attrs.Factory(trio.Event)

    def __attrs_post_init__(self) -> None:
        self.gateway = Gateway(self.config)
        register_gateway_methods(self.gateway.registry)
        self._load_owner_token(self.config)

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
        for key in self.gateway.apply_config(config):
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
                    self.gateway.stopping.set()
                    grace = self.config.daemon.shutdown_grace + 5.0
                    services.cancel_scope.deadline = trio.current_time() + grace
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
        await services.start(serve_gateway, self.gateway, listeners)


class _StopNow(Exception):
    """A second SIGTERM/SIGINT: leave at once."""


async def _watchdog(interval: float) -> None:
    while True:
        systemd.notify("WATCHDOG=1")
        await trio.sleep(interval)


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
        await Daemon(config, config_path).run()

    problems: list[str] = []
    exit_code = 0
    try:
        trio.run(serve)
    except* OwnerTokenError as group:
        problems += [str(exc) for exc in group.exceptions]
        exit_code = ConfigError.exit_code
    except* StorageError as group:
        problems += [str(exc) for exc in group.exceptions]
        exit_code = 73  # EX_CANTCREAT: the state store cannot be opened or migrated
    except* OSError as group:
        problems += [f"{exc}" for exc in group.exceptions]
        exit_code = 71  # EX_OSERR: cannot listen, cannot write the state directory
    for problem in problems:
        log.error("%s", problem)
    return exit_code
