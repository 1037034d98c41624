"""Quarantine: deny everything to an identity, reversibly, deleting nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bot.core import notices
from bot.core.context import Context, identity_ref
from bot.domain import log_context
from bot.domain.actors import SYSTEM, Actor
from bot.domain.errors import InvalidInputError, LeashError
from bot.domain.messages import Reply
from bot.domain.rules import Enforcement as Mode
from bot.domain.states import EnforcementKind, EnforcementState
from bot.posture import enforcement
from bot.posture.usage_scan import latest_scans
from bot.store.tables import Enforcement, Identity, Ownership
from cloud.base import CloudConflictError, CloudError

log = logging.getLogger("leash.quarantine")

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A quarantine: `reported` in report-only mode (nothing written)."""

    identity: Identity
    reason: str
    reported: bool


@dataclass(frozen=True, slots=True)
class Released:
    """A release: `released` is False when it had already been released."""

    identity: Identity
    released: bool


class QuarantineFlow:
    """Owners and admins quarantine and release; the nightly scan may quarantine zombies."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def quarantine(self, reference: str, *, actor: Actor, reason: str) -> Quarantined:
        """Deny the identity everything now, older sessions included, until released."""
        with log_context.about(identity=reference.strip()[:512]):
            return await self._quarantine(reference, actor=actor, reason=reason)

    async def _quarantine(self, reference: str, *, actor: Actor, reason: str) -> Quarantined:
        ctx = self._ctx
        reason = " ".join(reason.split())
        try:
            if not reason:
                raise InvalidInputError("Say why (quarantine <identity> because <reason>).")
            if len(reason) > MAX_REASON:
                raise InvalidInputError(f"Keep the reason under {MAX_REASON} characters.")
            identity = await enforcement.load(ctx, reference, actor=actor, what="quarantine")
            log_context.add(identity=identity.native_id)
            row = await self._claim(identity, actor=actor, reason=reason)
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="quarantine.refused", detail={"identity": reference}
            ) from None
        if row is None:
            return Quarantined(identity, reason, reported=True)
        await self._write(row, identity, actor=actor, reason=reason)
        log.info("quarantined %s (by %s): %s", identity.name, actor.name, reason)
        await self._tell_owner(identity, actor, notices.quarantined(identity, reason))
        return Quarantined(identity, reason, reported=False)

    async def _claim(self, identity: Identity, *, actor: Actor, reason: str) -> Enforcement | None:
        """Claim the quarantine's row; in report-only mode record it instead (None)."""
        if self._ctx.rules.least_privilege.enforcement is Mode.REPORT:
            await enforcement.record_report(
                self._ctx,
                identity,
                EnforcementKind.QUARANTINE,
                actor=actor,
                actions=["*"],
                detail={},
                reason=reason,
                event_type="quarantine.reported",
            )
            return None
        return await enforcement.claim(
            self._ctx,
            identity,
            EnforcementKind.QUARANTINE,
            actor=actor,
            actions=["*"],
            detail={},
            reason=reason,
        )

    async def _write(
        self, row: Enforcement, identity: Identity, *, actor: Actor, reason: str
    ) -> None:
        """Deny-all in the cloud; on failure the claimed row is abandoned and the error raised."""
        ctx = self._ctx
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

    async def _tell_owner(self, identity: Identity, actor: Actor, what: Reply) -> None:
        async with self._ctx.sessions() as session:
            ownership = await session.get(Ownership, identity.id)
        owners = [ownership.primary_owner, ownership.backup_owner] if ownership else []
        recipients = tuple(o for o in owners if o and not actor.is_one_of([o]))
        await self._ctx.tell(notices.enforcement_done(actor.name, what, recipients))

    async def release(self, reference: str, *, actor: Actor) -> Released:
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
        if released:
            await self._tell_owner(identity, actor, notices.released(identity))
        return Released(identity, released=released)

    async def auto_quarantine(self) -> int:
        """Quarantine inactive identities whose owner did not answer in time (policy option)."""
        rules = self._ctx.rules.least_privilege
        if rules.auto_quarantine_after is None:
            return 0
        now = self._ctx.clock.now()
        inactive_before = now - rules.auto_quarantine_after
        candidates, live = await self._candidates(told_before=now - rules.owner_answer_within)
        scans = await latest_scans(self._ctx, [identity.id for identity in candidates])
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

    async def _candidates(self, *, told_before: datetime) -> tuple[list[Identity], set[str]]:
        """Present identities told they are inactive before `told_before`, and the ids of
        those already quarantined (or reported so)."""
        async with self._ctx.sessions() as session:
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
        return list(candidates), live
