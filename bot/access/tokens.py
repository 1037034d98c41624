"""Agent API tokens: bound to one identity and its owner, expiring, stored hashed, shown once.

A token authenticates only while (a) it is not revoked, (b) it is younger than
`[tokens] max_age`, (c) the identity is still owned by whom it was owned by when the token was
issued, and (d) the person who issued it still may manage the identity's tokens. A change of
owner also revokes the identity's tokens outright, audited, and the owners are told.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.authorizing import check_on_identity, identity_facts
from bot.core.context import Context, new_id
from bot.core.persons import expanded, resolve
from bot.domain.actors import Actor
from bot.domain.authority import Subject, Verb, decide
from bot.domain.errors import LeashError, NotAllowedError
from bot.domain.handles import keys_for
from bot.domain.states import ActorKind
from bot.inventory import registry
from bot.store import audit
from bot.store.tables import AgentToken, Identity, Ownership

TOKEN_PREFIX = "lsh_"  # noqa: S105 - a public prefix that makes leaked tokens easy to spot


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# A dead token's use is audited at most this often, per token.
DEAD_AUDIT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    identity: Identity
    replaced: int
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What `token list` shows of a token (never the secret)."""

    id: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    state: str


async def revoke_on_owner_change(
    identity: Identity, *, actor: Actor, session: AsyncSession, at: datetime
) -> int:
    """Revoke every live token of an identity whose owner changed; audit it."""
    result = await session.exec(
        update(AgentToken)
        .where(col(AgentToken.identity_id) == identity.id, col(AgentToken.revoked_at).is_(None))
        .values(revoked_at=at, revoked_by=actor.name)
    )
    count: int = result.rowcount
    if count:
        await audit.append(
            session=session,
            actor=actor,
            event_type="token.revoked",
            at=at,
            identity_id=identity.id,
            resource=identity.native_id,
            detail={"count": count, "why": "owner changed"},
        )
    return count


