"""Registering who owns an identity, from chat: set, claim, confirm a claim, attest.

A claim of an unowned identity by someone who is not an admin only proposes them: they are
listed as the proposed owner and the admins are told, but they approve nothing, issue no token
and lift nothing until an admin confirms the claim (`owner confirm`). The creator CloudTrail
names, and admins, take ownership at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.access.tokens import revoke_on_owner_change
from bot.core.authorizing import check_on_identity
from bot.core.context import Context
from bot.core.persons import expanded, resolve
from bot.domain.actors import Actor
from bot.domain.authority import Verb
from bot.domain.errors import InvalidInputError, LeashError, NotAllowedError
from bot.domain.handles import keys_for
from bot.domain.messages import Choice, ChoiceStyle, Notice, NoticeKind, Reply
from bot.domain.states import ActorKind
from bot.inventory import registry
from bot.inventory.stewardship import creator_contact, security_recipients
from bot.store import audit
from bot.store.tables import Identity, Ownership

_NAME = re.compile(r"[A-Za-z0-9._@+\-]{1,256}")


@dataclass(frozen=True, slots=True)
class OwnerChange:
    primary: str
    backup: str | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    identity: Identity
    ownership: Ownership
    proposed: bool
    tokens_revoked: int
    before: str | None


class OwnershipService:
    """Set, claim, confirm and show owners (bot.domain.authority decides who may)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def set(
        self, reference: str, change: OwnerChange, *, actor: Actor
    ) -> tuple[Identity, Ownership]:
        """Register owners: at once for admins and current owners, else as a proposal."""
        ctx = self._ctx
        actor = await resolve(ctx, actor)
        try:
            for value in (change.primary, change.backup, change.team):
                if value is not None and not _NAME.fullmatch(value):
                    raise InvalidInputError(f"'{value[:60]}' is not a valid user or team name.")
            async with ctx.transaction() as session:
                outcome = await self._set(reference, change, actor=actor, session=session)
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="owner.refused", detail={"identity": reference[:200]}
            ) from None
        await self._announce(outcome, actor=actor)
        return outcome.identity, outcome.ownership

    async def _set(
        self, reference: str, change: OwnerChange, *, actor: Actor, session: AsyncSession
    ) -> _Outcome:
        ctx = self._ctx
        identity = await registry.resolve(reference, session=session)
        current = await session.get(Ownership, identity.id)
        before = current.primary_owner if current else None
        if actor.kind is not ActorKind.USER:
            raise NotAllowedError("Only people register owners.")
        who = await expanded(actor, session=session)
        admin = who.is_one_of(ctx.rules.admins)
        if before is not None:
            await check_on_identity(Verb.OWNER_SET, who, identity, session=session, rules=ctx.rules)
        pending = current.proposed_owner if current else None
        if before is None and pending and not admin and not who.is_one_of([pending]):
            raise NotAllowedError(
                f"{identity.name} is already claimed by {pending}; an admin decides."
            )
        creator = creator_contact(identity.created_by)
        # The creator CloudTrail names may claim it for themselves at once.
        creator_claims = (
            creator is not None and who.is_one_of([creator]) and who.is_one_of([change.primary])
        )
        takes_effect = before is not None or admin or creator_claims
        now = ctx.clock.now()
        ownership = current or Ownership(
            identity_id=identity.id, updated_at=now, updated_by=actor.name
        )
        if takes_effect:
            ownership.primary_owner = change.primary
            ownership.backup_owner = change.backup
            ownership.proposed_owner = ownership.proposed_at = None
        else:
            ownership.proposed_owner = change.primary
            ownership.proposed_at = now
        ownership.team = change.team if change.team is not None else ownership.team
        ownership.source = "chat"
        ownership.updated_at = now
        ownership.updated_by = actor.name
        session.add(ownership)
        event = "owner.set" if before is not None else "owner.claimed"
        await audit.append(
            session=session,
            actor=actor,
            event_type=event if takes_effect else "owner.proposed",
            at=now,
            identity_id=identity.id,
            resource=identity.native_id,
            detail={
                "before": [before, current.backup_owner if current else None],
                "after": [ownership.primary_owner, ownership.backup_owner, ownership.team],
                "proposed": ownership.proposed_owner,
            },
        )
        revoked = 0
        if takes_effect and keys_for([before]) != keys_for([ownership.primary_owner]):
            revoked = await revoke_on_owner_change(identity, actor=actor, session=session, at=now)
        return _Outcome(identity, ownership, not takes_effect, revoked, before)

    async def _announce(self, outcome: _Outcome, *, actor: Actor) -> None:
        """Tell the admins of a proposal; tell the owners when tokens ended with a handover."""
        identity, ownership = outcome.identity, outcome.ownership
        if outcome.proposed:
            proposed = ownership.proposed_owner or ""
            for_whom = "" if actor.is_one_of([proposed]) else f" for {proposed}"
            await self._ctx.tell(
                Notice(
                    kind=NoticeKind.UNOWNED,
                    recipients=security_recipients(self._ctx.rules),
                    reply=Reply(
                        text=f"{actor.name} claims {identity.name}{for_whom}. Until an admin "
                        "confirms it, the claim carries no authority (no approvals, no tokens).",
                        lines=(f"ARN: {identity.native_id}",),
                        choices=(
                            Choice(
                                "Confirm claim",
                                f"owner confirm {identity.native_id}",
                                ChoiceStyle.PRIMARY,
                            ),
                            Choice("Assign to…", f"owner assign {identity.native_id}"),
                        ),
                    ),
                )
            )
        if outcome.tokens_revoked:
            recipients = tuple(p for p in (outcome.before, ownership.primary_owner) if p)
            await self._ctx.tell(
                Notice(
                    kind=NoticeKind.ENFORCEMENT,
                    recipients=tuple(dict.fromkeys(recipients)),
                    reply=Reply(
                        text=f"{identity.name} changed owner, so its {outcome.tokens_revoked} "
                        "agent token(s) were revoked: the new owner issues a new one with "
                        f"`token issue {identity.name}`.",
                        ok=False,
                    ),
                )
            )

    async def claim(self, reference: str, *, actor: Actor) -> tuple[Identity, Ownership]:
        """Claim an unowned identity (a proposal until an admin confirms it)."""
        return await self.set(reference, OwnerChange(actor.name), actor=actor)

    async def confirm(self, reference: str, *, actor: Actor) -> tuple[Identity, Ownership, str]:
        """An admin confirms a pending claim; an owner re-confirms their ownership (attests).

        Returns the identity, its ownership and what was confirmed: "claim" or "attestation".
        """
        ctx = self._ctx
        actor = await resolve(ctx, actor)
        try:
            async with ctx.transaction() as session:
                identity = await registry.resolve(reference, session=session)
                ownership = await session.get(Ownership, identity.id)
                if ownership is not None and ownership.proposed_owner:
                    confirmed = await self._confirm_claim(identity, ownership, actor, session)
                    return identity, confirmed, "claim"
                await check_on_identity(
                    Verb.ATTEST, actor, identity, session=session, rules=ctx.rules
                )
                assert ownership is not None
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
        return identity, ownership, "attestation"

    async def _confirm_claim(
        self, identity: Identity, ownership: Ownership, actor: Actor, session: AsyncSession
    ) -> Ownership:
        ctx = self._ctx
        await check_on_identity(
            Verb.OWNER_CONFIRM, actor, identity, session=session, rules=ctx.rules
        )
        now = ctx.clock.now()
        before = ownership.primary_owner
        ownership.primary_owner, ownership.proposed_owner = ownership.proposed_owner, None
        ownership.proposed_at = None
        ownership.updated_at, ownership.updated_by = now, actor.name
        ownership.attested_at, ownership.attested_by = now, actor.name
        session.add(ownership)
        await audit.append(
            session=session,
            actor=actor,
            event_type="owner.claim_confirmed",
            at=now,
            identity_id=identity.id,
            resource=identity.native_id,
            detail={"before": before, "owner": ownership.primary_owner},
        )
        if keys_for([before]) != keys_for([ownership.primary_owner]):
            await revoke_on_owner_change(identity, actor=actor, session=session, at=now)
        return ownership
