"""Where `aleph chat` connects: flags, then the environment, then the local daemon."""

from __future__ import annotations

from pathlib import Path

from aleph.chat.target import history_path, resolve_target


def test_flags_win(tmp_path: Path) -> None:
    environ = {"ALEPH_URL": "ws://env/ws", "ALEPH_TOKEN": "env-token"}
    target = resolve_target("ws://flag/ws", "flag-token", None, environ)
    assert (target.url, target.token, target.token_source) == (
        "ws://flag/ws",
        "flag-token",
        "--token",
    )


def test_environment_next(tmp_path: Path) -> None:
    environ = {"ALEPH_URL": "ws://env/ws", "ALEPH_TOKEN": "env-token"}
    target = resolve_target(None, None, None, environ)
    assert (target.url, target.token, target.token_source) == (
        "ws://env/ws",
        "env-token",
        "ALEPH_TOKEN",
    )


def test_local_daemon_last(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "owner_token").write_text("local-token\n")
    config = tmp_path / "aleph.toml"
    config.write_text(
        f'[gateway]\nhost = "0.0.0.0"\nport = 2999\npath = "/x"\n[storage]\nstate_dir = "{state}"\n'
    )
    target = resolve_target(None, None, config, {"HOME": str(tmp_path)})
    assert target.url == "ws://127.0.0.1:2999/x"
    assert target.token == "local-token"
    assert target.token_source == str(state / "owner_token")


def test_no_token_anywhere(tmp_path: Path) -> None:
    environ = {"XDG_STATE_HOME": str(tmp_path / "nothing"), "XDG_CONFIG_HOME": str(tmp_path)}
    target = resolve_target(None, None, None, environ)
    assert target.url == "ws://127.0.0.1:2135/ws"
    assert target.token is None


def test_history_path(tmp_path: Path) -> None:
    assert history_path({"ALEPH_CHAT_HISTORY": "/x/h"}) == Path("/x/h")
    assert history_path({"XDG_STATE_HOME": "/s"}) == Path("/s/aleph/chat_history")
