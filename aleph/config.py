"""The daemon's configuration: one TOML file, environment overrides, defaults.

``load_config`` reads the file (optional: every key has a default), applies
``ALEPH_<SECTION>__<KEY>`` environment variables on top, structures the result
into the frozen classes below with the strict converter, and checks ranges.
Every problem found is collected and raised together as :class:`ConfigError`,
one line per problem, each starting with its key path.

Secrets (fields with ``secret=True`` metadata) are never read from the TOML
file: they come from the environment, from a file named by another key, or
from systemd credentials (``$CREDENTIALS_DIRECTORY``). ``masked`` gives the
config as a dict with secrets replaced, for ``aleph config show``.
"""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import orjson

from aleph.protocol.convert import describe_value, error_lines, make_converter
from aleph.security.origin import check_patterns

__all__ = [
    "AgentsConfig",
    "AuthConfig",
    "Config",
    "ConfigError",
    "ControlConfig",
    "DaemonConfig",
    "DiscordConfig",
    "GatewayConfig",
    "LimitsConfig",
    "MediaConfig",
    "ProviderConfig",
    "StorageConfig",
    "TelegramConfig",
    "ThinkerConfig",
    "ToolsConfig",
    "default_config_path",
    "load_config",
    "masked",
]

ENV_PREFIX = "ALEPH_"
EX_CONFIG = 78


def _range(default: Any, lo: float | None = None, hi: float | None = None, **meta: Any) -> Any:
    return attrs.field(default=default, metadata={"min": lo, "max": hi, **meta})


def _secret() -> Any:
    return attrs.field(default="", repr=False, metadata={"secret": True})


@attrs.frozen
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = _range(2135, 0, 65535)
    path: str = "/ws"
    allowed_origins: list[str] = attrs.Factory(list)
    max_payload: int = _range(1_048_576, 65_536, 64 * 1_048_576)
    heartbeat_interval: float = _range(30.0, 0.1)
    client_timeout: float = _range(10.0, 0.1)
    auth_timeout: float = _range(10.0, 0.1)
    allow_guests: bool = False
    # Beyond DESIGN.md's contract:
    tls_cert: str = ""
    tls_key: str = ""
    handshake_timeout: float = _range(10.0, 0.1)
    send_queue_size: int = _range(1024, 16, 1_000_000)
    max_inflight: int = _range(32, 1, 10_000)
    max_connections: int = _range(10_000, 1, 1_000_000)


@attrs.frozen
class AuthConfig:
    owner_token_file: str = ""
    owner_token: str = _secret()


@attrs.frozen
class StorageConfig:
    state_dir: str = ""


@attrs.frozen
class LimitsConfig:
    session_messages_per_minute: int = _range(20, 1)
    user_messages_per_minute: int = _range(60, 1)
    max_queued_runs: int = _range(8, 1, 10_000)
    event_retention: int = _range(5000, 10, 10_000_000)
    delta_interval: float = _range(0.0005, 0.0, 1.0)
    guest_session_ttl: float = _range(1800.0, 10.0, 30 * 86400.0)
    login_failures: int = _range(5, 1)
    login_failure_window: float = _range(60.0, 1.0)
    login_lockout: float = _range(300.0, 1.0)


@attrs.frozen
class ProviderConfig:
    kind: Literal["openai", "anthropic", "echo"] = "echo"
    base_url: str = ""
    model: str = ""
    api_key_env: str = ""
    api_key: str = _secret()  # ALEPH_PROVIDER__API_KEY or the credential provider_api_key
    request_timeout: float = _range(120.0, 0.1)
    # Beyond DESIGN.md's contract (the execution engine):
    max_tokens: int = _range(4096, 1, 1_000_000)
    max_tool_rounds: int = _range(8, 0, 100)
    max_retries: int = _range(3, 0, 10)
    retry_base_delay: float = _range(0.5, 0.0, 60.0)
    max_retry_delay: float = _range(60.0, 0.0, 3600.0)
    accepts_images: bool = True


@attrs.frozen
class ThinkerConfig:
    persona: str = "You are Aleph, a helpful personal assistant. Answer clearly and briefly."
    timezone: str = "UTC"
    prompt_parts: list[str] = attrs.Factory(
        lambda: ["persona", "datetime", "session", "channel", "tools"]
    )
    context_budget: int = _range(16_000, 256, 10_000_000)


@attrs.frozen
class MediaConfig:
    max_attachments: int = _range(8, 0, 1000)
    max_attachment_bytes: int = _range(5 * 1_048_576, 1, 1 << 31)
    max_total_bytes: int = _range(20 * 1_048_576, 1, 1 << 32)
    max_inline_text_chars: int = _range(20_000, 1, 10_000_000)


