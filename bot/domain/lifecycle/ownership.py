"""Registering who owns an identity, from chat."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain import audit, registry
from bot.domain.audit import Actor
from bot.domain.errors import InvalidInputError, LeashError, NotAllowedError
from bot.domain.lifecycle.context import Context
from bot.domain.models import ActorKind, Identity, Ownership

_NAME = re.compile(r"[A-Za-z0-9._@+\-]{1,256}")


@dataclass(frozen=True, slots=True)
class OwnerChange:
    primary: str
    backup: str | None = None
    team: str | None = None


class OwnershipService:
    """Set and show owners; only admins, the current owner, or a claimant of an unowned identity."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def set(
        self, reference: str, change: OwnerChange, *, actor: Actor
    ) -> tuple[Identity, Ownership]:
        ctx = self._ctx
        try:
            for value in (change.primary, change.backup, change.team):
                if value is not None and not _NAME.fullmatch(value):
                    raise InvalidInputError(f"'{value[:60]}' is not a valid user or team name.")
            async with ctx.transaction() as session:
                identity = await registry.resolve(reference, session=session)
                current = await session.get(Ownership, identity.id)
                owner = current.primary_owner if current else None
                owned = owner is not None
                if actor.kind is not ActorKind.USER:
                    raise NotAllowedError("Only people register owners.")
                if owned and not actor.is_one_of([*ctx.rules.admins, owner]):
                    raise NotAllowedError(
                        f"{identity.name} is owned by {owner}; "
                        "only they or an admin can change that."
                    )
                now = ctx.clock.now()
                before = (
                    (current.primary_owner, current.backup_owner, current.team)
                    if current
                    else (None, None, None)
                )
                ownership = current or Ownership(
                    identity_id=identity.id, updated_at=now, updated_by=actor.name
                )
                ownership.primary_owner = change.primary
                ownership.backup_owner = change.backup
                ownership.team = change.team if change.team is not None else ownership.team
                ownership.source = "chat"
                ownership.updated_at = now
                ownership.updated_by = actor.name
                session.add(ownership)
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="owner.set" if owned else "owner.claimed",
                    at=now,
                    identity_id=identity.id,
                    resource=identity.native_id,
                    detail={
                        "before": list(before),
                        "after": [change.primary, change.backup, ownership.team],
                    },
                )
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="owner.refused", detail={"identity": reference[:200]}
            ) from None
        return identity, ownership

    async def claim(self, reference: str, *, actor: Actor) -> tuple[Identity, Ownership]:
        """Take ownership of an unowned identity (the usual rules of `set` apply)."""
        return await self.set(reference, OwnerChange(actor.name), actor=actor)

    async def confirm(self, reference: str, *, actor: Actor) -> tuple[Identity, Ownership]:
        """An owner re-confirms that the identity is still theirs (attestation)."""
        ctx = self._ctx
        try:
            async with ctx.transaction() as session:
                identity = await registry.resolve(reference, session=session)
                ownership = await session.get(Ownership, identity.id)
                owners = [ownership.primary_owner, ownership.backup_owner] if ownership else []
                if ownership is None or not actor.is_one_of(owners):
                    raise NotAllowedError(f"Only an owner of {identity.name} can confirm it.")
                now = ctx.clock.now()
                ownership.attested_at = now
                ownership.attested_by = actor.name
                session.add(ownership)
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="owner.attested",
                    at=now,
                    identity_id=identity.id,
                    resource=identity.native_id,
                )
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="owner.refused", detail={"identity": reference[:200]}
            ) from None
        return identity, ownership
