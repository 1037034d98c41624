"""Refreshing the inventory from every configured cloud."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.context import Context
from bot.domain.actors import SYSTEM
from bot.domain.messages import Choice, ChoiceStyle, Notice, NoticeKind, Reply
from bot.domain.states import Classification, Outcome
from bot.inventory import registry
from bot.inventory.stewardship import security_recipients
from bot.store import audit
from bot.store.tables import Identity, Ownership
from cloud.base import CloudError, DiscoveredIdentity, DiscoveryResult

log = logging.getLogger("leash.inventory")

RECORD_ATTEMPTS = 4
# PostgreSQL: serialization failure, deadlock detected, lock not available (lock_timeout).
_CONFLICTS = frozenset({"40001", "40P01", "55P03"})


@dataclass(frozen=True, slots=True)
class InventoryReport:
    found: int
    agents: int = 0
    unowned_agents: int = 0
    failures: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Recorded:
    """What recording one cloud's discovery found."""

    seen: list[str] = field(default_factory=list)
    agents: int = 0
    unowned: int = 0
    problems: dict[str, str] = field(default_factory=dict)
    proposals: list[tuple[Identity, str | None, str]] = field(default_factory=list)


class InventoryService:
    """Discovers identities in each cloud and records them with owners from tags."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def _announce_tag_change(
        self, identity: Identity, current: str | None, proposed: str
    ) -> None:
        """A tag names another owner: the owner and the admins hear it; an admin decides."""
        recipients = (*((current,) if current else ()), *security_recipients(self._ctx.rules))
        await self._ctx.tell(
            Notice(
                kind=NoticeKind.UNOWNED,
                recipients=tuple(dict.fromkeys(recipients)),
                reply=Reply(
                    text=f"A tag on {identity.name} now names {proposed} as its owner instead of "
                    f"{current}. Whoever can write tags is not thereby its owner: {current} stays "
                    "the owner until an admin confirms the change.",
                    lines=(f"ARN: {identity.native_id}",),
                    choices=(
                        Choice(
                            "Confirm new owner",
                            f"owner confirm {identity.native_id}",
                            ChoiceStyle.PRIMARY,
                        ),
                    ),
                    ok=False,
                ),
            )
        )

    async def refresh(self) -> InventoryReport:
        ctx = self._ctx
        found = agents = unowned = 0
        failures: dict[str, str] = {}
        proposals: list[tuple[Identity, str | None, str]] = []
        for name, provider in ctx.providers.items():
            try:
                result = await provider.discover()
            except CloudError as error:
                failures[name] = str(error)
                log.warning("discovery in %s failed: %s", name, error)
                continue
            failures.update({f"{name}:{scope}": why for scope, why in result.failures.items()})
            recorded = await self._record_retrying(name, result)
            found += len(recorded.seen)
            agents += recorded.agents
            unowned += recorded.unowned
            failures.update(recorded.problems)
            proposals += recorded.proposals
        for identity, current, proposed in proposals:
            await self._announce_tag_change(identity, current, proposed)
        return InventoryReport(
            found=found, agents=agents, unowned_agents=unowned, failures=failures
        )

    async def _record_retrying(self, name: str, result: DiscoveryResult) -> _Recorded:
        """Record one cloud's discovery; a conflict with a replica doing the same is retried.

        Replicas started together record the same identities at once. Inserts that meet
        another's row do nothing (`registry.upsert_discovered`) and rows are locked in one
        order, but a wait past the lock timeout or a deadlock with other work is still possible:
        the whole transaction is tried again, reading what the other replica committed.
        """
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                return await self._record(name, result)
            except DBAPIError as error:
                if attempt == RECORD_ATTEMPTS or not _conflict(error):
                    raise
                log.warning(
                    "inventory: recording %s met a concurrent writer (%s); trying again",
                    name,
                    type(error.orig).__name__,
                )
                await asyncio.sleep(random.uniform(0.1, 0.5) * attempt)
        raise AssertionError("unreachable")

    async def _record(self, name: str, result: DiscoveryResult) -> _Recorded:
        """Upsert one cloud's identities and mark the missing ones deleted, in one transaction."""
        ctx = self._ctx
        now = ctx.clock.now()
        recorded = _Recorded()
        # One order on every replica: two transactions locking the same rows never deadlock.
        identities = sorted(
            result.identities, key=lambda d: registry.identity_id_for(d.ref.native_id)
        )
        async with ctx.transaction() as session:
            for discovered in identities:
                await self._upsert(name, discovered, recorded, session=session, now=now)
            # The chain's lock is taken after the rows' (as every append does), never between.
            for identity, _, proposed in recorded.proposals:
                await audit.append(
                    session=session,
                    actor=SYSTEM,
                    event_type="owner.proposed",
                    at=now,
                    identity_id=identity.id,
                    resource=identity.native_id,
                    detail={"from": "tags", "proposed": proposed},
                )
            deleted, vanished = await _mark_gone(name, result, recorded, session=session, now=now)
            await audit.append(
                session=session,
                actor=SYSTEM,
                event_type="inventory.refreshed",
                at=now,
                outcome=Outcome.FAILURE if result.failures else Outcome.SUCCESS,
                detail={
                    "provider": name,
                    "found": len(recorded.seen),
                    "deleted": deleted,
                    "failures": dict(result.failures),
                    **({"accounts_gone": vanished} if vanished else {}),
                },
            )
        return recorded

    async def _upsert(
        self,
        name: str,
        discovered: DiscoveredIdentity,
        recorded: _Recorded,
        *,
        session: AsyncSession,
        now: datetime,
    ) -> None:
        """Record one discovered identity; note its problems, tag proposals and agent count."""
        identity, problems = await registry.upsert_discovered(
            discovered, rules=self._ctx.rules, session=session, now=now
        )
        for problem in problems:
            recorded.problems[f"{name}:{identity.account}:{identity.name}"] = problem
        recorded.seen.append(identity.id)
        owner = await session.get(Ownership, identity.id)
        if owner is not None and owner.proposed_owner and owner.proposed_at == now:
            recorded.proposals.append((identity, owner.primary_owner, owner.proposed_owner))
        if identity.classification == Classification.AI_AGENT:
            recorded.agents += 1
            recorded.unowned += owner is None or owner.primary_owner is None


