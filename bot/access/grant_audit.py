"""The audit event every grant transition writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.actors import Actor
from bot.domain.states import Outcome
from bot.store import audit
from bot.store.tables import Grant, Identity


async def audit_grant(
    session: AsyncSession,
    grant: Grant,
    identity: Identity,
    *,
    actor: Actor,
    event_type: str,
    at: datetime,
    detail: dict[str, Any],
    outcome: Outcome = Outcome.SUCCESS,
    request_id: str | None = None,
) -> None:
    """Audit a grant event, naming the identity, the grant and the request it came from."""
    await audit.append(
        session=session,
        actor=actor,
        event_type=event_type,
        at=at,
        outcome=outcome,
        identity_id=identity.id,
        resource=identity.native_id,
        request_id=request_id or grant.request_id,
        grant_id=grant.id,
        detail=detail,
    )
