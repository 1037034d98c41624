"""What every grant step shares: reading a grant, the audit event of a grant, who hears of it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.transitions import NoticeFor, grant_people
from bot.domain.actors import Actor
from bot.domain.errors import UnknownGrantError
from bot.domain.messages import Notice
from bot.domain.states import Outcome
from bot.store import audit
from bot.store.tables import Grant, Identity


async def load_grant(grant_id: str, *, session: AsyncSession) -> tuple[Grant, Identity]:
    grant = await session.get(Grant, grant_id.strip()[:16])
    if grant is None:
        raise UnknownGrantError(f"There is no grant '{grant_id[:20]}'.")
    identity = await session.get(Identity, grant.identity_id)
    assert identity is not None
    return grant, identity


def to_people(
    build: Callable[[Grant, Identity, tuple[str, ...]], Notice], *, also: tuple[str, ...] = ()
) -> NoticeFor[Grant]:
    """The notice of a grant's move, to its requester and owner (and `also`)."""

    async def notice(grant: Grant, identity: Identity, session: AsyncSession) -> Notice:
        return build(grant, identity, await grant_people(session, grant) + also)

    return notice


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
