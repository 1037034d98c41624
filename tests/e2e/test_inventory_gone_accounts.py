"""Identities of an account discovery no longer reaches at all are marked deleted, never
forgotten; a discovery that failed somewhere it cannot place keeps them as they were.

The remembered account is what a database kept from an earlier sandbox (with other account
ids) held: the same agents, under an account the organisation does not have.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import Leash
from bot.inventory.registry import resolve
from bot.store.tables import AuditEvent, Identity
from cloud.sandbox import Sandbox
from tests.e2e.remembered import remember_roles

GONE = "999988887777"
NAMES = ("notebook-helper-agent", "old-agent")


async def _in_gone_account(leash: Leash) -> list[Identity]:
    async with AsyncSession(leash.engine) as session:
        query = select(Identity).where(col(Identity.account) == GONE).order_by(col(Identity.name))
        return list((await session.exec(query)).all())


async def _last_refresh(leash: Leash) -> AuditEvent:
    async with AsyncSession(leash.engine) as session:
        query = (
            select(AuditEvent)
            .where(col(AuditEvent.event_type) == "inventory.refreshed")
            .order_by(col(AuditEvent.seq).desc())
        )
        found = (await session.exec(query)).first()
    assert found is not None, "no inventory.refreshed event"
    return found


async def test_an_account_no_longer_reached_has_its_identities_marked_deleted(
    leash: Leash,
) -> None:
    await remember_roles(leash, GONE, *NAMES)
    async with AsyncSession(leash.engine) as session:
        present_before = len(
            (await session.exec(select(Identity).where(col(Identity.present)))).all()
        )

    report = await leash.lifecycle.inventory.refresh()

    assert report.failures == {}
    gone = await _in_gone_account(leash)
    assert [(i.name, i.present) for i in gone] == [(n, False) for n in sorted(NAMES)]
    assert all(i.deleted_at is not None for i in gone)
    refreshed = await _last_refresh(leash)
    assert refreshed.detail["accounts_gone"] == [GONE]
    assert refreshed.detail["deleted"] == len(NAMES)
    async with AsyncSession(leash.engine) as session:
        present_after = len(
            (await session.exec(select(Identity).where(col(Identity.present)))).all()
        )
        # The name now means the one identity discovery sees; the ARN still names the other.
        found = await resolve("notebook-helper-agent", session=session)
        remembered = await resolve(
            f"arn:aws:iam::{GONE}:role/notebook-helper-agent", session=session
        )
    assert present_after == present_before - len(NAMES)
    assert found.account == "444455556666"
    assert remembered.present is False


async def test_a_failure_it_cannot_place_keeps_the_remembered_accounts(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    await remember_roles(leash, GONE, *NAMES)
    fresh_sandbox.moto.inject("organizations:ListAccounts", code="AccessDenied", status=403)

    report = await leash.lifecycle.inventory.refresh()

    assert "aws:organizations" in report.failures, report.failures
    gone = await _in_gone_account(leash)
    assert [(i.name, i.present) for i in gone] == [(n, True) for n in sorted(NAMES)]
    assert "accounts_gone" not in (await _last_refresh(leash)).detail
    async with AsyncSession(leash.engine) as session:
        member = await resolve("model-eval-agent", session=session)
    assert member.present is True  # its account was not listed this time: not deleted