class TokenService:
    """Issue, rotate, list, revoke and check the bearer tokens agents use on the API."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._dead_audited: dict[str, float] = {}  # token id -> when its use was last audited

    async def issue(self, reference: str, *, actor: Actor) -> IssuedToken:
        """Create a token for an identity, replacing its earlier ones (also: rotate)."""
        ctx = self._ctx
        actor = await resolve(ctx, actor)
        try:
            async with ctx.transaction() as session:
                identity = await registry.resolve(reference, session=session)
                await check_on_identity(
                    Verb.TOKEN_ISSUE, actor, identity, session=session, rules=ctx.rules
                )
                now = ctx.clock.now()
                replaced = await self._revoke_all(identity.id, actor=actor, session=session)
                ownership = await session.get(Ownership, identity.id)
                token = TOKEN_PREFIX + secrets.token_urlsafe(32)
                record = AgentToken(
                    id=new_id("t"),
                    identity_id=identity.id,
                    token_hash=hash_token(token),
                    created_at=now,
                    created_by=actor.name,
                    expires_at=now + ctx.rules.tokens.max_age,
                    owner_at_issue=ownership.primary_owner if ownership else None,
                )
                session.add(record)
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="token.issued",
                    at=now,
                    identity_id=identity.id,
                    resource=identity.native_id,
                    detail={
                        "token_id": record.id,
                        "replaced": replaced,
                        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
                    },
                )
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="token.refused", detail={"identity": reference[:200]}
            ) from None
        return IssuedToken(token, identity, replaced, record.expires_at)

    async def revoke(self, reference: str, *, actor: Actor) -> int:
        """Revoke every live token of an identity."""
        ctx = self._ctx
        actor = await resolve(ctx, actor)
        try:
            async with ctx.transaction() as session:
                identity = await registry.resolve(reference, session=session)
                await check_on_identity(
                    Verb.TOKEN_REVOKE, actor, identity, session=session, rules=ctx.rules
                )
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

    async def list(self, reference: str, *, actor: Actor) -> tuple[Identity, tuple[TokenInfo, ...]]:
        """The identity's tokens, newest first: when issued, by whom, until when, state."""
        ctx = self._ctx
        actor = await resolve(ctx, actor)
        try:
            async with ctx.sessions() as session:
                identity = await registry.resolve(reference, session=session)
                await check_on_identity(
                    Verb.TOKEN_LIST, actor, identity, session=session, rules=ctx.rules
                )
                rows = (
                    await session.exec(
                        select(AgentToken)
                        .where(col(AgentToken.identity_id) == identity.id)
                        .order_by(col(AgentToken.created_at).desc())
                        .limit(20)
                    )
                ).all()
                ownership = await session.get(Ownership, identity.id)
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="token.refused", detail={"identity": reference[:200]}
            ) from None
        now = ctx.clock.now()
        return identity, tuple(
            TokenInfo(
                row.id,
                row.created_at,
                row.created_by,
                row.expires_at,
                self._state(row, ownership, now),
            )
            for row in rows
        )

    @staticmethod
    def _state(row: AgentToken, ownership: Ownership | None, now: datetime) -> str:
        if row.revoked_at is not None:
            return f"revoked by {row.revoked_by}"
        if row.expires_at is None or row.expires_at <= now:
            return "expired"
        if not _same_owner(row, ownership):
            return "void (the owner changed)"
        return "live"

    async def _revoke_all(self, identity_id: str, *, actor: Actor, session: AsyncSession) -> int:
        result = await session.exec(
            update(AgentToken)
            .where(col(AgentToken.identity_id) == identity_id, col(AgentToken.revoked_at).is_(None))
            .values(revoked_at=self._ctx.clock.now(), revoked_by=actor.name)
        )
        count: int = result.rowcount
        return count

    async def authenticate(self, token: str) -> Identity | None:
        """Return the identity a live token is bound to, or None (see the module's rules).

        A token Leash issued that no longer works (revoked, expired, its identity's owner
        changed, its issuer no longer answers for the identity) is refused and the refusal
        audited against that identity, at most once a minute per token; a token Leash never
        issued names nobody and is only refused.
        """
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        ctx = self._ctx
        async with ctx.sessions() as session:
            found = (
                await session.exec(
                    select(AgentToken, Identity)
                    .join(Identity, col(AgentToken.identity_id) == col(Identity.id))
                    .where(col(AgentToken.token_hash) == hash_token(token))
                )
            ).first()
            if found is None:
                return None
            record, identity = found
            dead = await self._why_dead(record, identity, session=session)
        if dead is None:
            return identity
        await self._audit_dead(record, identity, dead)
        return None

    async def _why_dead(
        self, record: AgentToken, identity: Identity, *, session: AsyncSession
    ) -> str | None:
        """Why an issued token no longer works, or None while it does."""
        ctx = self._ctx
        if record.revoked_at is not None:
            return "revoked"
        if record.expires_at is None or record.expires_at <= ctx.clock.now():
            return "expired"
        ownership = await session.get(Ownership, identity.id)
        if not _same_owner(record, ownership):
            return "its identity's owner changed since it was issued"
        issuer = await expanded(Actor(record.created_by, ActorKind.USER, "token"), session=session)
        facts = identity_facts(identity, ownership, ctx.rules)
        if not decide(Verb.TOKEN_ISSUE, Subject.of(issuer), facts).allowed:
            return "its issuer no longer answers for the identity"
        return None

    async def _audit_dead(self, record: AgentToken, identity: Identity, why: str) -> None:
        """Audit the use of a dead token, at most once a minute per token (a replay loop of an
        old token must not fill the trail)."""
        moment = time.monotonic()
        if moment - self._dead_audited.get(record.id, -DEAD_AUDIT_SECONDS) < DEAD_AUDIT_SECONDS:
            return
        if len(self._dead_audited) >= 10_000:
            self._dead_audited.clear()
        self._dead_audited[record.id] = moment
        await self._ctx.refuse(
            NotAllowedError(f"The token is {why}."),
            actor=Actor(identity.id, ActorKind.AGENT, "api"),
            event_type="token.refused",
            identity_id=identity.id,
            detail={"token": record.id, "reason": why},
        )


def _same_owner(record: AgentToken, ownership: Ownership | None) -> bool:
    now_owner = ownership.primary_owner if ownership else None
    if record.owner_at_issue is None or now_owner is None:
        return record.owner_at_issue == now_owner
    return keys_for([record.owner_at_issue]) == keys_for([now_owner])
