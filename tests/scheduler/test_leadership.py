"""One scheduler per database: SQLite file locks, PostgreSQL leases with epochs, failover."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.app import Leash, build
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.rules import Rules
from bot.domain.states import ActorKind, GrantState
from bot.store.engine import create_engine, migrate
from bot.store.fencing import FencedOutError, fenced
from cloud.sandbox import Sandbox
from scheduler.leadership import Leadership
from tests.conftest import PG_URL
from tests.e2e.helpers import REQUEST_ID, audit_types, eventually, grant, inline_policy

FAST = {"retry_seconds": 0.2, "check_seconds": 0.2}
DEV = Actor("dev", ActorKind.USER, "console")
OWNER = Actor("owner-a", ActorKind.USER, "console")
ROLE = "support-triage-agent"


class Hooks:
    """Records elections and depositions of one Leadership."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def elected(self) -> None:
        self.events.append("elected")

    async def deposed(self) -> None:
        self.events.append("deposed")


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Leadership, Leadership]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}"
    first, second = Leadership(url, **FAST), Leadership(url, **FAST)
    yield first, second
    await first.stop()
    await second.stop()


async def test_sqlite_one_leader_the_other_says_why_then_takes_over(
    pair: tuple[Leadership, Leadership], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = pair
    one, two = Hooks(), Hooks()
    caplog.set_level(logging.WARNING, logger="leash.leadership")
    await first.start(one.elected, one.deposed)
    await second.start(two.elected, two.deposed)  # a second open file conflicts, same process
    assert (first.is_leader, second.is_leader) == (True, False)
    assert first.describe() == "leader"
    lock = tmp_path / "leash.db.scheduler.lock"
    assert second.describe() == f"follower (sqlite lock {lock} held by pid {os.getpid()})"
    assert lock.read_text().strip() == str(os.getpid())
    await asyncio.sleep(0.5)  # several retries: still one warning
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"another Leash process (pid {os.getpid()}) runs the scheduler for {tmp_path / 'leash.db'}"
        "; this one serves HTTP only — on SQLite run a single process, use PostgreSQL for replicas"
    ]
    assert (one.events, two.events) == (["elected"], [])

    await first.stop()
    assert one.events == ["elected", "deposed"]
    assert not first.is_leader

    async def took_over() -> bool:
        return second.is_leader

    assert await eventually(took_over, within=1.0)
    assert two.events == ["elected"]


@pytest.fixture
def other_process(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    holder = (
        "import fcntl, os, sys\n"
        "f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "f.write(f'{os.getpid()}\\n'); f.flush(); print('held', flush=True); sys.stdin.read()\n"
    )
    lock = tmp_path / "leash.db.scheduler.lock"
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", holder, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


async def test_sqlite_a_second_process_refuses_to_run_the_scheduler(
    tmp_path: Path, other_process: subprocess.Popen[str]
) -> None:
    leadership = Leadership(f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}", **FAST)
    hooks = Hooks()
    await leadership.start(hooks.elected, hooks.deposed)
    try:
        assert not leadership.is_leader
        assert f"held by pid {other_process.pid}" in leadership.describe()
        other_process.kill()
        other_process.wait()

        async def took_over() -> bool:
            return leadership.is_leader

        assert await eventually(took_over, within=1.0)
        assert hooks.events == ["elected"]
    finally:
        await leadership.stop()


async def test_in_memory_sqlite_always_leads() -> None:
    leadership = Leadership("sqlite+aiosqlite:///:memory:")
    hooks = Hooks()
    assert leadership.describe() == "not started"
    await leadership.start(hooks.elected, hooks.deposed)
    assert leadership.is_leader
    await leadership.stop()
    assert hooks.events == ["elected", "deposed"]


async def test_a_failed_election_releases_the_lock(pair: tuple[Leadership, Leadership]) -> None:
    first, second = pair
    hooks = Hooks()

    async def broken() -> None:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        await first.start(broken, hooks.deposed)
    assert not first.is_leader
    assert hooks.events == ["deposed"]
    await second.start(hooks.elected, hooks.deposed)
    assert second.is_leader


def _leash(url: str, sandbox: Sandbox, rules: Rules, *, sweep_seconds: float = 0.5) -> Leash:
    settings = Settings(
        database_url=url,
        sweep_seconds=sweep_seconds,
        leader_retry_seconds=0.3,
        leader_check_seconds=0.3,
    )
    return build(settings, sandbox=sandbox, rules=rules)


async def _approved(leash: Leash, duration: str) -> str:
    reply = await leash.handler.handle_text(
        f"request {ROLE} s3-read for {duration} because leader drill", actor=DEV
    )
    assert reply.ok, reply.text
    approved = await leash.handler.handle_text(f"approve {reply.text.split()[1]}", actor=OWNER)
    assert approved.ok, approved.text
    return next(word for word in approved.text.split() if word.startswith("g-"))


async def test_replicas_share_one_database_and_the_survivor_revokes(
    database_url: str, fresh_sandbox: Sandbox, rules: Rules
) -> None:
    a, b = _leash(database_url, fresh_sandbox, rules), _leash(database_url, fresh_sandbox, rules)
    await a.start()
    await b.start(discover=False)
    try:
        assert (a.runner.running, b.runner.running) == (True, False)
        assert b.leadership.describe().startswith("follower (")
        leader, follower = a, b

        # Approved on the follower (which arms no timer): the leader's sweep revokes it.
        first = await _approved(follower, "2s")

        async def revoked(grant_id: str) -> bool:
            return (await grant(follower, grant_id)).state == GrantState.REVOKED

        assert await eventually(lambda: revoked(first), within=6)
        assert inline_policy(fresh_sandbox, ROLE, f"leash-grant-{first}") is None

        # Approved on the leader, which then goes before the expiry: the survivor takes over.
        second = await _approved(leader, "3s")
        await leader.close()
        assert await eventually(lambda: revoked(second), within=8)
        assert follower.leadership.is_leader
        assert follower.runner.running
        assert inline_policy(fresh_sandbox, ROLE, f"leash-grant-{second}") is None
        assert (await audit_types(follower, grant_id=second)).count("grant.revoked") == 1
    finally:
        await a.close()
        await b.close()


async def _until(moment: datetime) -> None:
    """Sleep until a second after `moment`."""
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 1)


