"""The rest of the lifecycle against the moto server: reminders, escalation, expiry, retries,
extension, break-glass, ownership, tokens and hand revocation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.access.drafting import RequestInput
from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.errors import NotAllowedError
from bot.domain.messages import NoticeKind
from bot.domain.states import ActorKind, GrantState, RequestState
from bot.store.tables import AccessRequest, Approval, AuditEvent, Grant
from cloud.aws import AwsProvider
from cloud.sandbox import Sandbox
from tests.e2e.helpers import audit_types, grant, inline_policy, inline_policy_names
from tests.fakes.notifier import RecordingNotifier


def user(name: str) -> Actor:
    return Actor(name, ActorKind.USER, "console")


async def ask(
    leash: Leash,
    identity: str = "support-triage-agent",
    *,
    who: str = "dev",
    permission_set: str = "s3-read",
    minutes: float = 10,
) -> AccessRequest:
    return await leash.lifecycle.requests.submit(
        RequestInput(
            identity=identity,
            permission_set=permission_set,
            duration=timedelta(minutes=minutes),
            reason="testing the lifecycle",
        ),
        actor=user(who),
    )


async def events(leash: Leash, event_type: str) -> list[AuditEvent]:
    async with leash.context.sessions() as session:
        return list(
            (
                await session.exec(
                    select(AuditEvent).where(col(AuditEvent.event_type) == event_type)
                )
            ).all()
        )


@pytest.mark.parametrize(
    "rules",
    [{"requests": {"decide_within": "8s", "remind_after": "1s", "escalate_after": "1s"}}],
    indirect=True,
    ids=["fast timings"],
)
async def test_remind_then_escalate_to_backup_then_admins_then_expire(
    leash: Leash, notifier: RecordingNotifier
) -> None:
    reply = await leash.handler.handle_text(
        "owner set support-triage-agent owner-a backup owner-b team support-bots",
        actor=user("owner-a"),
    )
    assert reply.ok, reply.text
    request = await ask(leash)
    deadlines = leash.lifecycle.deadlines
    assert await deadlines.nudge_due() == 0
    await asyncio.sleep(1.1)
    assert await deadlines.nudge_due() == 1
    await asyncio.sleep(1.1)
    assert await deadlines.nudge_due() == 1
    await asyncio.sleep(1.1)
    assert await deadlines.nudge_due() == 1
    await asyncio.sleep(1.1)
    assert await deadlines.nudge_due() == 0  # nobody left to escalate to
    nudges = [(n.kind, n.recipients) for n in notifier.notices if n.request_id == request.id]
    assert nudges == [
        (NoticeKind.APPROVAL_NEEDED, ("owner-a",)),
        (NoticeKind.REMINDER, ("owner-a",)),
        (NoticeKind.ESCALATED, ("owner-b",)),
        (NoticeKind.ESCALATED, ("secops",)),
    ]
    await asyncio.sleep(max(0.0, (request.decide_by - leash.context.clock.now()).total_seconds()))
    assert await deadlines.expire_due() == 1
    assert await deadlines.expire_due() == 0
    expired = notifier.of_kind(NoticeKind.REQUEST_EXPIRED)
    assert len(expired) == 1
    assert set(expired[0].recipients) == {"dev", "owner-a", "owner-b", "secops"}
    async with leash.context.sessions() as session:
        stored = await session.get(AccessRequest, request.id)
    assert stored is not None
    assert stored.state == RequestState.EXPIRED
    assert len(await events(leash, "request.expired")) == 1


async def test_failing_revocation_is_retried_then_irrevocable_and_alerted(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    request = await ask(leash, minutes=0.05)  # 3 seconds
    result = await leash.lifecycle.approve(request.id, actor=user("owner-a"))
    assert result.grant is not None
    grant_id = result.grant.id
    real = leash.context.providers
    # The cloud becomes unreachable: a real provider pointed at a closed port, no SDK retries.
    leash.context.providers = {
        "aws": AwsProvider(
            session_factory=fresh_sandbox.session, endpoint_url="http://127.0.0.1:9", max_attempts=1
        )
    }
    await asyncio.sleep(3.1)
    states = []
    for _ in range(3):
        await leash.lifecycle.sweep.run()
        states.append((await grant(leash, grant_id)).state)
        await asyncio.sleep(2.1)  # past the backoff (1 s, then 2 s)
    assert states == [GrantState.REVOKE_FAILED, GrantState.REVOKE_FAILED, GrantState.IRREVOCABLE]
    alert = notifier.of_kind(NoticeKind.IRREVOCABLE)
    assert len(alert) == 1
    assert set(alert[0].recipients) == {"dev", "owner-a", "secops"}
    assert (
        inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{grant_id}") is not None
    )
    # A day later the cloud is back: the daily retry removes it.
    leash.context.providers = real
    async with leash.context.transaction() as session:
        await session.exec(
            update(Grant)
            .where(col(Grant.id) == grant_id)
            .values(next_attempt_at=leash.context.clock.now())
        )
    await leash.lifecycle.sweep.run()
    assert (await grant(leash, grant_id)).state == GrantState.REVOKED
    assert inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{grant_id}") is None
    assert [e.event_type for e in await events(leash, "grant.revoked")] == ["grant.revoked"]


async def test_cloud_refusal_fails_the_grant_and_leaves_nothing(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    iam = fresh_sandbox.session().client("iam", endpoint_url=fresh_sandbox.endpoint_url)
    padding = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"'
        + ("arn:aws:s3:::" + "x" * 10000)
        + '"}]}'
    )
    iam.put_role_policy(RoleName="support-triage-agent", PolicyName="big", PolicyDocument=padding)
    request = await ask(leash)
    result = await leash.lifecycle.approve(request.id, actor=user("owner-a"))
    assert result.grant is not None
    assert result.grant.state == GrantState.FAILED
    assert "10" in (result.grant.last_error or "")
    assert [
        n
        for n in inline_policy_names(fresh_sandbox, "support-triage-agent")
        if n.startswith("leash-")
    ] == []
    failed = notifier.of_kind(NoticeKind.GRANT_FAILED)
    assert len(failed) == 1
    assert set(failed[0].recipients) == {"dev", "owner-a"}
    assert len(await events(leash, "grant.apply_failed")) == 1


async def test_extension_moves_the_cloud_expiry(leash: Leash, fresh_sandbox: Sandbox) -> None:
    request = await ask(leash)
    first = await leash.lifecycle.approve(request.id, actor=user("owner-a"))
    assert first.grant is not None
    before = first.grant.expires_at
    reply = await leash.handler.handle_text(
        f"extend {first.grant.id} 15m because the job is slow", actor=user("dev")
    )
    assert reply.ok, reply.text
    async with leash.context.sessions() as session:
        extension = (
            await session.exec(
                select(AccessRequest).where(col(AccessRequest.extends_grant_id) == first.grant.id)
            )
        ).one()
    second = await leash.lifecycle.approve(extension.id, actor=user("owner-a"))
    assert second.grant is not None
    assert second.grant.id == first.grant.id
    assert second.grant.expires_at == before + timedelta(minutes=15)
    document = inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{first.grant.id}")
    assert document is not None
    allow = next(s for s in document["Statement"] if s["Effect"] == "Allow")
    assert allow["Condition"]["DateLessThan"]["aws:CurrentTime"].startswith(
        second.grant.expires_at.strftime("%Y-%m-%dT%H:%M:%S")
    )
    async with leash.context.sessions() as session:
        assert len((await session.exec(select(Grant))).all()) == 1


async def test_an_extension_of_a_grant_that_ended_is_not_approved(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    first = await leash.lifecycle.approve((await ask(leash)).id, actor=user("owner-a"))
    assert first.grant is not None
    extension = await leash.lifecycle.requests.extend(
        first.grant.id, duration=timedelta(minutes=15), reason="the job is slow", actor=user("dev")
    )
    released = await leash.handler.handle_text(f"revoke {first.grant.id}", actor=user("dev"))
    assert released.ok, released.text

    reply = await leash.handler.handle_text(f"approve {extension.id}", actor=user("owner-a"))
    assert not reply.ok
    assert f"Grant {first.grant.id} is revoked: its extension can no longer be approved" in (
        reply.text
    )
    async with leash.context.sessions() as session:
        stored = await session.get(AccessRequest, extension.id)
        assert stored is not None
        assert stored.state == RequestState.PENDING  # never recorded as approved
        approvals = select(Approval).where(col(Approval.request_id) == extension.id)
        assert (await session.exec(approvals)).all() == []
    assert "request.approve_refused" in await audit_types(leash)
    assert (
        inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{first.grant.id}")
        is None
    )


async def test_break_glass_needs_two_distinct_approvers(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    request = await ask(leash, permission_set="break-glass-admin", minutes=30)
    assert request.tier == "break_glass"
    assert request.approvals_required == 2
    first = await leash.lifecycle.approve(request.id, actor=user("owner-a"))
    assert first.grant is None
    with pytest.raises(NotAllowedError, match="already approved"):
        await leash.lifecycle.approve(request.id, actor=user("owner-a"))
    second = await leash.lifecycle.approve(request.id, actor=user("secops"))
    assert second.grant is not None
    assert second.grant.state == GrantState.ACTIVE
    document = inline_policy(
        fresh_sandbox, "support-triage-agent", f"leash-grant-{second.grant.id}"
    )
    assert document is not None
    assert not [s for s in document["Statement"] if s["Effect"] == "Deny"]  # "*" covers persistence


async def test_escalation_tier_goes_to_admins_only(leash: Leash) -> None:
    request = await ask(leash, permission_set="pass-role", minutes=30)
    assert request.tier == "escalation"
    assert request.approvers == ["secops"]
    with pytest.raises(NotAllowedError):
        await leash.lifecycle.approve(request.id, actor=user("owner-a"))
    assert (await leash.lifecycle.approve(request.id, actor=user("secops"))).grant is not None


@pytest.mark.parametrize(
    ("who", "allowed"),
    [("dev", True), ("owner-a", True), ("secops", True), ("owner-b", False)],
    ids=["requester", "owner", "admin", "stranger"],
)
async def test_who_may_revoke_by_hand(
    leash: Leash, fresh_sandbox: Sandbox, who: str, allowed: bool
) -> None:
    approved = await leash.lifecycle.approve((await ask(leash)).id, actor=user("owner-a"))
    assert approved.grant is not None
    reply = await leash.handler.handle_text(f"revoke {approved.grant.id}", actor=user(who))
    assert reply.ok is allowed, reply.text
    present = inline_policy(
        fresh_sandbox, "support-triage-agent", f"leash-grant-{approved.grant.id}"
    )
    assert (present is None) is allowed
    refused = await events(leash, "grant.revoke_refused")
    assert len(refused) == (0 if allowed else 1)


async def test_ownership_claim_and_change_rules(leash: Leash) -> None:
    say = leash.handler.handle_text
    shown = await say("owner show forecast-agent", actor=user("dev"))
    assert "has no owner" in shown.text
    # Anyone's claim of an unowned identity is a proposal an admin confirms.
    proposed = await say("owner set forecast-agent dev team forecasting", actor=user("dev"))
    assert proposed.ok, proposed.text
    assert "Proposed dev as the owner of forecast-agent" in proposed.text
    stolen = await say("owner set forecast-agent owner-b", actor=user("owner-b"))
    assert not stolen.ok
    assert "already claimed by dev; an admin decides" in stolen.text
    assert (await say("owner set forecast-agent owner-b", actor=user("secops"))).ok
    shown = await say("owner show forecast-agent", actor=user("dev"))
    assert shown.text == "forecast-agent is owned by owner-b"
    stolen = await say("owner set forecast-agent dev", actor=user("dev"))
    assert "owned by owner-b; only they or an admin" in stolen.text
    owns = await say("owns owner-b", actor=user("dev"))
    assert "forecast-agent" in "\n".join(owns.lines)
    assert [e.event_type for e in await events(leash, "owner.proposed")] == ["owner.proposed"]
    assert [e.event_type for e in await events(leash, "owner.claimed")] == ["owner.claimed"]
    assert len(await events(leash, "owner.set")) == 0
    assert len(await events(leash, "owner.refused")) == 2


async def test_tokens_are_for_owners_shown_once_and_revocable(leash: Leash) -> None:
    refused = await leash.handler.handle_text("token issue support-triage-agent", actor=user("dev"))
    assert not refused.ok
    issued = await leash.handler.handle_text(
        "token issue support-triage-agent", actor=user("owner-a")
    )
    assert issued.ok
    token = issued.lines[0]
    assert token.startswith("lsh_")
    identity = await leash.lifecycle.tokens.authenticate(token)
    assert identity is not None
    assert identity.name == "support-triage-agent"
    async with leash.context.sessions() as session:
        stored = [e.detail for e in (await session.exec(select(AuditEvent))).all()]
    assert token not in repr(stored)
    revoked = await leash.handler.handle_text(
        "token revoke support-triage-agent", actor=user("owner-a")
    )
    assert revoked.ok
    assert await leash.lifecycle.tokens.authenticate(token) is None


async def test_inventory_records_every_seeded_agent_with_tag_owners(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    listed = await leash.handler.handle_text("identities agent", actor=user("dev"))
    names = {line.split()[0] for line in listed.lines}
    expected = {i.name for i in fresh_sandbox.identities if i.agent}
    assert expected <= names
    assert "AWSReservedSSO_Admin_abc" not in names
    for seeded in fresh_sandbox.identities:
        if seeded.agent:
            shown = await leash.handler.handle_text(f"owner show {seeded.name}", actor=user("dev"))
            expected_text = f"is owned by {seeded.owner}" if seeded.owner else "has no owner"
            assert expected_text in shown.text, (seeded.name, shown.text)


async def test_reconcile_removes_orphaned_artefacts_and_keeps_live_ones(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    live = await leash.lifecycle.approve((await ask(leash)).id, actor=user("owner-a"))
    assert live.grant is not None
    iam = fresh_sandbox.session().client("iam", endpoint_url=fresh_sandbox.endpoint_url)
    orphan = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
    )
    iam.put_role_policy(
        RoleName="ticket-router-agent", PolicyName="leash-grant-g-orphan01", PolicyDocument=orphan
    )
    assert await leash.lifecycle.sweep.reconcile() == 1
    assert "leash-grant-g-orphan01" not in inline_policy_names(fresh_sandbox, "ticket-router-agent")
    assert inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{live.grant.id}")
    assert [e.grant_id for e in await events(leash, "grant.orphan_removed")] == ["g-orphan01"]
    assert await leash.lifecycle.sweep.reconcile() == 0
