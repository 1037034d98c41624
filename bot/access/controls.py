"""What Leash has placed on one identity, read together in one round trip: its guardrail, its
restriction and its open grants. The grant path reads it once and hands it to the guardrail,
the restriction and the grant composition, which would otherwise each ask the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.context import Context
from bot.domain.states import EnforcementKind, EnforcementState, GrantState
from bot.posture.enforcement import slot_key
from bot.store.tables import Enforcement, Grant, Identity

# Grants whose exemptions stay open: being written or live. A grant being revoked (or
# failing to be) is not among them: its exemptions close first.
OPEN_GRANT_STATES = (GrantState.APPLYING, GrantState.ACTIVE)


@dataclass(frozen=True, slots=True)
class Controls:
    """An identity's active guardrail and restriction (None when absent) and open grants."""

    guardrail: Enforcement | None
    restriction: Enforcement | None
    grants: tuple[Grant, ...]

    def open_grants(
        self, *, extra: Sequence[Grant] = (), without: str | None = None
    ) -> list[Grant]:
        """The open grants plus `extra` (which replace a grant of the same id), bar `without`."""
        chosen = {grant.id: grant for grant in [*self.grants, *extra] if grant.id != without}
        return list(chosen.values())


async def read_controls(session: AsyncSession, identity_id: str, *, now: datetime) -> Controls:
    """Read an identity's Controls: its live enforcements, then its open grants."""
    slots = {
        slot_key(identity_id, kind): kind
        for kind in (EnforcementKind.GUARDRAIL, EnforcementKind.RESTRICT)
    }
    rows = await session.exec(
        select(Enforcement).where(col(Enforcement.active_key).in_(list(slots)))
    )
    active = {
        slots[row.active_key]: row
        for row in rows.all()
        if row.active_key is not None and row.state == EnforcementState.ACTIVE
    }
    grants = await session.exec(
        select(Grant).where(
            col(Grant.identity_id) == identity_id,
            col(Grant.state).in_(OPEN_GRANT_STATES),
            col(Grant.expires_at) > now,
        )
    )
    return Controls(
        guardrail=active.get(EnforcementKind.GUARDRAIL),
        restriction=active.get(EnforcementKind.RESTRICT),
        grants=tuple(grants.all()),
    )


async def current_controls(ctx: Context, identity: Identity) -> Controls:
    """The identity's Controls, read in one session of its own."""
    async with ctx.sessions() as session:
        return await read_controls(session, identity.id, now=ctx.clock.now())
