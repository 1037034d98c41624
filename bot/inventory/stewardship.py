"""Keeping every identity owned: alerts about unowned ones, and periodic attestation."""

from __future__ import annotations

import hashlib
import json
import re

from sqlmodel import col, or_, select

from bot.core.context import Context
from bot.domain.actors import SYSTEM
from bot.domain.messages import Choice, ChoiceStyle, Notice, NoticeKind, Reply
from bot.domain.rules import Rules
from bot.store import audit
from bot.store.tables import Identity, Ownership

_EMAIL = re.compile(r"[^@\s()]+@[^@\s()]+\.[A-Za-z]{2,24}")


def alert_key(identity: Identity) -> str:
    """What an unowned alert is about; when it changes, the identity is worth a new alert."""
    facts = [
        identity.classification,
        sorted(identity.tags.items()),
        sorted(identity.attached_policies),
        sorted(identity.inline_policies),
        identity.created_by,
    ]
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()[:32]


def creator_contact(created_by: str | None) -> str | None:
    """The creator's e-mail when CloudTrail gave one (a person Leash can ask)."""
    found = _EMAIL.search(created_by or "")
    return found.group(0) if found else None


def security_recipients(rules: Rules) -> tuple[str, ...]:
    """Who hears about ownership: the security channel, else the admins."""
    channel = rules.ownership.security_channel
    return (channel,) if channel else tuple(sorted(rules.admins))


def _describe(identity: Identity) -> tuple[str, ...]:
    lines = [
        f"ARN: {identity.native_id}",
        f"Account: {identity.account} · {identity.classification} "
        f"({identity.classification_reason})",
        f"Created by: {identity.created_by or 'unknown'}",
    ]
    if identity.granted_by:
        lines.append(f"Permissions granted by: {', '.join(identity.granted_by[:5])}")
    policies = [*identity.attached_policies, *identity.inline_policies]
    if policies:
        lines.append(f"Policies: {', '.join(policies[:6])}{' …' if len(policies) > 6 else ''}")
    return tuple(lines)


class Stewardship:
    """Alerts about unowned identities (once per change) and asks owners to re-confirm."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _security(self) -> tuple[str, ...]:
        return security_recipients(self._ctx.rules)

    async def alert_unowned(self) -> int:
        """One alert per unowned identity, repeated only when the identity changes."""
        ctx = self._ctx
        async with ctx.sessions() as session:
            rows = (
                await session.exec(
                    select(Identity)
                    .join(Ownership, col(Ownership.identity_id) == col(Identity.id), isouter=True)
                    .where(col(Identity.present), col(Ownership.primary_owner).is_(None))
                    .order_by(col(Identity.name))
                )
            ).all()
        alerted = 0
        for identity in rows:
            key = alert_key(identity)
            if identity.unowned_alert_key == key or not await self._mark_alerted(identity, key):
                continue
            alerted += 1
            await self._alert(identity)
        return alerted

    async def _mark_alerted(self, identity: Identity, key: str) -> bool:
        """Record the alert's key; False if another replica alerted about this change first."""
        async with self._ctx.transaction() as session:
            # Locked: a replica alerting at the same moment waits, then sees this key.
            current = await session.get(Identity, identity.id, with_for_update=True)
            if current is None or current.unowned_alert_key == key:
                return False
            current.unowned_alert_key = key
            session.add(current)
            await audit.append(
                session=session,
                actor=SYSTEM,
                event_type="identity.unowned_alerted",
                at=self._ctx.clock.now(),
                identity_id=identity.id,
                resource=identity.native_id,
                detail={"created_by": identity.created_by},
            )
        return True

    async def _alert(self, identity: Identity) -> None:
        """Tell security, and whoever created the identity, that it has no owner."""
        ctx = self._ctx
        choices = (
            Choice("Claim", f"owner claim {identity.native_id}", ChoiceStyle.PRIMARY),
            Choice("Assign to…", f"owner assign {identity.native_id}"),
        )
        await ctx.tell(
            Notice(
                kind=NoticeKind.UNOWNED,
                recipients=self._security(),
                reply=Reply(
                    text=f"{identity.name} has no owner.",
                    lines=_describe(identity),
                    choices=choices,
                    ok=False,
                ),
            )
        )
        creator = creator_contact(identity.created_by)
        if creator:
            await ctx.tell(
                Notice(
                    kind=NoticeKind.UNOWNED,
                    recipients=(creator,),
                    reply=Reply(
                        text=f"You created {identity.name}, which has no owner. Is it yours?",
                        lines=_describe(identity),
                        choices=choices[:1],
                    ),
                )
            )

    async def ask_attestation(self) -> int:
        """Ask owners whose confirmation is due to re-confirm; report those overdue."""
        ctx = self._ctx
        now = ctx.clock.now()
        due_before = now - ctx.rules.ownership.attest_every
        async with ctx.sessions() as session:
            rows = (
                await session.exec(
                    select(Identity, Ownership)
                    .join(Ownership, col(Ownership.identity_id) == col(Identity.id))
                    .where(
                        col(Identity.present),
                        col(Ownership.primary_owner).is_not(None),
                        or_(
                            col(Ownership.attested_at) < due_before,
                            col(Ownership.attested_at).is_(None)
                            & (col(Ownership.updated_at) < due_before),
                        ),
                    )
                    .order_by(col(Identity.name))
                )
            ).all()
        asked = 0
        overdue: list[str] = []
        for identity, ownership in rows:
            overdue.append(f"{identity.name}: {ownership.primary_owner}")
            if ownership.attestation_asked_at and ownership.attestation_asked_at >= due_before:
                continue
            async with ctx.transaction() as session:
                current = await session.get(Ownership, identity.id)
                if current is None:
                    continue
                current.attestation_asked_at = now
                session.add(current)
            asked += 1
            assert ownership.primary_owner is not None
            await self._ask(identity, ownership.primary_owner)
        if overdue:
            await self._report_overdue(overdue)
        return asked

    async def _ask(self, identity: Identity, owner: str) -> None:
        """Ask the owner to confirm they still own the identity, or hand it over."""
        await self._ctx.tell(
            Notice(
                kind=NoticeKind.ATTESTATION,
                recipients=(owner,),
                reply=Reply(
                    text=f"Do you still own {identity.name}? Please confirm.",
                    lines=_describe(identity),
                    choices=(
                        Choice(
                            "Still mine",
                            f"owner confirm {identity.native_id}",
                            ChoiceStyle.PRIMARY,
                        ),
                        Choice("Hand over…", f"owner assign {identity.native_id}"),
                    ),
                ),
            )
        )

    async def _report_overdue(self, overdue: list[str]) -> None:
        """Tell security which ownerships are overdue for confirmation."""
        await self._ctx.tell(
            Notice(
                kind=NoticeKind.ATTESTATION_OVERDUE,
                recipients=self._security(),
                reply=Reply(
                    text=f"{len(overdue)} ownership(s) not confirmed for "
                    f"{self._ctx.rules.ownership.attest_every.days} days:",
                    lines=tuple(overdue[:50]),
                    ok=False,
                ),
            )
        )
