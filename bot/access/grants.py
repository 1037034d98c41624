"""Grants: apply in the cloud, revoke on time, retry (extensions in grant_extension.py).

Cloud writes happen under the grant's claim (`applying` or `revoking`, with a `lease_until` the
sweep takes over once it runs out); an apply whose compare-and-set finds that the grant failed
or ended meanwhile deletes what it wrote, and a failed apply never deletes behind another
process's successful apply of the same grant.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.access.controls import read_controls
from bot.access.crash_points import crash_point
from bot.access.grant_audit import audit_grant
from bot.access.grant_composition import GrantComposition, spec_of
from bot.access.grant_extension import extend_grant
from bot.core import notices
from bot.core.authorizing import check, identity_facts, requester_keys
from bot.core.context import Context, compare_and_set, identity_ref, move_grant
from bot.core.persons import resolve
from bot.domain import log_context
from bot.domain.actors import SYSTEM, Actor
from bot.domain.authority import Verb
from bot.domain.errors import GrantStateError, LeashError, UnknownGrantError
from bot.domain.handles import keys_for
from bot.domain.states import GrantState, Outcome
from bot.posture.guardrails import GuardrailFlow
from bot.posture.restriction_exemptions import RestrictionExemptions
from bot.store.tables import AccessRequest, Grant, Identity, Ownership
from cloud.base import AppliedGrant, CloudError

log = logging.getLogger("leash.grants")

# A timer may fire a hair before the expiry it was armed for; that still counts as due.
TIMER_SLACK = timedelta(seconds=1)
_REVOCABLE = (GrantState.ACTIVE, GrantState.REVOKE_FAILED, GrantState.IRREVOCABLE)


def _claimable(
    grant_id: str, states: tuple[GrantState, ...], lease_state: GrantState, now: datetime
) -> ColumnElement[bool]:
    """This grant, in one of `states`, or in `lease_state` with its lease run out."""
    return (col(Grant.id) == grant_id) & or_(
        col(Grant.state).in_(states),
        (col(Grant.state) == lease_state) & (col(Grant.lease_until) < now),
    )


class GrantFlow:
    """Moves a Grant between its states; the cloud is always called outside a transaction."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._guardrails = GuardrailFlow(ctx)
        self._restrictions = RestrictionExemptions(ctx)
        self._composition = GrantComposition(ctx)

    @property
    def ctx(self) -> Context:
        return self._ctx

    @property
    def restrictions(self) -> RestrictionExemptions:
        return self._restrictions

    async def close_exemption(self, identity: Identity, grant_id: str) -> None:
        """Restore the full guardrail and restriction denies once a grant is gone (both also
        lapse by themselves)."""
        await self._restrictions.close(identity, grant_id)
        try:
            await self._guardrails.refresh(identity, without=grant_id)
        except CloudError:
            log.exception(
                "could not close the guardrail exemption of grant %s on %s; it lapses at the "
                "grant's expiry and the nightly pass rewrites it",
                grant_id,
                identity.name,
            )

    async def remove_from_cloud(self, identity: Identity, grant_id: str, *, why: str) -> bool:
        """Delete a write that must not stand and close its exemptions; False if it stays."""
        try:
            await self._ctx.provider_for(identity).revoke(identity_ref(identity), grant_id)
            removed = True
        except CloudError:
            log.exception(
                "could not remove grant %s from %s after %s; reconcile removes it",
                grant_id,
                identity.name,
                why,
            )
            removed = False
        await self.close_exemption(identity, grant_id)
        return removed

    async def load(self, grant_id: str, *, session: AsyncSession) -> tuple[Grant, Identity]:
        grant = await session.get(Grant, grant_id.strip()[:16])
        if grant is None:
            raise UnknownGrantError(f"There is no grant '{grant_id[:20]}'.")
        identity = await session.get(Identity, grant.identity_id)
        assert identity is not None
        return grant, identity

    async def people(self, grant: Grant, *, session: AsyncSession) -> tuple[str, ...]:
        ownership = await session.get(Ownership, grant.identity_id)
        people = [grant.requester]
        if ownership and ownership.primary_owner:
            people.append(ownership.primary_owner)
        return tuple(dict.fromkeys(people))

    async def apply(self, grant_id: str) -> Grant:
        """Write the grant to the cloud and mark it active (or failed, cleaning up)."""
        with log_context.about(grant_id=grant_id):
            return await self._apply(grant_id)

    async def _apply(self, grant_id: str) -> Grant:
        ctx = self._ctx
        async with ctx.sessions() as session:
            grant, identity = await self.load(grant_id, session=session)
            # The guardrail, restriction and other grants it must fit with, in the same read.
            controls = await read_controls(session, identity.id, now=ctx.clock.now())
        log_context.add(request_id=grant.request_id, identity=identity.native_id)
        # Its persistence denies leave out what the identity's other live grants approved.
        denies = await self._composition.denies_for(grant, identity, controls)
        if set(denies) != set(grant.deny_actions):
            async with ctx.transaction() as session:
                await move_grant(
                    session, grant.id, from_state=GrantState.APPLYING, deny_actions=list(denies)
                )
        spec = spec_of(grant, denies)
        provider = ctx.provider_for(identity)
        try:
            # The guardrail's exemption opens first: a grant behind a deny would be useless.
            await self._guardrails.refresh(identity, extra=[grant], controls=controls)
            # And the restriction's, when it denies what the grant approves.
            await self._restrictions.refresh(identity, extra=[grant], controls=controls)
            applied = await provider.grant(identity_ref(identity), spec)
        except CloudError as error:
            return await self._apply_failed(grant, identity, error)
        crash_point("granted-in-cloud", grant_id=grant.id)
        active = await self._activate(grant, identity, applied)
        # The others no longer deny what it opens.
        await self._composition.recompose(identity, changed=active)
        return active

    async def adopt(self, grant_id: str, applied: AppliedGrant) -> Grant:
        """Record as active a grant a dead process wrote to the cloud but never recorded."""
        with log_context.about(grant_id=grant_id):
            async with self._ctx.sessions() as session:
                grant, identity = await self.load(grant_id, session=session)
            return await self._activate(grant, identity, applied, adopted=True)

    async def _activate(
        self, grant: Grant, identity: Identity, applied: AppliedGrant, *, adopted: bool = False
    ) -> Grant:
        ctx = self._ctx
        now = ctx.clock.now()
        async with ctx.transaction() as session:
            recorded = await move_grant(
                session,
                grant.id,
                from_state=GrantState.APPLYING,
                state=GrantState.ACTIVE,
                applied_at=now,
                artefact=applied.artefact,
                mechanism=applied.mechanism,
                lease_until=None,
            )
            if recorded:
                await audit_grant(
                    session,
                    grant,
                    identity,
                    actor=SYSTEM,
                    event_type="grant.applied",
                    at=now,
                    detail={
                        "artefact": applied.artefact,
                        "mechanism": applied.mechanism,
                        "actions": grant.actions,
                        "resources": grant.resources,
                        "expires_at": grant.expires_at.isoformat(),
                        **({"adopted": True} if adopted else {}),
                    },
                )
            grant, _ = await self.load(grant.id, session=session)
            people = await self.people(grant, session=session)
        if not recorded:
            # Another process took the claim over. Its apply standing, the write is the same
            # grant's; the grant failed or ended meanwhile, this late write must not outlive it.
            if grant.state != GrantState.ACTIVE:
                await self.remove_from_cloud(identity, grant.id, why="a late apply")
            return grant
        log.info(
            "grant %s applied to %s (%s) until %s",
            grant.id,
            identity.name,
            applied.mechanism,
            grant.expires_at.isoformat(),
        )
        crash_point("grant-committed", grant_id=grant.id)
        log_context.detached(ctx.timers.schedule_revoke, grant.id, grant.expires_at)
        crash_point("timer-armed", grant_id=grant.id)
        await ctx.tell(notices.grant_active(grant, identity, people))
        return grant

    async def _apply_failed(self, grant: Grant, identity: Identity, error: CloudError) -> Grant:
        ctx = self._ctx
        log.warning("grant %s on %s failed: %s", grant.id, identity.name, error)
        now = ctx.clock.now()
        async with ctx.transaction() as session:
            recorded = await move_grant(
                session,
                grant.id,
                from_state=GrantState.APPLYING,
                state=GrantState.FAILED,
                last_error=str(error)[:2000],
                lease_until=None,
            )
            if recorded:
                await audit_grant(
                    session,
                    grant,
                    identity,
                    actor=SYSTEM,
                    event_type="grant.apply_failed",
                    at=now,
                    outcome=Outcome.FAILURE,
                    detail={"error": str(error)[:500]},
                )
            grant, _ = await self.load(grant.id, session=session)
            people = await self.people(grant, session=session)
        # A partial write must not outlive the failure, unless another process's apply of the
        # same grant succeeded meanwhile: then the artefact is that grant's, live and recorded.
        if grant.state != GrantState.ACTIVE:
            await self.remove_from_cloud(identity, grant.id, why="a failed apply")
        if recorded:
            await ctx.tell(notices.grant_failed(grant, identity, people))
        return grant

    async def revoke(
        self, grant_id: str, *, actor: Actor = SYSTEM, reason: str = "expired"
    ) -> Grant:
        """Remove a grant from the cloud; retry with backoff, then mark it irrevocable."""
        # A revoke timer runs in whatever context armed it: it names its own grant.
        with log_context.about(grant_id=grant_id[:16]):
            if actor is not SYSTEM:
                actor = await resolve(self._ctx, actor)
            return await self._revoke(grant_id, actor=actor, reason=reason)

    async def expire(self, grant_id: str) -> Grant:
        """The timer at a grant's expiry: revoke it if, by the record, it is due.

        Another replica may have extended the grant since this timer was armed; then the
        timer is re-armed for the new expiry instead.
        """
        with log_context.about(grant_id=grant_id[:16]):
            grant = await self._revoke(grant_id, actor=SYSTEM, reason="expired", due_only=True)
        if grant.state == GrantState.ACTIVE and grant.expires_at > self._ctx.clock.now():
            log_context.detached(self._ctx.timers.schedule_revoke, grant.id, grant.expires_at)
        return grant

    async def _revoke(
        self, grant_id: str, *, actor: Actor, reason: str, due_only: bool = False
    ) -> Grant:
        ctx = self._ctx
        now = ctx.clock.now()
        try:
            async with ctx.transaction() as session:
                grant, identity = await self.load(grant_id, session=session)
                log_context.add(request_id=grant.request_id, identity=identity.native_id)
                if actor is not SYSTEM:
                    await self._check_may_revoke(grant, identity, actor=actor, session=session)
                claimable = _claimable(grant.id, _REVOCABLE, GrantState.REVOKING, now)
                if due_only:
                    claimable &= col(Grant.expires_at) <= now + TIMER_SLACK
                claimed = await compare_and_set(
                    session,
                    update(Grant)
                    .where(claimable)
                    .values(state=GrantState.REVOKING, lease_until=now + ctx.rules.grants.lease),
                )
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="grant.revoke_refused", grant_id=grant_id[:16]
            ) from None
        if not claimed:
            if actor is not SYSTEM and grant.state in (GrantState.REVOKED, GrantState.FAILED):
                raise GrantStateError(f"Grant {grant.id} is already {grant.state}.")
            return grant
        log_context.detached(ctx.timers.cancel_revoke, grant.id)
        crash_point("revoke-claimed", grant_id=grant.id)
        try:
            existed = await ctx.provider_for(identity).revoke(identity_ref(identity), grant.id)
        except CloudError as error:
            return await self._revoke_failed(grant, identity, error)
        crash_point("revoked-in-cloud", grant_id=grant.id)
        await self.close_exemption(identity, grant.id)
        return await self._revoked(grant, identity, actor=actor, reason=reason, existed=existed)

    async def _check_may_revoke(
        self, grant: Grant, identity: Identity, *, actor: Actor, session: AsyncSession
    ) -> None:
        """The requester, the identity's owners, its agent or an admin (bot.domain.authority)."""
        original = await session.get(AccessRequest, grant.request_id)
        facts = identity_facts(identity, await session.get(Ownership, identity.id), self._ctx.rules)
        requester = requester_keys(original) if original else keys_for([grant.requester])
        check(Verb.REVOKE, actor, replace(facts, requester=requester))

    async def _revoked(
        self, grant: Grant, identity: Identity, *, actor: Actor, reason: str, existed: bool
    ) -> Grant:
        ctx = self._ctx
        now = ctx.clock.now()
        async with ctx.transaction() as session:
            if not await move_grant(
                session,
                grant.id,
                from_state=GrantState.REVOKING,
                state=GrantState.REVOKED,
                revoked_at=now,
                revoked_by=actor.name,
                lease_until=None,
                next_attempt_at=None,
            ):
                current, _ = await self.load(grant.id, session=session)
                return current
            await audit_grant(
                session,
                grant,
                identity,
                actor=actor,
                event_type="grant.revoked",
                at=now,
                detail={"reason": reason, "artefact_found": existed},
            )
            grant, _ = await self.load(grant.id, session=session)
            people = await self.people(grant, session=session)
        log.info(
            "grant %s revoked from %s (%s, by %s)", grant.id, identity.name, reason, actor.name
        )
        crash_point("revoke-committed", grant_id=grant.id)
        await ctx.tell(notices.revoked(grant, identity, people))
        # The others deny again what it opened.
        await self._composition.recompose(identity, changed=grant)
        return grant

    async def _revoke_failed(self, grant: Grant, identity: Identity, error: CloudError) -> Grant:
        ctx = self._ctx
        timings = ctx.rules.grants
        now = ctx.clock.now()
        attempts = grant.attempts + 1
        final = attempts >= timings.revoke_attempts
        state = GrantState.IRREVOCABLE if final else GrantState.REVOKE_FAILED
        delay = (
            timings.irrevocable_retry if final else timings.revoke_backoff * (2 ** (attempts - 1))
        )
        async with ctx.transaction() as session:
            if not await move_grant(
                session,
                grant.id,
                from_state=GrantState.REVOKING,
                state=state,
                attempts=attempts,
                next_attempt_at=now + delay,
                last_error=str(error)[:2000],
                lease_until=None,
            ):
                current, _ = await self.load(grant.id, session=session)
                return current
            await audit_grant(
                session,
                grant,
                identity,
                actor=SYSTEM,
                event_type=f"grant.{state}",
                at=now,
                outcome=Outcome.FAILURE,
                detail={"attempt": attempts, "error": str(error)[:500]},
            )
            grant, _ = await self.load(grant.id, session=session)
            people = await self.people(grant, session=session)
        if final:
            await ctx.tell(
                notices.irrevocable(grant, identity, people + tuple(sorted(ctx.rules.admins)))
            )
        return grant

    async def extend(self, request: AccessRequest) -> Grant:
        """Apply an approved extension: rewrite the cloud expiry, then the record."""
        assert request.extends_grant_id is not None
        with log_context.about(grant_id=request.extends_grant_id, request_id=request.id):
            return await extend_grant(self, self._guardrails, request, request.extends_grant_id)
