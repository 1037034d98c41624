"""Agent API tokens: bound to one identity, stored hashed, shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import audit, registry
from bot.domain.audit import Actor
from bot.domain.errors import LeashError, NotAllowedError
from bot.domain.lifecycle.context import Context, new_id
from bot.domain.models import ActorKind, AgentToken, Identity, Ownership

TOKEN_PREFIX = "lsh_"  # noqa: S105 - a public prefix that makes leaked tokens easy to spot


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    identity: Identity
    replaced: int


class TokenService:
    """Issue, revoke and check the bearer tokens agents use on the API."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def _may_manage(self, identity: Identity, *, actor: Actor, session: AsyncSession) -> None:
        if actor.kind is not ActorKind.USER:
            raise NotAllowedError("Only people manage agent tokens.")
        ownership = await session.get(Ownership, identity.id)
        owners = {ownership.primary_owner, ownership.backup_owner} if ownership else set()
        if not actor.is_one_of([*owners, *self._ctx.rules.admins]):
            raise NotAllowedError(
                f"Only the owners of {identity.name} or an admin can manage its tokens."
            )

    async def issue(self, reference: str, *, actor: Actor) -> IssuedToken:
        """Create a token for an identity, replacing its earlier ones."""
        ctx = self._ctx
        try:
            async with ctx.transaction() as session:
                identity = await registry.resolve(reference, session=session)
                await self._may_manage(identity, actor=actor, session=session)
                now = ctx.clock.now()
                replaced = await self._revoke_all(identity.id, actor=actor, session=session)
                token = TOKEN_PREFIX + secrets.token_urlsafe(32)
                record = AgentToken(
                    id=new_id("t"),
                    identity_id=identity.id,
                    token_hash=hash_token(token),
                    created_at=now,
                    created_by=actor.name,
                )
                session.add(record)
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="token.issued",
                    at=now,
                    identity_id=identity.id,
                    resource=identity.native_id,
                    detail={"token_id": record.id, "replaced": replaced},
                )
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="token.refused", detail={"identity": reference[:200]}
            ) from None
        return IssuedToken(token=token, identity=identity, replaced=replaced)

    async def revoke(self, reference: str, *, actor: Actor) -> int:
        """Revoke every live token of an identity."""
        ctx = self._ctx
        try:
            async with ctx.transaction() as session:
                identity = await registry.resolve(reference, session=session)
                await self._may_manage(identity, actor=actor, session=session)
                count = await self._revoke_all(identity.id, actor=actor, session=session)
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="token.revoked",
                    at=ctx.clock.now(),
                    identity_id=identity.id,
                    resource=identity.native_id,
                    detail={"count": count},
                )
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="token.refused", detail={"identity": reference[:200]}
            ) from None
        return count

    async def _revoke_all(self, identity_id: str, *, actor: Actor, session: AsyncSession) -> int:
        result = await session.exec(
            update(AgentToken)
            .where(col(AgentToken.identity_id) == identity_id, col(AgentToken.revoked_at).is_(None))
            .values(revoked_at=self._ctx.clock.now(), revoked_by=actor.name)
        )
        return result.rowcount

    async def authenticate(self, token: str) -> Identity | None:
        """Return the identity a live token is bound to, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        async with self._ctx.sessions() as session:
            return (
                await session.exec(
                    select(Identity)
                    .join(AgentToken, col(AgentToken.identity_id) == col(Identity.id))
                    .where(
                        col(AgentToken.token_hash) == hash_token(token),
                        col(AgentToken.revoked_at).is_(None),
                    )
                )
            ).first()
