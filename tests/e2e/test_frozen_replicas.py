"""Revocation on time when a replica freezes (issue 18), on PostgreSQL with real processes.

A leader stopped with SIGSTOP keeps its TCP connections (the kernel answers keepalives), so
only its lease running out can replace it: another replica must take over and revoke what
falls due within the lease plus one retry, and the old leader, woken with SIGCONT, must do
nothing under its old epoch. A replica frozen inside a transaction that holds the audit
chain's lock must not stop the others for longer than the session timeouts.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.states import GrantState
from bot.store import audit
from bot.store.engine import DatabaseTimeouts, create_engine
from bot.store.tables import AuditEvent, Grant
from cloud.sandbox import Sandbox
from tests.conftest import PG_URL
from tests.e2e.helpers import eventually
from tests.e2e.leash_process import (
    LeashProcess,
    approve_on,
    fast_policy,
    leader_and_follower,
    leash_process,
    readiness,
    serving_url,
)

LEASE = 4.0
RETRY = 1.0
CHECK = 1.0
IDLE_IN_TRANSACTION = 3.0
LOCK_TIMEOUT = 5.0
# What the bounds allow, plus room for a loaded two-core machine.
SLACK = 6.0
AGENTS = (("support-triage-agent", "owner-a"), ("ticket-router-agent", "owner-b"))


def _environment(sandbox: Sandbox, database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        **sandbox.env,
        "LEASH_DATABASE_URL": database_url,
        "LEASH_POLICY_FILE": str(fast_policy(tmp_path)),
        "LEASH_CLOUD": "aws",
        "LEASH_PORT": "0",
        "LEASH_SWEEP_SECONDS": "1",
        "LEASH_LEADER_LEASE_SECONDS": str(LEASE),
        "LEASH_LEADER_RETRY_SECONDS": str(RETRY),
        "LEASH_LEADER_CHECK_SECONDS": str(CHECK),
        "LEASH_DATABASE_LOCK_TIMEOUT_SECONDS": str(LOCK_TIMEOUT),
        "LEASH_DATABASE_IDLE_IN_TRANSACTION_SECONDS": str(IDLE_IN_TRANSACTION),
    }


async def _lease_epoch(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        found = await connection.scalar(text("SELECT epoch FROM leash_leader"))
    return int(found)


async def _grants(engine: AsyncEngine, grant_ids: list[str]) -> list[Grant]:
    async with AsyncSession(engine) as session:
        return list((await session.exec(select(Grant).where(col(Grant.id).in_(grant_ids)))).all())


async def _events(engine: AsyncEngine) -> list[AuditEvent]:
    async with AsyncSession(engine) as session:
        return list((await session.exec(select(AuditEvent).order_by(col(AuditEvent.seq)))).all())


def _deletes(sandbox: Sandbox) -> Counter[str]:
    return Counter(
        call.params.get("PolicyName", "")
        for call in sandbox.moto.calls()
        if call.by_leash and call.operation == "DeleteRolePolicy"
    )


async def _drain(process: LeashProcess) -> str:
    """What the process printed that nobody read yet (waits briefly for more)."""
    assert process.stdout is not None
    seen = b""
    while True:
        try:
            chunk = await asyncio.wait_for(process.stdout.read(65536), timeout=1.0)
        except TimeoutError:
            return seen.decode(errors="replace")
        if not chunk:
            return seen.decode(errors="replace")
        seen += chunk


if PG_URL:  # replicas share PostgreSQL; these cases exist only when a test database is set

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    async def test_a_frozen_leader_is_replaced_and_does_nothing_when_it_wakes(
        database_url: str, fresh_sandbox: Sandbox, tmp_path: Path
    ) -> None:
        env = _environment(fresh_sandbox, database_url, tmp_path)
        engine = create_async_engine(database_url)
        try:
            async with leader_and_follower(env, console=True) as (
                (leader, leader_url),
                (_, follower_url),
            ):
                assert (await readiness(leader_url))["scheduler"] == "leader"
                old_epoch = await _lease_epoch(engine)
                grant_ids = [
                    await approve_on(leader, agent, owner, 12, f"freeze drill {n}")
                    for n, (agent, owner) in enumerate(AGENTS * 2)
                ]
                await _drain(leader)

                leader.send_signal(signal.SIGSTOP)
                frozen_at = datetime.now(UTC)
                grants = await _grants(engine, grant_ids)
                assert all(g.state == GrantState.ACTIVE for g in grants)
                assert all(g.expires_at > frozen_at for g in grants)  # due while frozen

                async def follower_leads() -> bool:
                    return (await readiness(follower_url))["scheduler"] == "leader"

                assert await eventually(follower_leads, within=LEASE + RETRY + SLACK)
                took_over = (datetime.now(UTC) - frozen_at).total_seconds()

                async def all_revoked() -> bool:
                    found = await _grants(engine, grant_ids)
                    return all(g.state == GrantState.REVOKED for g in found)

                last_due = max(g.expires_at for g in grants)
                wait = (last_due - datetime.now(UTC)).total_seconds() + LEASE + SLACK
                assert await eventually(all_revoked, within=wait, step=0.3)
                new_epoch = await _lease_epoch(engine)
                calls_before_wake = len(fresh_sandbox.moto.calls())
                events_before_wake = len(await _events(engine))

                leader.send_signal(signal.SIGCONT)
                await asyncio.sleep(CHECK + RETRY + 3)
                woken = await _drain(leader)
                assert str((await readiness(leader_url))["scheduler"]).startswith("follower")
        finally:
            revoked = await _grants(engine, grant_ids)
            events = await _events(engine)
            async with AsyncSession(engine) as session:
                chain = await audit.verify(
                    session=session, key=audit.AuditKey.of(os.environ["LEASH_AUDIT_KEY"])
                )
                chain_ok = chain.ok
            await engine.dispose()

        assert took_over <= LEASE + RETRY + SLACK
        assert new_epoch == old_epoch + 1
        # Each grant left IAM within the lease plus a retry of falling due.
        for found in revoked:
            assert found.revoked_at is not None
            late = (found.revoked_at - found.expires_at).total_seconds()
            assert late <= LEASE + RETRY + SLACK, (found.id, late)
        # Revoked by the new leader, once each, in the cloud and in the trail.
        deletes = _deletes(fresh_sandbox)
        assert {g: deletes[f"leash-grant-{g}"] for g in grant_ids} == dict.fromkeys(grant_ids, 1)
        revocations = [e for e in events if e.event_type == "grant.revoked"]
        assert sorted(e.grant_id or "" for e in revocations) == sorted(grant_ids)
        assert {e.detail.get("leader_epoch") for e in revocations} == {new_epoch}
        # The woken leader acted on nothing: no scheduler event under its old epoch since the
        # freeze, no cloud write, and it said why it stood down.
        since_freeze = [e for e in events if e.at >= frozen_at]
        assert [e for e in since_freeze if e.detail.get("leader_epoch") == old_epoch] == []
        assert all(e.detail.get("leader_epoch") != old_epoch for e in events[events_before_wake:])
        writes_after_wake = [
            c
            for c in fresh_sandbox.moto.calls()[calls_before_wake:]
            if c.by_leash and c.operation in ("PutRolePolicy", "DeleteRolePolicy")
        ]
        assert writes_after_wake == []
        assert re.search(r"stepping down|lost the scheduler lease|could not renew", woken), woken
        assert "grant is revoked" not in woken
        assert chain_ok

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    async def test_a_replica_frozen_holding_the_chain_lock_stops_nobody_for_long(
        database_url: str, fresh_sandbox: Sandbox, tmp_path: Path
    ) -> None:
        env = _environment(fresh_sandbox, database_url, tmp_path)
        observer = create_async_engine(database_url)
        # A Leash session exactly as a replica opens one (same bounds), frozen mid-transaction
        # right after taking the audit chain's lock: what the drill's SIGSTOP caught.
        frozen_replica = create_engine(
            database_url,
            DatabaseTimeouts(
                lock_seconds=LOCK_TIMEOUT, idle_in_transaction_seconds=IDLE_IN_TRANSACTION
            ),
        )
        try:
            async with leash_process(env, console=True) as replica:
                replica_url = await serving_url(replica)
                granted = await approve_on(replica, *AGENTS[0], 6, "chain lock drill")
                async with AsyncSession(frozen_replica) as stuck:
                    await audit.lock_chain(stuck)
                    frozen_at = time.monotonic()
                    asked = await approve_on(replica, *AGENTS[1], 60, "while one is frozen")
                    answered_in = time.monotonic() - frozen_at

                    async def revoked() -> bool:
                        (found,) = await _grants(observer, [granted])
                        return found.state == GrantState.REVOKED

                    assert await eventually(revoked, within=6 + IDLE_IN_TRANSACTION + SLACK)
                    with pytest.raises(DBAPIError):  # the server cut the frozen session off
                        await stuck.exec(text("SELECT 1"))  # type: ignore[call-overload]
                ready = await readiness(replica_url)
        finally:
            (late_grant,) = await _grants(observer, [granted])
            await observer.dispose()
            await frozen_replica.dispose()

        # The frozen session was cut off by idle_in_transaction_session_timeout: the request
        # waited for it at most that long, and the due grant was revoked on time after it.
        assert asked.startswith("g-")
        assert answered_in <= IDLE_IN_TRANSACTION + SLACK
        assert late_grant.revoked_at is not None
        late = (late_grant.revoked_at - late_grant.expires_at).total_seconds()
        assert late <= IDLE_IN_TRANSACTION + SLACK
        assert ready.get("scheduler") == "leader"
        assert _deletes(fresh_sandbox)[f"leash-grant-{granted}"] == 1
