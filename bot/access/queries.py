"""Read-only views of requests and grants for lists and the API."""

from __future__ import annotations

from collections.abc import Collection

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.handles import keys_for
from bot.domain.states import LIVE_GRANT_STATES, RequestState
from bot.store.tables import AccessRequest, Grant, Identity

LIMIT = 50
# How many recent rows a per-person list looks through: people are matched by canonical
# handle (bot.domain.handles) in Python, not by the name a row happens to store.
WINDOW = 500


def _asked_by(request: AccessRequest, keys: Collection[str]) -> bool:
    """Whether the request was asked by the person known by `keys` (canonical handles)."""
    asked = request.requester_handles or sorted(keys_for([request.requester]))
    return not set(keys).isdisjoint(asked)


async def grants(
    *,
    session: AsyncSession,
    requester_keys: Collection[str] | None = None,
    identity_id: str | None = None,
    live_only: bool = True,
) -> list[tuple[Grant, Identity]]:
    """Grants, newest first: live ones, of one identity, or asked by one person (any handle)."""
    query = (
        select(Grant, Identity, AccessRequest)
        .join(Identity, col(Identity.id) == col(Grant.identity_id))
        .join(AccessRequest, col(AccessRequest.id) == col(Grant.request_id))
        .order_by(col(Grant.created_at).desc())
        .limit(LIMIT if requester_keys is None else WINDOW)
    )
    if live_only:
        query = query.where(col(Grant.state).in_(LIVE_GRANT_STATES))
    if identity_id is not None:
        query = query.where(col(Grant.identity_id) == identity_id)
    rows = (await session.exec(query)).all()
    return [
        (grant, identity)
        for grant, identity, request in rows
        if requester_keys is None or _asked_by(request, requester_keys)
    ][:LIMIT]


async def pending_for(
    keys: Collection[str], *, session: AsyncSession, admin: bool
) -> list[tuple[AccessRequest, Identity]]:
    """Pending requests this person (by any handle) may decide; admins may decide all."""
    query = (
        select(AccessRequest, Identity)
        .join(Identity, col(Identity.id) == col(AccessRequest.identity_id))
        .where(col(AccessRequest.state) == RequestState.PENDING)
        .order_by(col(AccessRequest.created_at))
        .limit(WINDOW)
    )
    rows = (await session.exec(query)).all()
    return [
        (request, identity)
        for request, identity in rows
        if not _asked_by(request, keys)
        and (admin or not set(keys).isdisjoint(keys_for(request.approvers)))
    ][:LIMIT]


async def requests_by(
    keys: Collection[str], *, session: AsyncSession
) -> list[tuple[AccessRequest, Identity]]:
    """The person's requests (asked under any of their handles), newest first."""
    query = (
        select(AccessRequest, Identity)
        .join(Identity, col(Identity.id) == col(AccessRequest.identity_id))
        .order_by(col(AccessRequest.created_at).desc())
        .limit(WINDOW)
    )
    rows = (await session.exec(query)).all()
    return [(request, identity) for request, identity in rows if _asked_by(request, keys)][:LIMIT]
