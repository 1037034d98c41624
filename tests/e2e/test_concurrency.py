"""Twenty approvals of one request at once: one cloud write, one grant, one audit grant event."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import func, select

from bot.app import Leash
from bot.domain.audit import Actor
from bot.domain.errors import AlreadyDecidedError
from bot.domain.lifecycle import RequestInput
from bot.domain.models import ActorKind, AuditEvent, Grant
from cloud.base import AppliedGrant, CloudProvider, GrantSpec, IdentityRef
from cloud.sandbox import Sandbox
from tests.e2e.helpers import inline_policy_names

DEV = Actor("dev", ActorKind.USER, "console")


class CountingProvider:
    """Counts the grant writes that reach the real provider (a port-level wrapper)."""

    def __init__(self, inner: CloudProvider) -> None:
        self._inner = inner
        self.name = inner.name
        self.grant_writes = 0

    async def grant(self, identity: IdentityRef, spec: GrantSpec) -> AppliedGrant:
        self.grant_writes += 1
        return await self._inner.grant(identity, spec)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


async def test_twenty_concurrent_approvals_make_one_grant(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    counting = CountingProvider(leash.providers["aws"])
    leash.lifecycle.ctx.providers = {"aws": counting}  # type: ignore[dict-item]
    request = await leash.lifecycle.requests.submit(
        RequestInput(
            identity="support-triage-agent",
            permission_set="s3-read",
            duration=timedelta(minutes=10),
            reason="race",
        ),
        actor=DEV,
    )
    approvers = ["owner-a"] * 10 + ["secops"] * 10
    outcomes = await asyncio.gather(
        *(
            leash.lifecycle.approve(
                request.id,
                actor=Actor(a, ActorKind.USER, "slack", aliases=(f"{a}@example.com",)),
            )
            for a in approvers
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(o, AlreadyDecidedError) for o in losers), losers
    assert counting.grant_writes == 1
    async with leash.lifecycle.ctx.sessions() as session:
        grants = (await session.exec(select(func.count()).select_from(Grant))).one()
        applied = (
            await session.exec(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.event_type == "grant.applied")
            )
        ).one()
        approved = (
            await session.exec(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.event_type == "request.approved")
            )
        ).one()
        refused = (
            await session.exec(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.event_type == "request.approve_refused")
            )
        ).one()
    assert (grants, applied, approved, refused) == (1, 1, 1, 19)
    assert [
        n
        for n in inline_policy_names(fresh_sandbox, "support-triage-agent")
        if n.startswith("leash-grant-")
    ] == [
        f"leash-grant-{winners[0].grant.id}"  # type: ignore[union-attr]
    ]
