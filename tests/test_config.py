"""Configuration: defaults, the file, environment overrides, every problem reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aleph.config import ConfigError, load_config, masked


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aleph.toml"
    path.write_text(text)
    return path


def test_no_file_gives_the_documented_defaults() -> None:
    config = load_config(None, environ={})
    assert (config.gateway.host, config.gateway.port, config.gateway.path) == (
        "127.0.0.1",
        2135,
        "/ws",
    )
    assert config.gateway.max_payload == 1_048_576
    assert config.gateway.heartbeat_interval == 30.0
    assert config.gateway.client_timeout == 10.0
    assert config.gateway.auth_timeout == 10.0
    assert config.gateway.allow_guests is False
    assert config.limits.session_messages_per_minute == 20
    assert config.limits.user_messages_per_minute == 60
    assert config.limits.max_queued_runs == 8
    assert config.limits.event_retention == 5000
    assert config.provider.kind == "echo"
    assert config.provider.request_timeout == 120.0


def test_state_dir_follows_config_then_systemd_then_xdg(tmp_path: Path) -> None:
    config = load_config(None, environ={})
    assert config.state_dir({"STATE_DIRECTORY": "/var/lib/aleph"}) == Path("/var/lib/aleph")
    assert config.state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/aleph")
    assert config.state_dir({}) == Path.home() / ".local" / "state" / "aleph"
    explicit = load_config(None, environ={"ALEPH_STORAGE__STATE_DIR": str(tmp_path)})
    assert explicit.state_dir({"STATE_DIRECTORY": "/var/lib/aleph"}) == tmp_path


def test_file_values_and_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, '[gateway]\nport = 3000\nallowed_origins = ["https://a.example"]\n')
    env = {
        "ALEPH_GATEWAY__PORT": "2140",
        "ALEPH_GATEWAY__ALLOW_GUESTS": "true",
        "ALEPH_GATEWAY__HEARTBEAT_INTERVAL": "5",
        "ALEPH_LIMITS__MAX_QUEUED_RUNS": "3",
        "ALEPH_CONFIG": "not-a-key-and-ignored",
    }
    config = load_config(path, environ=env)
    assert config.gateway.port == 2140
    assert config.gateway.allow_guests is True
    assert config.gateway.heartbeat_interval == 5.0
    assert config.gateway.allowed_origins == ["https://a.example"]
    assert config.limits.max_queued_runs == 3


def test_list_from_environment_as_csv_or_json() -> None:
    csv = load_config(
        None, environ={"ALEPH_GATEWAY__ALLOWED_ORIGINS": "https://a.io, https://b.io"}
    )
    assert csv.gateway.allowed_origins == ["https://a.io", "https://b.io"]
    js = load_config(None, environ={"ALEPH_GATEWAY__ALLOWED_ORIGINS": '["https://*.a.io"]'})
    assert js.gateway.allowed_origins == ["https://*.a.io"]


def test_every_problem_is_listed_by_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[gateway]\nport = "abc"\nbogus = 1\nallow_guests = "yes"\n[nosuchsection]\nx = 1\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"ALEPH_LIMITS__MAX_QUEUED_RUNS": "many"})
    problems = caught.value.problems
    assert 'gateway.port: expected int, got str "abc"' in problems
    assert 'gateway.allow_guests: expected bool, got str "yes"' in problems
    assert "gateway: unknown key(s): bogus" in problems
    assert any(
        p.startswith("limits.max_queued_runs (from ALEPH_LIMITS__MAX_QUEUED_RUNS)")
        for p in problems
    )
    assert any("nosuchsection" in p for p in problems)
    assert caught.value.exit_code == 78


def test_ranges_origins_and_unreadable_files_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[gateway]\nport = 70000\nallowed_origins = ["app.example.com"]\n'
        '[auth]\nowner_token_file = "/nonexistent/token"\n[limits]\nmax_queued_runs = 0\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    text = "\n".join(caught.value.problems)
    assert "gateway.port: must be at most 65535, got 70000" in text
    assert "limits.max_queued_runs: must be at least 1, got 0" in text
    assert (
        'gateway.allowed_origins[0]: "app.example.com" is not "*" or scheme://host[:port]' in text
    )
    assert "auth.owner_token_file: cannot read /nonexistent/token" in text


def test_secrets_are_refused_in_the_file_and_masked_when_shown(tmp_path: Path) -> None:
    path = write(tmp_path, '[auth]\nowner_token = "plain-text-secret-123"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert "ALEPH_AUTH__OWNER_TOKEN" in caught.value.problems[0]
    config = load_config(None, environ={"ALEPH_AUTH__OWNER_TOKEN": "s3cret-s3cret-s3cret"})
    assert config.auth.owner_token == "s3cret-s3cret-s3cret"
    shown = masked(config)
    assert shown["auth"]["owner_token"] == "********"
    assert "s3cret" not in repr(config)


def test_invalid_toml_is_reported_not_raised(tmp_path: Path) -> None:
    path = write(tmp_path, "[gateway\nport=")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert "not valid TOML" in caught.value.problems[0]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aleph", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_config_check_and_show_commands(tmp_path: Path) -> None:
    good = write(tmp_path, "[gateway]\nport = 2222\n")
    result = run_cli("config", "check", "--config", str(good))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text('[gateway]\nport = "abc"\n')
    result = run_cli("config", "check", "--config", str(bad))
    assert result.returncode == 78
    assert 'gateway.port: expected int, got str "abc"' in result.stderr

    env = {"PATH": "/usr/bin:/bin", "ALEPH_AUTH__OWNER_TOKEN": "very-secret-token-value"}
    result = run_cli("config", "show", "--config", str(good), env=env)
    assert result.returncode == 0, result.stderr
    assert "port = 2222" in result.stdout
    assert "very-secret-token-value" not in result.stdout
    assert 'owner_token = "********"' in result.stdout


def test_serve_refuses_a_bad_config_with_exit_78(tmp_path: Path) -> None:
    bad = write(tmp_path, "[gateway]\nport = -1\n")
    result = run_cli("serve", "--config", str(bad))
    assert result.returncode == 78
    assert "gateway.port: must be at least 0, got -1" in result.stderr


def test_secrets_from_systemd_credentials(tmp_path: Path) -> None:
    (tmp_path / "provider_api_key").write_text("sk-from-credential\n")
    (tmp_path / "telegram_token").write_text("123:abc\n")
    config = load_config(None, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert config.provider.api_key == "sk-from-credential"
    assert config.telegram.token == "123:abc"
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "ALEPH_PROVIDER__API_KEY": "sk-env"}
    assert load_config(None, environ=env).provider.api_key == "sk-env"  # the environment wins
    assert masked(config)["provider"]["api_key"] == "********"
