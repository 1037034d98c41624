"""Two `leash serve` replicas on one PostgreSQL database; the leader is SIGKILLed mid-way.

50 grants with short expiries are approved through both replicas' consoles, in three waves:
due before the kill (revoked by the leader), due while no one leads (the survivor must catch
up), due after the takeover (the survivor's rebuilt timers). Every grant must be revoked, each
with exactly one DeleteRolePolicy at the moto server and one grant.revoked audit event, and the
survivor must lead within 15 s of the kill.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.states import GrantState
from bot.store import audit
from bot.store.tables import AuditEvent, Grant
from cloud.sandbox import Sandbox
from tests.conftest import PG_URL
from tests.e2e.helpers import eventually
from tests.e2e.leash_process import (
    LeashProcess,
    approve_on,
    fast_policy,
    leader_and_follower,
    readiness,
)

# Agents and their owners, taken in turn: AWS caps a role's inline policies at 10,240
# characters, so 50 live grants need several roles.
AGENTS = (
    ("support-triage-agent", "owner-a"),
    ("ticket-router-agent", "owner-b"),
    ("knowledge-base-agent", "owner-a"),
    ("code-review-agent", "owner-b"),
    ("invoice-reader-agent", "owner-a"),
    ("data-pipeline-agent", "owner-b"),
)
GRANTS = 50
CREATE_BUDGET = timedelta(seconds=25)  # time to approve all 50 through two consoles
# Expiry offsets from the anchor (the end of the creation budget), by wave, and the kill.
# The second wave falls due just after the kill, before the survivor can have taken over (it
# polls its readiness every 0.2 s, so no takeover is seen in under 0.2 s).
KILL_AT = 7.0
WAVES = ((20, 1.0, 4.0), (15, KILL_AT + 0.1, KILL_AT + 1.5), (15, 22.0, 26.0))
TAKEOVER_LIMIT = 15.0


def _targets(anchor: datetime) -> list[datetime]:
    """Each grant's intended expiry: wave after wave, evenly spread within the wave."""
    targets = []
    for count, first, last in WAVES:
        step = (last - first) / max(count - 1, 1)
        targets += [anchor + timedelta(seconds=first + step * n) for n in range(count)]
    assert len(targets) == GRANTS
    return targets


async def _approve(process: LeashProcess, expires: datetime, n: int) -> str:
    """Request and approve one grant on this replica's console; return its id."""
    agent, owner = AGENTS[n % len(AGENTS)]
    seconds = max(1, math.ceil((expires - datetime.now(UTC)).total_seconds()))
    return await approve_on(process, agent, owner, seconds, f"drill {n}")


if PG_URL:  # replicas share PostgreSQL; this case exists only when a test database is set

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    async def test_the_survivor_revokes_every_grant_exactly_once(
        database_url: str, fresh_sandbox: Sandbox, tmp_path: Path
    ) -> None:
        env = {
            **os.environ,
            **fresh_sandbox.env,
            "LEASH_DATABASE_URL": database_url,
            "LEASH_POLICY_FILE": str(fast_policy(tmp_path)),
            "LEASH_CLOUD": "aws",
            "LEASH_PORT": "0",
        }
        engine = create_async_engine(database_url)
        try:
            async with leader_and_follower(env, console=True) as (
                (leader, leader_url),
                (follower, follower_url),
            ):
                assert (await readiness(leader_url))["scheduler"] == "leader"
                assert str((await readiness(follower_url))["scheduler"]).startswith("follower")
                fresh_sandbox.moto.clear_calls()

                anchor = datetime.now(UTC) + CREATE_BUDGET
                replicas = (leader, follower)
                grant_ids = [
                    await _approve(replicas[n % 2], expires, n)
                    for n, expires in enumerate(_targets(anchor))
                ]
                assert len(set(grant_ids)) == GRANTS

                await asyncio.sleep(
                    max(0.0, (anchor - datetime.now(UTC)).total_seconds() + KILL_AT)
                )
                leader.send_signal(signal.SIGKILL)
                killed_at = datetime.now(UTC)
                await leader.wait()

                async def follower_leads() -> bool:
                    return (await readiness(follower_url))["scheduler"] == "leader"

                assert await eventually(follower_leads, within=TAKEOVER_LIMIT, step=0.2)
                took_over = datetime.now(UTC) - killed_at

                async def all_revoked() -> bool:
                    async with AsyncSession(engine) as session:
                        open_grants = await session.exec(
                            select(func.count())
                            .select_from(Grant)
                            .where(col(Grant.id).in_(grant_ids))
                            .where(col(Grant.state) != GrantState.REVOKED)
                        )
                        return open_grants.one() == 0

                last_expiry = anchor + timedelta(seconds=WAVES[-1][2])
                wait = (last_expiry - datetime.now(UTC)).total_seconds() + 10
                assert await eventually(all_revoked, within=wait, step=0.5)

            assert took_over <= timedelta(seconds=TAKEOVER_LIMIT)
            async with AsyncSession(engine) as session:
                grants = (
                    await session.exec(select(Grant).where(col(Grant.id).in_(grant_ids)))
                ).all()
                events = (
                    await session.exec(
                        select(AuditEvent.grant_id, AuditEvent.event_type).where(
                            col(AuditEvent.grant_id).in_(grant_ids)
                        )
                    )
                ).all()
                chain = await audit.verify(
                    session=session, key=audit.AuditKey.of(os.environ["LEASH_AUDIT_KEY"])
                )
            assert chain.ok, chain

            # The three waves really happened: some due before the kill, some while nobody led.
            expiries = sorted(g.expires_at for g in grants)
            assert any(e < killed_at for e in expiries)
            assert any(killed_at <= e < killed_at + took_over for e in expiries)
            assert any(e > killed_at + took_over for e in expiries)

            deletes = Counter(
                call.params.get("PolicyName", "")
                for call in fresh_sandbox.moto.calls()
                if call.by_leash and call.operation == "DeleteRolePolicy"
            )
            assert {g: deletes[f"leash-grant-{g}"] for g in grant_ids} == dict.fromkeys(
                grant_ids, 1
            )
            per_grant = Counter(events)
            for grant_id in grant_ids:
                assert per_grant[(grant_id, "grant.applied")] == 1, grant_id
                assert per_grant[(grant_id, "grant.revoked")] == 1, grant_id
            assert all(g.state == GrantState.REVOKED and g.revoked_at for g in grants)
        finally:
            await engine.dispose()
