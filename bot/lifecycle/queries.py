"""The reads surfaces, commands, the API and the CLI show: each opens its own session.

Callers above the lifecycle never open a database session; they ask for what they show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import col, select

from bot.access import queries
from bot.core.context import Context
from bot.domain.actors import Actor
from bot.domain.errors import UnknownGrantError, UnknownRequestError
from bot.inventory import registry
from bot.posture.usage_scan import latest_scans
from bot.store import audit
from bot.store.tables import AccessRequest, Approval, Grant, Identity, Ownership, UsageScan

GrantRows = list[tuple[Grant, Identity]]
RequestRows = list[tuple[AccessRequest, Identity]]
OwnedRows = list[tuple[Identity, Ownership]]


@dataclass(frozen=True, slots=True)
class Home:
    """What a person's home view shows: decisions waiting, their grants, what they own."""

    pending: RequestRows
    grants: GrantRows
    owned: OwnedRows


@dataclass(frozen=True, slots=True)
class ScanTable:
    """The latest scan of each identity, with the identity (None if it is gone)."""

    scans: dict[str, UsageScan]
    identities: dict[str, Identity | None]


class Queries:
    """Read-only look-ups for the layers above the lifecycle."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def grants_of(self, actor: Actor) -> GrantRows:
        """The live grants this person asked for (under any handle)."""
        async with self._ctx.sessions() as session:
            return await queries.grants(session=session, requester_keys=actor.keys)

    async def live_grants(self) -> GrantRows:
        async with self._ctx.sessions() as session:
            return await queries.grants(session=session)

    async def grants_on(self, reference: str) -> tuple[Identity, GrantRows]:
        """The identity `reference` names and its live grants."""
        async with self._ctx.sessions() as session:
            identity = await registry.resolve(reference, session=session)
            return identity, await queries.grants(session=session, identity_id=identity.id)

    async def pending_for(self, actor: Actor) -> RequestRows:
        """Pending requests this person may decide (admins: all)."""
        admin = actor.is_one_of(self._ctx.rules.admins)
        async with self._ctx.sessions() as session:
            return await queries.pending_for(actor.keys, session=session, admin=admin)

    async def requests_by(self, actor: Actor) -> RequestRows:
        async with self._ctx.sessions() as session:
            return await queries.requests_by(actor.keys, session=session)

    async def owners(self, reference: str) -> tuple[Identity, Ownership | None]:
        async with self._ctx.sessions() as session:
            identity = await registry.resolve(reference, session=session)
            return identity, await registry.owners_of(identity.id, session=session)

    async def owned_by(self, *names: str) -> OwnedRows:
        """Identities any of `names` owns (primary or backup)."""
        async with self._ctx.sessions() as session:
            return [row for name in names for row in await registry.owned_by(name, session=session)]

    async def search(
        self, text_filter: str | None, *, limit: int = 50
    ) -> list[tuple[Identity, Ownership | None]]:
        async with self._ctx.sessions() as session:
            return await registry.search(text_filter, session=session, limit=limit)

    async def resolve(self, reference: str) -> Identity:
        """The identity an ARN, id or short name stands for; raises if none."""
        async with self._ctx.sessions() as session:
            return await registry.resolve(reference, session=session)

    async def home(self, actor: Actor) -> Home:
        admin = actor.is_one_of(self._ctx.rules.admins)
        async with self._ctx.sessions() as session:
            pending = await queries.pending_for(actor.keys, session=session, admin=admin)
            grants = await queries.grants(session=session, requester_keys=actor.keys)
            owned = [
                row
                for name in actor.names
                for row in await registry.owned_by(name, session=session)
            ]
        return Home(pending=pending, grants=grants, owned=owned)

    async def own_request(
        self, request_id: str, *, identity_id: str
    ) -> tuple[AccessRequest, Grant | None]:
        """A request of `identity_id` and its grant; raises if it is not theirs."""
        async with self._ctx.sessions() as session:
            access = await session.get(AccessRequest, request_id[:16])
            if access is None or access.identity_id != identity_id:
                raise UnknownRequestError(
                    f"There is no request '{request_id[:20]}' for this identity."
                )
            grant = (await session.exec(select(Grant).where(Grant.request_id == access.id))).first()
        return access, grant

    async def grant(self, grant_id: str) -> Grant:
        """A grant by id; raises if there is none."""
        async with self._ctx.sessions() as session:
            grant = await session.get(Grant, grant_id[:16])
        if grant is None:
            raise UnknownGrantError(f"There is no grant '{grant_id[:20]}'.")
        return grant

    async def request_with_identity(self, request_id: str) -> tuple[AccessRequest, Identity] | None:
        """A request and its identity, or None if either is gone."""
        async with self._ctx.sessions() as session:
            request = await session.get(AccessRequest, request_id)
            identity = await session.get(Identity, request.identity_id) if request else None
        if request is None or identity is None:
            return None
        return request, identity

    async def approvers_of(self, request_id: str) -> tuple[str, ...]:
        """Who approved a request so far, oldest first."""
        async with self._ctx.sessions() as session:
            rows = await session.exec(
                select(Approval.approver)
                .where(col(Approval.request_id) == request_id)
                .order_by(col(Approval.created_at), col(Approval.id))
            )
            return tuple(rows.all())

    async def scan_table(self, identity_ids: Sequence[str] | None = None) -> ScanTable:
        """The latest scans (of the given identities, or all), with their identities."""
        scans = await latest_scans(self._ctx, identity_ids)
        async with self._ctx.sessions() as session:
            identities = {i: await session.get(Identity, i) for i in scans}
        return ScanTable(scans=scans, identities=identities)

    async def audit_head(self) -> audit.Head | None:
        """The audit chain's newest event, as published outside the database."""
        async with self._ctx.sessions() as session:
            return await audit.head(session=session)
