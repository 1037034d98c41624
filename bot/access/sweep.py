"""The database-driven backstop: whatever the timers missed, the sweep finds and finishes."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, update
from sqlmodel import col, select

from bot.access.grants import GrantFlow
from bot.core import notices
from bot.core.context import Context, compare_and_set, identity_ref
from bot.core.transitions import set_state
from bot.domain.actors import SYSTEM
from bot.domain.states import LIVE_GRANT_STATES, GrantState, Machine
from bot.store import audit
from bot.store.tables import Grant, Identity
from cloud.base import AppliedGrant, CloudError

log = logging.getLogger("leash.sweep")
REVOKE_CONCURRENCY = 8  # identities revoked at once by one sweep


@dataclass(frozen=True, slots=True)
class SweepReport:
    revoked: int
    resumed: int
    warned: int


class GrantSweep:
    """Revokes grants past expiry, retries failed revocations, resumes interrupted applies."""

    def __init__(self, ctx: Context, grants: GrantFlow) -> None:
        self._ctx = ctx
        self._grants = grants

    @staticmethod
    async def _guarded(step: Callable[[str], Awaitable[Grant]], grant_id: str) -> None:
        """Run one grant's step; a bug on one grant must not stop the sweep of the others."""
        try:
            await step(grant_id)
        except Exception:
            log.exception("sweep step %s failed for grant %s", step.__name__, grant_id)

    async def revoke_due(self) -> int:
        """Revoke what is due: past expiry, a retry's time come, a revoke whose process died."""
        now = self._ctx.clock.now()
        async with self._ctx.sessions() as session:
            due = (
                await session.exec(
                    select(Grant.id, Grant.identity_id).where(
                        or_(
                            (col(Grant.state) == GrantState.ACTIVE)
                            & (col(Grant.expires_at) <= now),
                            col(Grant.state).in_((GrantState.REVOKE_FAILED, GrantState.IRREVOCABLE))
                            & (col(Grant.next_attempt_at) <= now),
                            (col(Grant.state) == GrantState.REVOKING)
                            & (col(Grant.lease_until) < now),
                        )
                    )
                )
            ).all()
        await self._revoke_all(due)
        return len(due)

    async def run(self) -> SweepReport:
        """Revoke what is due, retry failures, resume stuck applies, warn of expiry."""
        ctx = self._ctx
        revoked = await self.revoke_due()
        now = ctx.clock.now()
        async with ctx.sessions() as session:
            stuck = (
                await session.exec(
                    select(Grant.id).where(
                        col(Grant.state) == GrantState.APPLYING, col(Grant.lease_until) < now
                    )
                )
            ).all()
            warn_at = now + ctx.rules.grants.expiry_warning
            expiring = (
                await session.exec(
                    select(Grant.id).where(
                        col(Grant.state) == GrantState.ACTIVE,
                        col(Grant.expires_at) <= warn_at,
                        col(Grant.expires_at) > now,
                        col(Grant.expiry_warned).is_(False),
                    )
                )
            ).all()
        resumed = 0
        for grant_id in stuck:
            async with ctx.transaction() as session:
                claimed = await set_state(
                    session,
                    Machine.GRANT,
                    grant_id,
                    from_states=GrantState.APPLYING,
                    to_state=GrantState.APPLYING,
                    where=col(Grant.lease_until) < now,
                    lease_until=now + ctx.rules.grants.lease,
                )
            if claimed:
                resumed += 1
                await self._guarded(self._resume, grant_id)
        for grant_id in expiring:
            await self._warn(grant_id)
        return SweepReport(revoked=revoked, resumed=resumed, warned=len(expiring))

    async def _revoke_all(self, due: Sequence[tuple[str, str]]) -> None:
        """Revoke due grants: identities in parallel (bounded), each one's grants in turn.

        After an outage hundreds may be due at once; one at a time, real cloud latency would
        keep the last of them live for minutes. One identity's grants stay sequential so its
        guardrail exemptions are rewritten one after another.
        """
        by_identity: dict[str, list[str]] = defaultdict(list)
        for grant_id, identity_id in due:
            by_identity[identity_id].append(grant_id)
        limit = asyncio.Semaphore(REVOKE_CONCURRENCY)

        async def revoke(grant_ids: list[str]) -> None:
            async with limit:
                for grant_id in grant_ids:
                    await self._guarded(self._grants.revoke, grant_id)

        await asyncio.gather(*(revoke(grant_ids) for grant_ids in by_identity.values()))

    async def _resume(self, grant_id: str) -> Grant:
        """Finish an apply whose process died: adopt what reached the cloud, else apply again.

        Past its expiry a grant can no longer be written, but the dead process may have written
        it in time, and then it was live in the cloud: record it applied, then revoke it, so the
        audit trail shows the access that existed (not a failed apply that never did).
        """
        async with self._ctx.sessions() as session:
            grant, identity = await self._grants.load(grant_id, session=session)
        if grant.expires_at <= self._ctx.clock.now():
            provider = self._ctx.provider_for(identity)
            try:
                artefacts = await provider.grant_artefacts(identity_ref(identity))
                found = [a.artefact for a in artefacts if a.grant_id == grant.id]
                mechanism = await provider.grant_mechanism(identity_ref(identity)) if found else ""
            except CloudError as error:
                log.warning("could not look for grant %s in the cloud: %s", grant.id, error)
                found = []
            if found:
                await self._grants.adopt(grant.id, AppliedGrant(found[0], mechanism))
                return await self._grants.revoke(grant.id)
        return await self._grants.apply(grant_id)

    async def _warn(self, grant_id: str) -> None:
        ctx = self._ctx
        async with ctx.transaction() as session:
            if not await compare_and_set(
                session,
                update(Grant)
                .where(col(Grant.id) == grant_id, col(Grant.expiry_warned).is_(False))
                .values(expiry_warned=True),
            ):
                return
            grant, identity = await self._grants.load(grant_id, session=session)
            people = await self._grants.people(grant, session=session)
        await ctx.tell(notices.expiring_soon(grant, identity, people))

    async def timers_to_rebuild(self) -> list[tuple[str, datetime]]:
        """Every active grant with its expiry, for the scheduler to re-arm at start."""
        async with self._ctx.sessions() as session:
            rows = (
                await session.exec(
                    select(Grant.id, Grant.expires_at).where(col(Grant.state) == GrantState.ACTIVE)
                )
            ).all()
        return [(grant_id, expires_at) for grant_id, expires_at in rows]

    async def _accounted(self, grant_ids: set[str], *, listed_at: datetime) -> set[str]:
        """Those of `grant_ids` whose own flow answers for their artefact: live (applying,
        active, revoking, failing), or revoked since the listing (its revoke removed what
        the listing saw; deleting it again would only repeat that call)."""
        async with self._ctx.sessions() as session:
            found = await session.exec(
                select(Grant.id).where(
                    col(Grant.id).in_(grant_ids),
                    or_(
                        col(Grant.state).in_(LIVE_GRANT_STATES),
                        and_(
                            col(Grant.state) == GrantState.REVOKED,
                            col(Grant.revoked_at) >= listed_at,
                        ),
                    ),
                )
            )
            return set(found.all())

    async def reconcile(self) -> int:
        """Remove `leash-grant-*` artefacts in the cloud that no live grant accounts for."""
        ctx = self._ctx
        async with ctx.sessions() as session:
            identities = (await session.exec(select(Identity).where(col(Identity.present)))).all()
        removed = 0
        for identity in identities:
            provider = ctx.providers.get(identity.provider)
            if provider is None:
                continue
            listed_at = ctx.clock.now()
            try:
                artefacts = await provider.grant_artefacts(identity_ref(identity))
            except CloudError as error:
                log.warning("reconcile could not list %s: %s", identity.name, error)
                continue
            if not artefacts:
                continue
            # Read the records after the cloud: a grant row is committed (`applying`) before its
            # artefact is written, so an artefact listed here is accounted for by now if it is
            # live. Records read before the listing would miss a grant approved in between and
            # remove a live grant from the cloud.
            live = await self._accounted(
                {artefact.grant_id[:16] for artefact in artefacts}, listed_at=listed_at
            )
            for artefact in artefacts:
                if artefact.grant_id[:16] in live:
                    continue
                try:
                    existed = await provider.revoke(identity_ref(identity), artefact.grant_id)
                except CloudError as error:
                    log.warning("reconcile could not remove %s: %s", artefact.artefact, error)
                    continue
                if not existed:  # revoked by its own grant's flow meanwhile: not an orphan
                    continue
                removed += 1
                async with ctx.transaction() as session:
                    await audit.append(
                        session=session,
                        actor=SYSTEM,
                        event_type="grant.orphan_removed",
                        at=ctx.clock.now(),
                        identity_id=identity.id,
                        resource=identity.native_id,
                        grant_id=artefact.grant_id[:16],
                        detail={"artefact": artefact.artefact},
                    )
        return removed
