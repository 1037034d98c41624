"""Read-only views of requests and grants for lists and the API."""

from __future__ import annotations

from collections.abc import Collection

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.models import (
    LIVE_GRANT_STATES,
    AccessRequest,
    Grant,
    Identity,
    RequestState,
)

LIMIT = 50


async def grants(
    *,
    session: AsyncSession,
    requesters: Collection[str] | None = None,
    identity_id: str | None = None,
    live_only: bool = True,
) -> list[tuple[Grant, Identity]]:
    query = (
        select(Grant, Identity)
        .join(Identity, col(Identity.id) == col(Grant.identity_id))
        .order_by(col(Grant.created_at).desc())
        .limit(LIMIT)
    )
    if live_only:
        query = query.where(col(Grant.state).in_(LIVE_GRANT_STATES))
    if requesters is not None:
        query = query.where(col(Grant.requester).in_(requesters))
    if identity_id is not None:
        query = query.where(col(Grant.identity_id) == identity_id)
    return list((await session.exec(query)).all())


async def pending_for(
    names: Collection[str], *, session: AsyncSession, admin: bool
) -> list[tuple[AccessRequest, Identity]]:
    """Pending requests this person (by any of their names) may decide; admins may decide all."""
    query = (
        select(AccessRequest, Identity)
        .join(Identity, col(Identity.id) == col(AccessRequest.identity_id))
        .where(col(AccessRequest.state) == RequestState.PENDING)
        .order_by(col(AccessRequest.created_at))
        .limit(200)
    )
    rows = (await session.exec(query)).all()
    return [
        (request, identity)
        for request, identity in rows
        if request.requester not in names
        and (admin or not set(names).isdisjoint(request.approvers))
    ][:LIMIT]


async def requests_by(
    requesters: Collection[str], *, session: AsyncSession
) -> list[tuple[AccessRequest, Identity]]:
    query = (
        select(AccessRequest, Identity)
        .join(Identity, col(Identity.id) == col(AccessRequest.identity_id))
        .where(col(AccessRequest.requester).in_(requesters))
        .order_by(col(AccessRequest.created_at).desc())
        .limit(LIMIT)
    )
    return list((await session.exec(query)).all())
