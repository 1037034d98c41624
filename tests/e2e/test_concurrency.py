"""Races on one grant: twenty approvals of one request make one cloud write, one grant and one
audit grant event; an extension whose slow cloud write loses to the expiry's revoke is undone."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import col, func, select

from bot.access.drafting import RequestInput
from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.errors import AlreadyDecidedError, GrantStateError
from bot.domain.messages import NoticeKind
from bot.domain.states import ActorKind, GrantState
from bot.store.tables import AuditEvent, Grant
from cloud.base import AppliedGrant, CloudProvider, GrantSpec, IdentityRef
from cloud.sandbox import Sandbox
from tests.e2e.helpers import audit_types, eventually, inline_policy_names
from tests.e2e.helpers import grant as read_grant
from tests.fakes.notifier import RecordingNotifier

DEV = Actor("dev", ActorKind.USER, "console")
OWNER = Actor("owner-a", ActorKind.USER, "console")
ROLE = "support-triage-agent"


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
    leash.context.providers = {"aws": counting}  # type: ignore[dict-item]
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
    async with leash.context.sessions() as session:
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


async def test_an_extension_whose_write_lands_after_the_expiry_revoke_is_undone(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    # Long enough that the extension is approved before the expiry even on a loaded machine.
    request = await leash.lifecycle.requests.submit(
        RequestInput(
            identity=ROLE, permission_set="s3-read", duration=timedelta(seconds=6), reason="race"
        ),
        actor=DEV,
    )
    approved = await leash.lifecycle.approve(request.id, actor=OWNER)
    assert approved.grant is not None
    assert approved.grant.state == GrantState.ACTIVE
    grant_id = approved.grant.id
    extension = await leash.lifecycle.requests.extend(
        grant_id, duration=timedelta(minutes=1), reason="the job is slow", actor=DEV
    )
    # The extension's PutRolePolicy reaches IAM only well after the grant's expiry.
    until_expiry = (approved.grant.expires_at - leash.context.clock.now()).total_seconds()
    slow = fresh_sandbox.moto.inject(
        "iam:PutRolePolicy",
        code="",
        delay=max(until_expiry, 0) + 3,
        late_call=True,
        match={"PolicyName": f"leash-grant-{grant_id}"},
    )
    extending = asyncio.create_task(leash.lifecycle.approve(extension.id, actor=OWNER))

    async def write_in_flight() -> bool:
        return slow.used == 1

    assert await eventually(write_in_flight, within=30)

    async def due() -> bool:
        return leash.context.clock.now() >= approved.grant.expires_at  # type: ignore[union-attr]

    assert await eventually(due, within=30)
    notifier.notices.clear()
    # The expiry timer's revoke wins: the record was never extended.
    revoked = await leash.lifecycle.grants.expire(grant_id)
    assert revoked.state == GrantState.REVOKED
    assert not extending.done()  # the extension's write has not landed yet
    with pytest.raises(GrantStateError) as refused:
        await extending

    left = [n for n in inline_policy_names(fresh_sandbox, ROLE) if n.startswith("leash-grant-")]
    assert left == []
    # The approver is told the extension did not take effect and nothing is left of it.
    assert "did not take effect" in str(refused.value), refused.value
    assert "nothing" in str(refused.value), refused.value
    assert (await read_grant(leash, grant_id)).state == GrantState.REVOKED
    kinds = await audit_types(leash, grant_id=grant_id)
    assert "grant.extended" not in kinds
    assert kinds.count("grant.revoked") == 1
    assert kinds.count("grant.extension_undone") == 1
    async with leash.context.sessions() as session:
        undone = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.event_type) == "grant.extension_undone")
            )
        ).one()
    assert undone.request_id == extension.id
    assert undone.detail["artefact_removed"] is True
    # The requester hears that the grant ended and that the extension did not take effect;
    # nobody is told the grant is active until the extension's expiry.
    told = [n.reply.text for n in notifier.to("dev")]
    assert any("expired and was revoked" in text for text in told), told
    assert any("did not take effect" in text for text in told), told
    assert notifier.of_kind(NoticeKind.GRANT_ACTIVE) == []


@pytest.mark.parametrize("rules", [{"grants": {"lease": "1s"}}], indirect=True, ids=["1s lease"])
async def test_an_apply_whose_write_lands_after_the_revoke_is_undone(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    request = await leash.lifecycle.requests.submit(
        RequestInput(
            identity=ROLE, permission_set="s3-read", duration=timedelta(minutes=10), reason="race"
        ),
        actor=DEV,
    )
    # The first apply's PutRolePolicy is held past its lease: the sweep takes the apply over.
    slow = fresh_sandbox.moto.inject(
        "iam:PutRolePolicy", code="", delay=6, late_call=True, match={"RoleName": ROLE}
    )
    approving = asyncio.create_task(leash.lifecycle.approve(request.id, actor=OWNER))

    async def write_in_flight() -> bool:
        return slow.used == 1

    assert await eventually(write_in_flight, within=30)
    async with leash.context.sessions() as session:
        grant_id = (await session.exec(select(Grant.id))).one()

    async def resumed() -> bool:
        await leash.lifecycle.sweep.run()
        return (await read_grant(leash, grant_id)).state == GrantState.ACTIVE

    assert await eventually(resumed, within=30, step=0.5)
    revoked = await leash.lifecycle.grants.revoke(grant_id, actor=DEV, reason="done")
    assert revoked.state == GrantState.REVOKED
    assert not approving.done()  # the first apply's write has not landed yet
    late = await approving
    assert late.grant is not None
    assert late.grant.state == GrantState.REVOKED

    left = [n for n in inline_policy_names(fresh_sandbox, ROLE) if n.startswith("leash-grant-")]
    assert left == []
    kinds = await audit_types(leash, grant_id=grant_id)
    assert (kinds.count("grant.applied"), kinds.count("grant.revoked")) == (1, 1), kinds