async def _mark_gone(
    name: str, result: DiscoveryResult, recorded: _Recorded, *, session: AsyncSession, now: datetime
) -> tuple[int, list[str]]:
    """Mark deleted (never forget: the audit trail keeps referring to them) the identities
    discovery no longer sees: those gone from an account it read, and those of an account it no
    longer reaches at all (closed, gone from the organisation or from the configured list).

    An account counts as gone only when every failure of this discovery names an account the
    inventory knows (that account is then kept as it was): a failure elsewhere (listing the
    organisation, a folder) may have hidden whole accounts. Returns how many were marked, and
    the accounts found gone.
    """
    scanned = {d.ref.account for d in result.identities}
    known = set(
        (
            await session.exec(
                select(Identity.account)
                .where(col(Identity.provider) == name, col(Identity.present).is_(True))
                .distinct()
            )
        ).all()
    )
    failed = {scope.split(":", 1)[0] for scope in result.failures}
    vanished = sorted(known - scanned - failed) if scanned and failed <= known | scanned else []
    gone = await session.exec(
        update(Identity)
        .where(
            col(Identity.provider) == name,
            col(Identity.account).in_(scanned | set(vanished)),
            col(Identity.id).not_in(recorded.seen),
            col(Identity.present).is_(True),
        )
        .values(present=False, deleted_at=now)
    )
    if vanished:
        log.warning(
            "inventory: %s no longer reaches %s; their identities are marked deleted",
            name,
            ", ".join(vanished),
        )
    return gone.rowcount, vanished


def _conflict(error: DBAPIError) -> bool:
    """A unique violation, deadlock, serialization failure or lock wait past its bound."""
    if isinstance(error, IntegrityError):
        return True
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return code in _CONFLICTS or "database is locked" in str(error.orig)
