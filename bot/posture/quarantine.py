"""Quarantine: deny everything to an identity, reversibly, deleting nothing."""

from __future__ import annotations

import logging

from sqlmodel import col, select

from bot.core.context import Context, identity_ref
from bot.domain import log_context
from bot.domain.actors import SYSTEM, Actor
from bot.domain.errors import InvalidInputError, LeashError
from bot.domain.messages import Choice, Notice, NoticeKind, Reply
from bot.domain.rules import Enforcement as Mode
from bot.domain.states import EnforcementKind, EnforcementState
from bot.posture import enforcement
from bot.posture.usage_scan import latest_scans
from bot.store.tables import Enforcement, Identity, Ownership
from cloud.base import CloudConflictError, CloudError

log = logging.getLogger("leash.quarantine")

MAX_REASON = 500


class QuarantineFlow:
    """Owners and admins quarantine and release; the nightly scan may quarantine zombies."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def quarantine(self, reference: str, *, actor: Actor, reason: str) -> Reply:
        """Deny the identity everything now, older sessions included, until released."""
        with log_context.about(identity=reference.strip()[:512]):
            return await self._quarantine(reference, actor=actor, reason=reason)

    async def _quarantine(self, reference: str, *, actor: Actor, reason: str) -> Reply:
        ctx = self._ctx
        reason = " ".join(reason.split())
        try:
            if not reason:
                raise InvalidInputError("Say why (quarantine <identity> because <reason>).")
            if len(reason) > MAX_REASON:
                raise InvalidInputError(f"Keep the reason under {MAX_REASON} characters.")
            identity = await enforcement.load(ctx, reference, actor=actor, what="quarantine")
            log_context.add(identity=identity.native_id)
            if ctx.rules.least_privilege.enforcement is Mode.REPORT:
                await enforcement.record_report(
                    ctx,
                    identity,
                    EnforcementKind.QUARANTINE,
                    actor=actor,
                    actions=["*"],
                    detail={},
                    reason=reason,
                    event_type="quarantine.reported",
                )
                return Reply(
                    text=f"Report-only: {identity.name} would be quarantined. Nothing was written."
                )
            row = await enforcement.claim(
                ctx,
                identity,
                EnforcementKind.QUARANTINE,
                actor=actor,
                actions=["*"],
                detail={},
                reason=reason,
            )
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="quarantine.refused", detail={"identity": reference}
            ) from None
        try:
            snapshot = await ctx.provider_for(identity).quarantine(
                identity_ref(identity), at=ctx.clock.now(), reason=reason
            )
        except CloudError as error:
            await enforcement.abandon(
                ctx, row, identity, actor=actor, event_type="quarantine.failed", error=str(error)
            )
            if isinstance(error, CloudConflictError):
                raise LeashError(
                    f"{identity.name} already carries a quarantine Leash did not record; "
                    "nothing was changed."
                ) from None
            raise LeashError(f"{identity.name} was not quarantined: {error}") from None
        await enforcement.activate(
            ctx,
            row,
            identity,
            actor=actor,
            snapshot=dict(snapshot),
            event_type="quarantine.applied",
            detail={"reason": reason},
        )
        log.info("quarantined %s (by %s): %s", identity.name, actor.name, reason)
        reply = Reply(
            text=f"Quarantined {identity.name}: every call it makes is denied, "
            "including sessions issued before now.",
            lines=(
                f"Reason: {reason}",
                "Nothing was deleted. Release lifts the deny-all; sessions issued before now "
                "stay denied for good (AWS), so credentials already handed out never work again.",
            ),
            choices=(Choice("Release", f"release {identity.native_id}"),),
        )
        await self._tell_owner(identity, actor, reply)
        return reply

    async def _tell_owner(self, identity: Identity, actor: Actor, reply: Reply) -> None:
        async with self._ctx.sessions() as session:
            ownership = await session.get(Ownership, identity.id)
        owners = [ownership.primary_owner, ownership.backup_owner] if ownership else []
        recipients = tuple(o for o in owners if o and not actor.is_one_of([o]))
        await self._ctx.tell(
            Notice(
                kind=NoticeKind.ENFORCEMENT,
                recipients=recipients,
                reply=Reply(
                    text=f"{actor.name} — {reply.text}", lines=reply.lines, choices=reply.choices
                ),
            )
        )

    async def release(self, reference: str, *, actor: Actor) -> Reply:
        """Remove exactly what the quarantine added."""
        identity, released = await enforcement.undo(
            self._ctx,
            reference,
            EnforcementKind.QUARANTINE,
            actor=actor,
            verb="release",
            not_enforced="{name} is not quarantined; nothing to release.",
            in_cloud=lambda provider, ref, snapshot: provider.release(ref, snapshot),
            event_type="quarantine.released",
        )
        if not released:
            return Reply(text=f"{identity.name} was already released.")
        reply = Reply(
            text=f"Released {identity.name}: its permissions and tags are as before the "
            "quarantine, and sessions issued before the quarantine stay denied (on AWS, "
            "`leash-revoked-sessions`): whatever held old credentials must get new ones."
        )
        await self._tell_owner(identity, actor, reply)
        return reply

    async def auto_quarantine(self) -> int:
        """Quarantine inactive identities whose owner did not answer in time (policy option)."""
        ctx = self._ctx
        rules = ctx.rules.least_privilege
        if rules.auto_quarantine_after is None:
            return 0
        now = ctx.clock.now()
        inactive_before = now - rules.auto_quarantine_after
        told_before = now - rules.owner_answer_within
        async with ctx.sessions() as session:
            candidates = (
                await session.exec(
                    select(Identity).where(
                        col(Identity.present),
                        col(Identity.inactive_notified_at).is_not(None),
                        col(Identity.inactive_notified_at) <= told_before,
                    )
                )
            ).all()
            live = set(
                (
                    await session.exec(
                        select(Enforcement.identity_id).where(
                            col(Enforcement.kind) == EnforcementKind.QUARANTINE,
                            col(Enforcement.state).in_(
                                [*enforcement.LIVE_STATES, EnforcementState.REPORTED]
                            ),
                        )
                    )
                ).all()
            )
        scans = await latest_scans(ctx, [identity.id for identity in candidates])
        done = 0
        for identity in candidates:
            scan = scans.get(identity.id)
            answered = identity.owner_answered_at
            told = identity.inactive_notified_at
            assert told is not None
            if (
                identity.id in live
                or scan is None
                or not scan.inactive
                or (identity.keep_until is not None and identity.keep_until > now)
                or (answered is not None and answered >= told)
            ):
                continue
            last = scan.last_activity_at or identity.created_at
            if last is None or last > inactive_before:
                continue
            days = (now - last).days
            try:
                await self.quarantine(
                    identity.id,
                    actor=SYSTEM,
                    reason=f"inactive for {days} days; the owner did not answer within "
                    f"{rules.owner_answer_within.days} days",
                )
            except LeashError:
                continue
            done += 1
        return done
