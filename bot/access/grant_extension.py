"""Extending an active grant: claim it, write the cloud's expiry, then the record and the timer.

The extension writes to the cloud only under its claim: a compare-and-set that takes the
active grant's `lease_until` (now + the grants lease) while no other extension holds it and the
grant is not yet past its expiry. The claim never delays a revocation: a revoke (by hand, by the
timer or by the sweep) takes the grant whatever the claim says, and the revoke wins. The
extension records its new expiry with a second compare-and-set on its own claim; when that
fails because the grant was revoked meanwhile, the extension deletes what it wrote (the
`leash-grant-<id>` artefact, and the exemptions it widened), audits `grant.extension_undone`,
and tells the requester and the approver that the extension did not take effect. An extender
that dies leaves a claim that simply runs out: the grant is revoked at its recorded expiry as
any other, and the next extension may claim it again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import col

from bot.access.extension_rules import check_total_length, original_request
from bot.access.grant_audit import audit_grant
from bot.core import notices
from bot.core.context import compare_and_set, identity_ref
from bot.domain import log_context
from bot.domain.actors import SYSTEM
from bot.domain.errors import GrantStateError, LeashError
from bot.domain.states import GrantState, Outcome
from bot.store.tables import AccessRequest, Grant, Identity
from cloud.base import CloudError, GrantSpec

if TYPE_CHECKING:
    from bot.access.grants import GrantFlow
    from bot.posture.guardrails import GuardrailFlow

log = logging.getLogger("leash.grants")


def _held(grant_id: str, claim: datetime) -> ColumnElement[bool]:
    """This grant, still active and still under this extension's claim."""
    return (
        (col(Grant.id) == grant_id)
        & (col(Grant.state) == GrantState.ACTIVE)
        & (col(Grant.lease_until) == claim)
    )


async def extend_grant(
    flow: GrantFlow, guardrails: GuardrailFlow, request: AccessRequest, grant_id: str
) -> Grant:
    """Move `grant_id`'s expiry by the request's duration, in the cloud and then the record."""
    ctx = flow.ctx
    grant_id = grant_id.strip()[:16]
    now = ctx.clock.now()
    claim = now + ctx.rules.grants.lease
    async with ctx.transaction() as session:
        claimed = await compare_and_set(
            session,
            update(Grant)
            .where(
                col(Grant.id) == grant_id,
                col(Grant.state) == GrantState.ACTIVE,
                col(Grant.expires_at) > now,
                or_(col(Grant.lease_until).is_(None), col(Grant.lease_until) < now),
            )
            .values(lease_until=claim),
        )
        grant, identity = await flow.load(grant_id, session=session)
        original = await original_request(grant.id, session=session)
    log_context.add(identity=identity.native_id)
    if not claimed:
        if grant.state != GrantState.ACTIVE:
            raise GrantStateError(
                f"Grant {grant.id} is {grant.state}; only an active grant can be extended."
            )
        if grant.expires_at <= now:
            raise GrantStateError(f"Grant {grant.id} is past its expiry; ask for a new grant.")
        raise GrantStateError(f"Grant {grant.id} is being extended already; try again shortly.")
    extra = timedelta(seconds=request.duration_seconds)
    new_expiry = grant.expires_at + extra
    try:
        if original is not None:
            # Checked again now: another extension may have been approved since this one was asked.
            check_total_length(grant, original, extra, rules=ctx.rules)
        longer = grant.model_copy(update={"expires_at": new_expiry})
        await guardrails.refresh(identity, extra=[longer])
        await flow.restrictions.refresh(identity, extra=[longer])
        spec = GrantSpec(
            grant.id,
            tuple(grant.actions),
            tuple(grant.resources),
            new_expiry,
            tuple(grant.deny_actions),
        )
        await ctx.provider_for(identity).grant(identity_ref(identity), spec)
    except (LeashError, CloudError) as error:
        await _release(flow, grant.id, claim)
        if isinstance(error, CloudError):
            raise LeashError(f"The cloud refused the extension of {grant.id}: {error}") from error
        raise
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        recorded = await compare_and_set(
            session,
            update(Grant)
            .where(_held(grant.id, claim))
            .values(
                expires_at=new_expiry,
                extensions=grant.extensions + 1,
                expiry_warned=False,
                lease_until=None,
            ),
        )
        if recorded:
            await audit_grant(
                session,
                grant,
                identity,
                actor=SYSTEM,
                event_type="grant.extended",
                at=now,
                request_id=request.id,
                detail={"expires_at": new_expiry.isoformat()},
            )
        grant, _ = await flow.load(grant.id, session=session)
        people = await flow.people(grant, session=session)
    if not recorded:
        raise await _undo(flow, request, grant, identity, new_expiry)
    log.info("grant %s on %s extended until %s", grant.id, identity.name, new_expiry.isoformat())
    log_context.detached(ctx.timers.schedule_revoke, grant.id, grant.expires_at)
    await ctx.tell(notices.grant_active(grant, identity, people))
    return grant


async def _release(flow: GrantFlow, grant_id: str, claim: datetime) -> None:
    """Give the claim back after an extension that wrote nothing the record must follow."""
    async with flow.ctx.transaction() as session:
        await compare_and_set(
            session, update(Grant).where(_held(grant_id, claim)).values(lease_until=None)
        )


async def _undo(
    flow: GrantFlow,
    request: AccessRequest,
    grant: Grant,
    identity: Identity,
    new_expiry: datetime,
) -> GrantStateError:
    """The grant moved on during the write: undo what the write left, say so, return the error.

    `grant` is as the record says now. Still active, the claim ran out and another extension
    holds it: its write is the one that stands (and the grant is revoked at the recorded
    expiry whatever the cloud says), so nothing is deleted.
    """
    ctx = flow.ctx
    if grant.state == GrantState.ACTIVE:
        return GrantStateError(
            f"The extension of grant {grant.id} took longer than its claim and did not take "
            "effect; ask again."
        )
    removed = await flow.remove_from_cloud(identity, grant.id, why="an extension it outlived")
    async with ctx.transaction() as session:
        await audit_grant(
            session,
            grant,
            identity,
            actor=SYSTEM,
            event_type="grant.extension_undone",
            at=ctx.clock.now(),
            outcome=Outcome.FAILURE,
            request_id=request.id,
            detail={
                "state": grant.state,
                "written_expiry": new_expiry.isoformat(),
                "artefact_removed": removed,
            },
        )
        people = await flow.people(grant, session=session)
    notice = notices.extension_undone(
        grant, identity, request, (*people, request.requester), removed=removed
    )
    log.warning("%s", notice.reply.text)
    await ctx.tell(notice)
    return GrantStateError(notice.reply.text)
