"""Grants: apply in the cloud, revoke on time, retry (extensions in grant_extension.py).

Cloud writes happen under the grant's claim (`applying` or `revoking`, with a `lease_until` the
sweep takes over once it runs out); an apply whose compare-and-set finds that the grant failed
or ended meanwhile deletes what it wrote, and a failed apply never deletes behind another
process's successful apply of the same grant. Every move of a grant's state goes through
bot.core.transitions, checked against the transition table of bot.domain.states.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.access.controls import read_controls
from bot.access.grant_audit import load_grant, to_people
from bot.access.grant_cleanup import GrantCleanup
from bot.access.grant_composition import GrantComposition, spec_of
from bot.access.grant_extension import GrantExtension
from bot.core import notices
from bot.core.authorizing import check, identity_facts, requester_keys
from bot.core.context import Context, identity_ref
from bot.core.persons import resolve
from bot.core.transitions import Event, grant_people, move, set_state
from bot.domain import log_context
from bot.domain.actors import SYSTEM, Actor
from bot.domain.authority import Verb
from bot.domain.errors import GrantStateError, LeashError
from bot.domain.handles import keys_for
from bot.domain.states import GrantState, Machine, Outcome
from bot.store.tables import AccessRequest, Grant, Identity, Ownership
from cloud.base import AppliedGrant, CloudError

log = logging.getLogger("leash.grants")

# A timer may fire a hair before the expiry it was armed for; that still counts as due.
TIMER_SLACK = timedelta(seconds=1)
# What a revocation claims: these, or a `revoking` grant whose claim ran out.
_REVOCABLE = (GrantState.ACTIVE, GrantState.REVOKE_FAILED, GrantState.IRREVOCABLE)


def _lease_out(now: datetime) -> ColumnElement[bool]:
    """A `revoking` grant only once its lease ran out; the others whatever their lease."""
    return (col(Grant.state) != GrantState.REVOKING) | (col(Grant.lease_until) < now)


class GrantFlow:
    """Moves a Grant between its states; the cloud is always called outside a transaction."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._cleanup = GrantCleanup(ctx)
        self._composition = GrantComposition(ctx)
        self._extension = GrantExtension(ctx, self._cleanup)

    async def close_exemption(self, identity: Identity, grant_id: str) -> None:
        """Restore the full guardrail and restriction denies once a grant is gone."""
        await self._cleanup.close_exemption(identity, grant_id)

    async def remove_from_cloud(self, identity: Identity, grant_id: str, *, why: str) -> bool:
        """Delete a write that must not stand and close its exemptions; False if it stays."""
        return await self._cleanup.remove_from_cloud(identity, grant_id, why=why)

    async def load(self, grant_id: str, *, session: AsyncSession) -> tuple[Grant, Identity]:
        return await load_grant(grant_id, session=session)

    async def people(self, grant: Grant, *, session: AsyncSession) -> tuple[str, ...]:
        return await grant_people(session, grant)

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
                await set_state(
                    session,
                    Machine.GRANT,
                    grant.id,
                    from_states=GrantState.APPLYING,
                    to_state=GrantState.APPLYING,
                    deny_actions=list(denies),
                )
        spec = spec_of(grant, denies)
        provider = ctx.provider_for(identity)
        try:
            # The guardrail's exemption opens first: a grant behind a deny would be useless.
            await self._cleanup.guardrails.refresh(identity, extra=[grant], controls=controls)
            # And the restriction's, when it denies what the grant approves.
            await self._cleanup.restrictions.refresh(identity, extra=[grant], controls=controls)
            applied = await provider.grant(identity_ref(identity), spec)
        except CloudError as error:
            return await self._apply_failed(grant, identity, error)
        self._ctx.crashes.reached("granted-in-cloud", grant_id=grant.id)
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
        done = await move(
            ctx,
            Machine.GRANT,
            grant.id,
            from_states=GrantState.APPLYING,
            to_state=GrantState.ACTIVE,
            at=now,
            values={
                "applied_at": now,
                "artefact": applied.artefact,
                "mechanism": applied.mechanism,
                "lease_until": None,
            },
            event=Event(
                SYSTEM,
                "grant.applied",
                detail={
                    "artefact": applied.artefact,
                    "mechanism": applied.mechanism,
                    "actions": grant.actions,
                    "resources": grant.resources,
                    "expires_at": grant.expires_at.isoformat(),
                    **({"adopted": True} if adopted else {}),
                },
            ),
            notice=to_people(notices.grant_active),
        )
        grant = done.row
        if not done.moved:
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
        self._ctx.crashes.reached("grant-committed", grant_id=grant.id)
        log_context.detached(ctx.timers.schedule_revoke, grant.id, grant.expires_at)
        self._ctx.crashes.reached("timer-armed", grant_id=grant.id)
        await done.tell()
        return grant

    async def _apply_failed(self, grant: Grant, identity: Identity, error: CloudError) -> Grant:
        ctx = self._ctx
        log.warning("grant %s on %s failed: %s", grant.id, identity.name, error)
        done = await move(
            ctx,
            Machine.GRANT,
            grant.id,
            from_states=GrantState.APPLYING,
            to_state=GrantState.FAILED,
            at=ctx.clock.now(),
            values={"last_error": str(error)[:2000], "lease_until": None},
            event=Event(
                SYSTEM,
                "grant.apply_failed",
                detail={"error": str(error)[:500]},
                outcome=Outcome.FAILURE,
            ),
            notice=to_people(notices.grant_failed),
        )
        # A partial write must not outlive the failure, unless another process's apply of the
        # same grant succeeded meanwhile: then the artefact is that grant's, live and recorded.
        if done.row.state != GrantState.ACTIVE:
            await self.remove_from_cloud(identity, grant.id, why="a failed apply")
        await done.tell()
        return done.row

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
                where = _lease_out(now)
                if due_only:
                    where &= col(Grant.expires_at) <= now + TIMER_SLACK
                claimed = await set_state(
                    session,
                    Machine.GRANT,
                    grant.id,
                    from_states=(*_REVOCABLE, GrantState.REVOKING),
                    to_state=GrantState.REVOKING,
                    where=where,
                    lease_until=now + ctx.rules.grants.lease,
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
        self._ctx.crashes.reached("revoke-claimed", grant_id=grant.id)
        try:
            existed = await ctx.provider_for(identity).revoke(identity_ref(identity), grant.id)
        except CloudError as error:
            return await self._revoke_failed(grant, identity, error)
        self._ctx.crashes.reached("revoked-in-cloud", grant_id=grant.id)
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
        done = await move(
            ctx,
            Machine.GRANT,
            grant.id,
            from_states=GrantState.REVOKING,
            to_state=GrantState.REVOKED,
            at=now,
            values={
                "revoked_at": now,
                "revoked_by": actor.name,
                "lease_until": None,
                "next_attempt_at": None,
            },
            event=Event(
                actor, "grant.revoked", detail={"reason": reason, "artefact_found": existed}
            ),
            notice=to_people(notices.revoked),
        )
        if not done.moved:
            return done.row
        grant = done.row
        log.info(
            "grant %s revoked from %s (%s, by %s)", grant.id, identity.name, reason, actor.name
        )
        self._ctx.crashes.reached("revoke-committed", grant_id=grant.id)
        await done.tell()
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
        done = await move(
            ctx,
            Machine.GRANT,
            grant.id,
            from_states=GrantState.REVOKING,
            to_state=state,
            at=now,
            values={
                "attempts": attempts,
                "next_attempt_at": now + delay,
                "last_error": str(error)[:2000],
                "lease_until": None,
            },
            event=Event(
                SYSTEM,
                f"grant.{state}",
                detail={"attempt": attempts, "error": str(error)[:500]},
                outcome=Outcome.FAILURE,
            ),
            # Out of attempts, the admins hear of it too.
            notice=(
                to_people(notices.irrevocable, also=tuple(sorted(ctx.rules.admins)))
                if final
                else None
            ),
        )
        await done.tell()
        return done.row

    async def extend(self, request: AccessRequest) -> Grant:
        """Apply an approved extension: rewrite the cloud expiry, then the record."""
        return await self._extension.extend(request)
