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

from sqlalchemy import ColumnElement, or_
from sqlmodel import col

from bot.access.extension_rules import check_total_length, original_request
from bot.access.grant_audit import audit_grant, load_grant, to_people
from bot.access.grant_cleanup import GrantCleanup
from bot.core import notices
from bot.core.context import Context, identity_ref
from bot.core.transitions import Event, grant_people, move, set_state
from bot.domain import log_context
from bot.domain.actors import SYSTEM
from bot.domain.errors import GrantStateError, LeashError
from bot.domain.states import GrantState, Machine, Outcome
from bot.store.tables import AccessRequest, Grant, Identity
from cloud.base import CloudError, GrantSpec

log = logging.getLogger("leash.grants")


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    """Not yet past its expiry, and no other extension's claim still running."""
    return (col(Grant.expires_at) > now) & or_(
        col(Grant.lease_until).is_(None), col(Grant.lease_until) < now
    )


def _held(claim: datetime) -> ColumnElement[bool]:
    """Still under this extension's claim (the move keeps it active)."""
    return col(Grant.lease_until) == claim


class GrantExtension:
    """Extends active grants; GrantFlow.extend hands approved extensions here."""

    def __init__(self, ctx: Context, cleanup: GrantCleanup) -> None:
        self._ctx = ctx
        self._cleanup = cleanup

    async def extend(self, request: AccessRequest) -> Grant:
        """Move the extended grant's expiry by the request's duration, in the cloud then the
        record."""
        assert request.extends_grant_id is not None
        with log_context.about(grant_id=request.extends_grant_id, request_id=request.id):
            return await self._extend(request, request.extends_grant_id.strip()[:16])

    async def _extend(self, request: AccessRequest, grant_id: str) -> Grant:
        now = self._ctx.clock.now()
        claim = now + self._ctx.rules.grants.lease
        grant, identity, original = await self._claim(grant_id, now=now, claim=claim)
        extra = timedelta(seconds=request.duration_seconds)
        new_expiry = grant.expires_at + extra
        try:
            if original is not None:
                # Checked again now: another extension may have been approved since this one
                # was asked.
                check_total_length(grant, original, extra, rules=self._ctx.rules)
            await self._write(grant, identity, new_expiry)
        except (LeashError, CloudError) as error:
            await self._release(grant.id, claim)
            if isinstance(error, CloudError):
                raise LeashError(
                    f"The cloud refused the extension of {grant.id}: {error}"
                ) from error
            raise
        return await self._record(request, grant, identity, new_expiry, claim)

    async def _claim(
        self, grant_id: str, *, now: datetime, claim: datetime
    ) -> tuple[Grant, Identity, AccessRequest | None]:
        """Take the active grant's claim, or say why it cannot be extended now."""
        async with self._ctx.transaction() as session:
            claimed = await set_state(
                session,
                Machine.GRANT,
                grant_id,
                from_states=GrantState.ACTIVE,
                to_state=GrantState.ACTIVE,
                where=_unclaimed(now),
                lease_until=claim,
            )
            grant, identity = await load_grant(grant_id, session=session)
            original = await original_request(grant.id, session=session)
        log_context.add(identity=identity.native_id)
        if claimed:
            return grant, identity, original
        if grant.state != GrantState.ACTIVE:
            raise GrantStateError(
                f"Grant {grant.id} is {grant.state}; only an active grant can be extended."
            )
        if grant.expires_at <= now:
            raise GrantStateError(f"Grant {grant.id} is past its expiry; ask for a new grant.")
        raise GrantStateError(f"Grant {grant.id} is being extended already; try again shortly.")

    async def _write(self, grant: Grant, identity: Identity, new_expiry: datetime) -> None:
        """Widen the exemptions to the new expiry, then rewrite the grant in the cloud."""
        longer = grant.model_copy(update={"expires_at": new_expiry})
        await self._cleanup.guardrails.refresh(identity, extra=[longer])
        await self._cleanup.restrictions.refresh(identity, extra=[longer])
        spec = GrantSpec(
            grant.id,
            tuple(grant.actions),
            tuple(grant.resources),
            new_expiry,
            tuple(grant.deny_actions),
        )
        await self._ctx.provider_for(identity).grant(identity_ref(identity), spec)

    async def _record(
        self,
        request: AccessRequest,
        grant: Grant,
        identity: Identity,
        new_expiry: datetime,
        claim: datetime,
    ) -> Grant:
        """Record the new expiry under the claim, re-arm the timer and tell; undo if it moved."""
        ctx = self._ctx
        done = await move(
            ctx,
            Machine.GRANT,
            grant.id,
            from_states=GrantState.ACTIVE,
            to_state=GrantState.ACTIVE,
            at=ctx.clock.now(),
            where=_held(claim),
            values={
                "expires_at": new_expiry,
                "extensions": grant.extensions + 1,
                "expiry_warned": False,
                "lease_until": None,
            },
            event=Event(
                SYSTEM,
                "grant.extended",
                detail={"expires_at": new_expiry.isoformat()},
                request_id=request.id,
            ),
            notice=to_people(notices.grant_active),
        )
        grant = done.row
        if not done.moved:
            raise await self._undo(request, grant, identity, new_expiry)
        log.info(
            "grant %s on %s extended until %s", grant.id, identity.name, new_expiry.isoformat()
        )
        log_context.detached(ctx.timers.schedule_revoke, grant.id, grant.expires_at)
        await done.tell()
        return grant

    async def _release(self, grant_id: str, claim: datetime) -> None:
        """Give the claim back after an extension that wrote nothing the record must follow."""
        async with self._ctx.transaction() as session:
            await set_state(
                session,
                Machine.GRANT,
                grant_id,
                from_states=GrantState.ACTIVE,
                to_state=GrantState.ACTIVE,
                where=_held(claim),
                lease_until=None,
            )

    async def _undo(
        self, request: AccessRequest, grant: Grant, identity: Identity, new_expiry: datetime
    ) -> GrantStateError:
        """The grant moved on during the write: undo what the write left, say so, return the
        error.

        `grant` is as the record says now. Still active, the claim ran out and another
        extension holds it: its write is the one that stands (and the grant is revoked at the
        recorded expiry whatever the cloud says), so nothing is deleted.
        """
        ctx = self._ctx
        if grant.state == GrantState.ACTIVE:
            return GrantStateError(
                f"The extension of grant {grant.id} took longer than its claim and did not take "
                "effect; ask again."
            )
        removed = await self._cleanup.remove_from_cloud(
            identity, grant.id, why="an extension it outlived"
        )
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
            people = await grant_people(session, grant)
        notice = notices.extension_undone(
            grant, identity, request, (*people, request.requester), removed=removed
        )
        log.warning("%s", notice.reply.text)
        await ctx.tell(notice)
        return GrantStateError(notice.reply.text)
