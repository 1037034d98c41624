"""Extending an active grant: the cloud's expiry first, then the record and the timer."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.domain import log_context
from bot.domain.audit import SYSTEM
from bot.domain.errors import GrantStateError, LeashError
from bot.domain.lifecycle import notices
from bot.domain.lifecycle.context import identity_ref, move_grant
from bot.domain.lifecycle.extension_rules import check_total_length, original_request
from bot.domain.lifecycle.grant_audit import audit_grant
from bot.domain.models import AccessRequest, Grant, GrantState
from cloud.base import CloudError, GrantSpec

if TYPE_CHECKING:
    from bot.domain.lifecycle.grants import GrantFlow
    from bot.domain.lifecycle.guardrails import GuardrailFlow

log = logging.getLogger("leash.grants")


async def extend_grant(
    flow: GrantFlow, guardrails: GuardrailFlow, request: AccessRequest, grant_id: str
) -> Grant:
    """Move `grant_id`'s expiry by the request's duration, in the cloud and then the record."""
    ctx = flow.ctx
    async with ctx.sessions() as session:
        grant, identity = await flow.load(grant_id, session=session)
        original = await original_request(grant.id, session=session)
    log_context.add(identity=identity.native_id)
    if grant.state != GrantState.ACTIVE:
        raise GrantStateError(
            f"Grant {grant.id} is {grant.state}; only an active grant can be extended."
        )
    extra = timedelta(seconds=request.duration_seconds)
    if original is not None:
        # Checked again now: another extension may have been approved since this one was asked.
        check_total_length(grant, original, extra, rules=ctx.rules)
    new_expiry = grant.expires_at + extra
    spec = GrantSpec(
        grant.id,
        tuple(grant.actions),
        tuple(grant.resources),
        new_expiry,
        tuple(grant.deny_actions),
    )
    try:
        longer = grant.model_copy(update={"expires_at": new_expiry})
        await guardrails.refresh(identity, extra=[longer])
        await flow.restrictions.refresh(identity, extra=[longer])
        await ctx.provider_for(identity).grant(identity_ref(identity), spec)
    except CloudError as error:
        raise LeashError(f"The cloud refused the extension of {grant.id}: {error}") from error
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        if not await move_grant(
            session,
            grant.id,
            from_state=GrantState.ACTIVE,
            expires_at=new_expiry,
            extensions=grant.extensions + 1,
            expiry_warned=False,
        ):
            raise GrantStateError(f"Grant {grant.id} ended while it was being extended.")
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
    log.info("grant %s on %s extended until %s", grant.id, identity.name, new_expiry.isoformat())
    log_context.detached(ctx.timers.schedule_revoke, grant.id, grant.expires_at)
    await ctx.tell(notices.grant_active(grant, identity, people))
    return grant