@attrs.frozen
class ToolsConfig:
    tool_timeout: float = _range(30.0, 0.01, 3600.0)
    max_result_chars: int = _range(16_000, 100, 10_000_000)
    workspace_dir: str = ""
    enable_files: bool = False
    max_file_bytes: int = _range(1_048_576, 1, 1 << 31)
    enable_fetch: bool = False
    fetch_max_bytes: int = _range(1_048_576, 1, 1 << 31)
    fetch_timeout: float = _range(15.0, 0.01, 600.0)
    fetch_allow_private: bool = False


@attrs.frozen
class AgentsConfig:
    invoke_timeout: float = _range(30.0, 0.01, 3600.0)
    max_tools_per_agent: int = _range(64, 0, 10_000)


@attrs.frozen
class ControlConfig:
    socket: str = ""
    # Beyond DESIGN.md's contract (operations):
    drain_timeout: float = _range(300.0, 0.0, 86400.0)  # `drain` waits this long for runs
    pairing_ttl: float = _range(600.0, 10.0, 7 * 86400.0)  # a pairing code's lifetime


BotPolicy = Literal["pairing", "allowlist", "open", "disabled"]


@attrs.frozen
class TelegramConfig:
    enabled: bool = False
    base_url: str = ""
    token: str = _secret()
    # Beyond DESIGN.md's contract (the bots; docs/bots.md):
    token_file: str = ""  # a file holding the token, if not from the environment
    base_file_url: str = ""  # default: derived from base_url
    dm_policy: BotPolicy = "pairing"
    group_policy: BotPolicy = "pairing"
    allow_users: list[str] = attrs.Factory(list)  # numeric user ids
    allow_chats: list[str] = attrs.Factory(list)  # numeric group ids
    require_mention: bool = True  # in groups: answer only when mentioned or replied to
    group_sessions: Literal["per_chat", "per_user"] = "per_chat"
    edit_interval: float = _range(1.5, 0.1, 60.0)  # seconds between edits, direct messages
    group_edit_interval: float = _range(3.0, 0.1, 60.0)  # 20 messages a minute in groups
    poll_timeout: float = _range(30.0, 1.0, 600.0)


@attrs.frozen
class DiscordConfig:
    enabled: bool = False
    token: str = _secret()
    # Beyond DESIGN.md's contract (the bots; docs/bots.md):
    token_file: str = ""
    dm_policy: BotPolicy = "pairing"
    group_policy: BotPolicy = "pairing"
    allow_users: list[str] = attrs.Factory(list)  # user ids
    allow_chats: list[str] = attrs.Factory(list)  # channel ids
    require_mention: bool = True
    group_sessions: Literal["per_chat", "per_user"] = "per_chat"
    edit_interval: float = _range(1.2, 0.1, 60.0)  # 5 edits per 5 s per channel at most
    message_content_intent: bool = False  # privileged; see docs/bots.md
    sync_commands: bool = True  # register /ask /new /clear /cancel at start


@attrs.frozen
class DaemonConfig:
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_grace: float = _range(10.0, 0.0, 3600.0)


@attrs.frozen
class Config:
    gateway: GatewayConfig = attrs.Factory(GatewayConfig)
    auth: AuthConfig = attrs.Factory(AuthConfig)
    storage: StorageConfig = attrs.Factory(StorageConfig)
    limits: LimitsConfig = attrs.Factory(LimitsConfig)
    provider: ProviderConfig = attrs.Factory(ProviderConfig)
    control: ControlConfig = attrs.Factory(ControlConfig)
    telegram: TelegramConfig = attrs.Factory(TelegramConfig)
    discord: DiscordConfig = attrs.Factory(DiscordConfig)
    daemon: DaemonConfig = attrs.Factory(DaemonConfig)
    thinker: ThinkerConfig = attrs.Factory(ThinkerConfig)
    media: MediaConfig = attrs.Factory(MediaConfig)
    tools: ToolsConfig = attrs.Factory(ToolsConfig)
    agents: AgentsConfig = attrs.Factory(AgentsConfig)

    def state_dir(self, environ: Mapping[str, str] = os.environ) -> Path:
        """Where the daemon keeps its files: the config, else systemd's, else XDG's."""
        if self.storage.state_dir:
            return Path(self.storage.state_dir).expanduser()
        if environ.get("STATE_DIRECTORY"):
            # systemd may list several, colon-separated; the first is ours.
            return Path(environ["STATE_DIRECTORY"].split(":")[0])
        base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "aleph"

    def control_socket(self, environ: Mapping[str, str] = os.environ) -> Path:
        if self.control.socket:
            return Path(self.control.socket).expanduser()
        if environ.get("RUNTIME_DIRECTORY"):
            return Path(environ["RUNTIME_DIRECTORY"].split(":")[0]) / "control.sock"
        if environ.get("XDG_RUNTIME_DIR"):
            return Path(environ["XDG_RUNTIME_DIR"]) / "aleph" / "control.sock"
        return self.state_dir(environ) / "control.sock"


class ConfigError(Exception):
    """The configuration is not usable; `problems` has one line per problem."""

    exit_code = EX_CONFIG

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


_converter = make_converter()
_SECTIONS: dict[str, type] = {
    name: cls for name, cls in typing.get_type_hints(Config).items() if attrs.has(cls)
}