async def _extend_on(leash: Leash, grant_id: str, duration: str) -> None:
    reply = await leash.handler.handle_text(
        f"extend {grant_id} {duration} because the job is slow", actor=DEV
    )
    assert reply.ok, reply.text
    request_id = REQUEST_ID.search(reply.text)
    assert request_id, reply.text
    approved = await leash.handler.handle_text(f"approve {request_id[1]}", actor=OWNER)
    assert approved.ok, approved.text


async def test_a_stale_timer_does_not_revoke_a_grant_extended_elsewhere(
    tmp_path: Path, fresh_sandbox: Sandbox, rules: Rules
) -> None:
    """SQLite: the second process cannot tell the leader; the leader's old timer re-arms."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}"
    a = _leash(url, fresh_sandbox, rules, sweep_seconds=3600)
    b = _leash(url, fresh_sandbox, rules, sweep_seconds=3600)
    await a.start()
    await b.start(discover=False)
    try:
        granted = await _approved(a, "6s")  # time enough to extend it first, even when busy
        first_expiry = (await grant(a, granted)).expires_at
        await _extend_on(b, granted, "1h")
        later = (await grant(a, granted)).expires_at
        await _until(first_expiry)  # the leader's timer for the first expiry has fired
        assert (await grant(a, granted)).state == GrantState.ACTIVE
        assert inline_policy(fresh_sandbox, ROLE, f"leash-grant-{granted}") is not None
        assert a.runner.next_run(f"revoke:{granted}") == later
        assert "grant.revoked" not in await audit_types(a, grant_id=granted)
    finally:
        await a.close()
        await b.close()


if PG_URL:  # PostgreSQL cases exist only when a test database is configured

    async def _sql(url: str, statement: str) -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement))
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    async def _migrated(url: str) -> None:
        engine = create_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    async def test_a_lease_that_ran_out_passes_to_a_follower_with_a_new_epoch(
        database_url: str,
    ) -> None:
        await _migrated(database_url)
        timing = {"retry_seconds": 0.2, "check_seconds": 0.3, "lease_seconds": 1.5}
        first, second = Leadership(database_url, **timing), Leadership(database_url, **timing)
        one, two = Hooks(), Hooks()
        try:
            await first.start(one.elected, one.deposed)
            await second.start(two.elected, two.deposed)
            assert (first.is_leader, second.is_leader) == (True, False)
            assert first.may_act() == first.epoch >= 1
            assert second.may_act() is None
            assert second.describe().startswith("follower (postgresql scheduler lease held by ")
            await asyncio.sleep(2.0)  # renewed for longer than a lease: nobody takes over
            assert (first.is_leader, second.is_leader) == (True, False)
            old_epoch = first.epoch

            # The lease runs out as if the leader had been frozen past it.
            await _sql(
                database_url,
                "UPDATE leash_leader SET expires_at = now() - interval '1 second'",
            )

            async def failed_over() -> bool:
                return second.is_leader and not first.is_leader

            assert await eventually(failed_over, within=5)
            assert one.events == ["elected", "deposed"]
            assert two.events == ["elected"]
            assert second.epoch == old_epoch + 1
            assert first.may_act() is None
            # The deposed one keeps trying and stays a follower while the other renews.
            await asyncio.sleep(2.0)
            assert not first.is_leader
            assert second.is_leader
        finally:
            await first.stop()
            await second.stop()
        # A clean stop hands the lease back at once.
        assert await _sql(database_url, "SELECT expires_at < now() FROM leash_leader") == [(True,)]

    async def _select_one(engine: AsyncEngine) -> None:
        async with engine.begin() as connection:
            await connection.execute(text("SELECT 1"))

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    async def test_the_database_refuses_work_fenced_by_an_old_epoch(database_url: str) -> None:
        await _migrated(database_url)
        await _sql(
            database_url,
            "INSERT INTO leash_leader (name, holder, epoch, expires_at) "
            "VALUES ('leash-scheduler', 'someone', 7, now() + interval '1 minute')",
        )
        engine = create_engine(database_url)
        try:
            with fenced(7):
                async with engine.begin() as connection:
                    assert (await connection.execute(text("SELECT 1"))).scalar() == 1
            with fenced(6), pytest.raises(FencedOutError, match="epoch 6 was superseded"):
                await _select_one(engine)
            with fenced(7):  # a takeover while a transaction is open: its commit is refused
                async with engine.connect() as connection:
                    await connection.begin()
                    await connection.execute(text("SELECT 1"))
                    await _sql(database_url, "UPDATE leash_leader SET epoch = 8")
                    with pytest.raises(FencedOutError, match="epoch 7 was superseded"):
                        await connection.commit()
            async with engine.begin() as connection:  # unfenced work (HTTP) is never refused
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        finally:
            await engine.dispose()

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    async def test_a_follower_hands_its_timers_to_the_leader(
        database_url: str, fresh_sandbox: Sandbox, rules: Rules
    ) -> None:
        """Approved or extended on a follower: the leader's timers follow at once (no sweep)."""
        hour = 3600.0  # the sweep cannot be what revokes here
        a = _leash(database_url, fresh_sandbox, rules, sweep_seconds=hour)
        b = _leash(database_url, fresh_sandbox, rules, sweep_seconds=hour)
        await a.start()
        await b.start(discover=False)
        try:
            assert (a.leadership.is_leader, b.leadership.is_leader) == (True, False)

            async def state(grant_id: str) -> str:
                return (await grant(a, grant_id)).state

            # Approved on the follower: the leader arms the timer and revokes on time.
            short = await _approved(b, "4s")

            async def armed_or_revoked() -> bool:  # on a busy machine it may be done already
                return await _armed(a, short) or await state(short) == GrantState.REVOKED

            assert await eventually(armed_or_revoked, within=5)
            assert await eventually(lambda: _is(state(short), GrantState.REVOKED), within=10)
            assert inline_policy(fresh_sandbox, ROLE, f"leash-grant-{short}") is None

            # Approved on the leader, extended on the follower: the old timer does not revoke.
            extended = await _approved(a, "6s")
            first_expiry = (await grant(a, extended)).expires_at
            await _extend_on(b, extended, "1h")
            await _until(first_expiry)
            assert await state(extended) == GrantState.ACTIVE
            assert inline_policy(fresh_sandbox, ROLE, f"leash-grant-{extended}") is not None
            later = (await grant(a, extended)).expires_at
            assert a.runner.job_ids().count(f"revoke:{extended}") == 1
            assert a.runner.next_run(f"revoke:{extended}") == later
        finally:
            await a.close()
            await b.close()

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    async def test_a_leader_whose_lease_connection_was_cut_still_hears_the_timers(
        database_url: str, fresh_sandbox: Sandbox, rules: Rules
    ) -> None:
        """The timer channel lives on the lease's connection: a reconnect must listen again."""
        hour = 3600.0
        a = _leash(database_url, fresh_sandbox, rules, sweep_seconds=hour)
        b = _leash(database_url, fresh_sandbox, rules, sweep_seconds=hour)
        await a.start()
        await b.start(discover=False)
        try:
            assert (a.leadership.is_leader, b.leadership.is_leader) == (True, False)
            # Cut the leader's lease session, as a network blip or a DBA would: the only
            # session that renews the lease (the follower's last statement was the SELECT;
            # other test workers' databases have leases of their own).
            cut = await _sql(
                database_url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() "
                "AND query LIKE 'UPDATE leash_leader SET expires_at%'",
            )
            assert cut == [(True,)]

            async def renewed_since() -> bool:
                rows = await _sql(
                    database_url,
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() "
                    "AND query LIKE 'UPDATE leash_leader SET expires_at%'",
                )
                return rows == [(1,)]

            assert await eventually(renewed_since, within=10)
            assert a.leadership.is_leader

            short = await _approved(b, "1h")
            assert await eventually(lambda: _armed(a, short), within=10)
        finally:
            await a.close()
            await b.close()

    async def _armed(leash: Leash, grant_id: str) -> bool:
        return f"revoke:{grant_id}" in leash.runner.job_ids()

    async def _is(current: Awaitable[str], expected: GrantState) -> bool:
        return await current == expected
