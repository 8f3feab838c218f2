"""The pairing store the bot interfaces use, and its approval through `aleph ctl`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aleph.security.pairing import (
    CODE_ALPHABET,
    CODE_LENGTH,
    PAIRING_MIGRATIONS,
    PairingDecision,
    PairingError,
    PairingStore,
    UnknownPairingCode,
)
from aleph.storage import Database
from tests.control.conftest import ControlledDaemon


class FakeWallClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "pairing.db", PAIRING_MIGRATIONS)
    yield database
    await database.aclose()


@pytest.fixture
def clock() -> FakeWallClock:
    return FakeWallClock()


async def test_request_gives_a_short_code_once_per_channel(
    db: Database, clock: FakeWallClock
) -> None:
    store = PairingStore(db, ttl=600, clock=clock)
    first = await store.request("telegram:42", "@alice")
    assert len(first.code) == CODE_LENGTH
    assert set(first.code) <= set(CODE_ALPHABET)
    assert first.expires_at == clock.now + 600
    clock.now += 10
    assert await store.request("telegram:42", "@alice") == first  # asking again: same code
    other = await store.request("discord:7", "bob")
    assert other.code != first.code
    assert [r.channel_key for r in await store.pending()] == ["telegram:42", "discord:7"]


async def test_approve_pairs_the_channel_and_survives_a_restart(
    db: Database, clock: FakeWallClock
) -> None:
    store = PairingStore(db, clock=clock)
    decisions: list[PairingDecision] = []
    store.add_listener(decisions.append)
    request = await store.request("telegram:42", "@alice")
    assert not store.is_approved("telegram:42")
    code = request.code
    typed = f"{code[:4].lower()}-{code[4:].lower()}"  # as a person types it
    assert await store.approve(typed) == request
    assert store.is_approved("telegram:42")
    assert decisions == [PairingDecision(request, "approved")]
    assert await store.pending() == []
    with pytest.raises(PairingError, match="already paired"):
        await store.request("telegram:42", "@alice")

    restarted = PairingStore(db, clock=clock)
    await restarted.load()
    assert restarted.is_approved("telegram:42")
    assert [p.user for p in restarted.paired()] == ["@alice"]
    assert await restarted.unpair("telegram:42")
    assert not restarted.is_approved("telegram:42")
    assert not await restarted.unpair("telegram:42")


async def test_deny_forgets_the_request(db: Database, clock: FakeWallClock) -> None:
    store = PairingStore(db, clock=clock)
    decisions: list[PairingDecision] = []
    store.add_listener(decisions.append)
    request = await store.request("discord:9", "mallory")
    await store.deny(request.code)
    assert not store.is_approved("discord:9")
    assert decisions == [PairingDecision(request, "denied")]
    with pytest.raises(UnknownPairingCode):
        await store.approve(request.code)
    again = await store.request("discord:9", "mallory")  # may ask again, with a new code
    assert again.code != request.code or again.requested_at == clock.now


async def test_an_expired_code_cannot_be_approved(db: Database, clock: FakeWallClock) -> None:
    store = PairingStore(db, ttl=60, clock=clock)
    request = await store.request("telegram:5", "@late")
    clock.now += 59
    assert [r.code for r in await store.pending()] == [request.code]
    clock.now += 1
    with pytest.raises(UnknownPairingCode, match="expired"):
        await store.approve(request.code)
    assert not store.is_approved("telegram:5")
    expired = await store.request("telegram:6", "@later")
    clock.now += 61
    assert await store.pending() == []  # expired requests are dropped from the list
    with pytest.raises(UnknownPairingCode):
        await store.deny(expired.code)
    fresh = await store.request("telegram:6", "@later")
    assert fresh.code != expired.code or fresh.requested_at == clock.now


async def test_pending_requests_are_bounded(db: Database, clock: FakeWallClock) -> None:
    store = PairingStore(db, max_pending=3, clock=clock)
    for n in range(3):
        await store.request(f"telegram:{n}", f"user{n}")
    with pytest.raises(PairingError, match="too many"):
        await store.request("telegram:99", "flood")
    clock.now += store.ttl
    await store.request("telegram:99", "patient")  # the expired ones made room


async def test_a_listener_that_raises_does_not_undo_the_decision(
    db: Database, clock: FakeWallClock
) -> None:
    store = PairingStore(db, clock=clock)

    def broken(decision: PairingDecision) -> None:
        raise RuntimeError("adapter bug")

    store.add_listener(broken)
    request = await store.request("telegram:1", "@a")
    await store.approve(request.code)
    assert store.is_approved("telegram:1")


async def test_ctl_approves_and_denies(cd: ControlledDaemon) -> None:
    pairing = cd.daemon.pairing
    assert pairing is not None
    alice = await pairing.request("telegram:1001", "@alice")
    listed = await cd.ctl("pairing", "list")
    assert listed.code == 0
    assert alice.code in listed.out
    assert "telegram:1001" in listed.out
    assert "@alice" in listed.out
    approved = await cd.ctl("pairing", "approve", alice.code)
    assert (approved.code, approved.out) == (0, "approved telegram:1001 (@alice)\n")
    again = await cd.ctl("pairing", "deny", alice.code)
    assert again.code == 3
    assert "no pending pairing request" in again.err
    listed = await cd.ctl("pairing", "list", "--json")
    assert '"channel": "telegram:1001"' in listed.out


async def test_the_lifetime_follows_a_reloaded_config(db: Database, clock: FakeWallClock) -> None:
    lifetime = [600.0]
    store = PairingStore(db, ttl=lambda: lifetime[0], clock=clock)
    assert (await store.request("telegram:1", "@a")).expires_at == clock.now + 600
    lifetime[0] = 60.0
    assert store.ttl == 60.0
    assert (await store.request("telegram:2", "@b")).expires_at == clock.now + 60