def _field_types() -> dict[tuple[str, str], attrs.Attribute[Any]]:
    hints = {}
    for section, cls in _SECTIONS.items():
        types = typing.get_type_hints(cls)
        for f in attrs.fields(cls):
            hints[(section, f.name)] = f.evolve(type=types[f.name])
    return hints


_FIELDS = _field_types()


def default_config_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The config file used when none is named: the first that exists, else none."""
    candidates = []
    if environ.get("ALEPH_CONFIG"):
        return Path(environ["ALEPH_CONFIG"])
    if environ.get("CONFIGURATION_DIRECTORY"):
        candidates.append(Path(environ["CONFIGURATION_DIRECTORY"].split(":")[0]) / "aleph.toml")
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    candidates.append(Path(config_home) / "aleph" / "aleph.toml")
    return next((path for path in candidates if path.is_file()), None)


def _parse_env_value(raw: str, field_type: Any) -> Any:
    """Turn an environment string into the JSON type the field expects."""
    if field_type is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean (true/false), got {describe_value(raw)}")
    if field_type is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"expected int, got {describe_value(raw)}") from None
    if field_type is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"expected float, got {describe_value(raw)}") from None
    if typing.get_origin(field_type) is list:
        if raw.strip().startswith("["):
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ValueError("expected a JSON array or a comma-separated list") from None
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _apply_env(data: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        field = _FIELDS.get((section, key))
        if field is None:
            problems.append(f"{section}.{key} (from {name}): unknown key")
            continue
        try:
            value = _parse_env_value(raw, field.type)
        except ValueError as exc:
            problems.append(f"{section}.{key} (from {name}): {exc}")
            continue
        section_data = data.setdefault(section, {})
        if isinstance(section_data, dict):
            section_data[key] = value


def _apply_credentials(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Secrets from systemd credentials: ``$CREDENTIALS_DIRECTORY/<section>_<key>``
    (``telegram_token``, ``discord_token``), unless the environment set them."""
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return
    for (section, key), field in _FIELDS.items():
        env = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
        path = Path(directory) / f"{section}_{key}"
        if not field.metadata.get("secret") or env in environ or not path.is_file():
            continue
        section_data = data.setdefault(section, {})
        if isinstance(section_data, dict):
            section_data[key] = path.read_text(encoding="utf-8").strip()


def _check_secrets_not_in_file(data: dict[str, Any], problems: list[str]) -> None:
    for (section, key), field in _FIELDS.items():
        section_data = data.get(section)
        if field.metadata.get("secret") and isinstance(section_data, dict) and key in section_data:
            env = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            problems.append(
                f"{section}.{key}: secrets are not read from the config file; "
                f"set {env} or use a file or systemd credential"
            )
            del section_data[key]


def _check_ranges(config: Config) -> list[str]:
    problems = []
    for section in _SECTIONS:
        value = getattr(config, section)
        for f in attrs.fields(type(value)):
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            current = getattr(value, f.name)
            if lo is not None and current < lo:
                problems.append(f"{section}.{f.name}: must be at least {lo}, got {current}")
            if hi is not None and current > hi:
                problems.append(f"{section}.{f.name}: must be at most {hi}, got {current}")
    if not config.gateway.path.startswith("/"):
        problems.append(f'gateway.path: must start with "/", got "{config.gateway.path}"')
    problems += check_patterns(config.gateway.allowed_origins)
    if bool(config.gateway.tls_cert) != bool(config.gateway.tls_key):
        problems.append("gateway.tls_cert, gateway.tls_key: set both or neither")
    return problems


def _check_files(config: Config, problems: list[str]) -> None:
    for key, path in (
        ("auth.owner_token_file", config.auth.owner_token_file),
        ("gateway.tls_cert", config.gateway.tls_cert),
        ("gateway.tls_key", config.gateway.tls_key),
    ):
        if not path:
            continue
        try:
            with open(os.path.expanduser(path), "rb") as handle:
                handle.read(1)
        except OSError as exc:
            problems.append(f"{key}: cannot read {path}: {exc.strerror or exc}")


def load_config(path: Path | None = None, environ: Mapping[str, str] = os.environ) -> Config:
    """Read, override, structure and check the configuration. Raises ConfigError."""
    problems: list[str] = []
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    _check_secrets_not_in_file(data, problems)
    _apply_env(data, environ, problems)
    _apply_credentials(data, environ)
    try:
        config = _converter.structure(data, Config)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise ConfigError(problems + error_lines(exc)) from None
    problems += _check_ranges(config)
    _check_files(config, problems)
    if problems:
        raise ConfigError(problems)
    return config


def masked(config: Config) -> dict[str, Any]:
    """The effective config as plain data, secrets replaced by a marker."""
    data: dict[str, Any] = _converter.unstructure(config)
    for (section, key), field in _FIELDS.items():
        if field.metadata.get("secret"):
            data[section][key] = "********" if data[section][key] else ""
    return data
