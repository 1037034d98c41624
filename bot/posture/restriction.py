"""Restrict unused permissions: preview exactly what is denied, confirm, and undo exactly."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.core.context import Context, identity_ref
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.rules import Enforcement as Mode
from bot.domain.states import EnforcementKind
from bot.posture import enforcement
from bot.posture.restriction_exemptions import RestrictionExemptions
from bot.posture.usage_scan import latest_scans
from bot.store.tables import Enforcement, Identity, UsageScan
from cloud.base import CloudConflictError, CloudError, RestrictionPlan

log = logging.getLogger("leash.restriction")

SHOWN = 40
FINGERPRINT_CHARS = 12


class NothingToRestrictError(LeashError):
    code = "nothing_to_restrict"


class ChangedSincePreviewError(LeashError):
    code = "changed_since_preview"


def listed(actions: list[str] | tuple[str, ...]) -> str:
    """At most SHOWN actions, then how many more."""
    more = f" … and {len(actions) - SHOWN} more" if len(actions) > SHOWN else ""
    return ", ".join(actions[:SHOWN]) + more


@dataclass(frozen=True, slots=True)
class RestrictionPreview:
    """What `restrict <identity>` would deny, and what stays allowed."""

    identity: Identity
    scan: UsageScan
    plan: RestrictionPlan
    report_only: bool


@dataclass(frozen=True, slots=True)
class RestrictionChanged:
    """The permissions changed since the confirmed preview: nothing written, a new preview."""

    message: str
    preview: RestrictionPreview


@dataclass(frozen=True, slots=True)
class RestrictionReported:
    """Report-only mode: the restriction was recorded, nothing written."""

    identity: Identity
    plan: RestrictionPlan


@dataclass(frozen=True, slots=True)
class Restricted:
    """The deny was written; `passing` says how live grants fare, if there are any."""

    identity: Identity
    plan: RestrictionPlan
    passing: str | None


@dataclass(frozen=True, slots=True)
class Lifted:
    """`unrestrict`: released is False when it had already been lifted."""

    identity: Identity
    released: bool


class RestrictionFlow:
    """Owner-confirmed deny of an identity's unused permissions, reversible."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def _load(self, reference: str, *, actor: Actor) -> Identity:
        return await enforcement.load(self._ctx, reference, actor=actor, what="restrict")

    async def _plan(self, identity: Identity) -> tuple[UsageScan, RestrictionPlan]:
        scan = (await latest_scans(self._ctx, [identity.id])).get(identity.id)
        if scan is None:
            raise NothingToRestrictError(
                f"{identity.name} has not been scanned yet: `scan now {identity.name}` first."
            )
        if scan.status == "unknown":
            raise NothingToRestrictError(
                f"The usage of {identity.name} is unknown ({scan.note or 'no data'}); "
                "Leash never restricts on unknown usage."
            )
        if not scan.unused:
            raise NothingToRestrictError(f"{identity.name} has no unused permissions to restrict.")
        keep = [*scan.used, *scan.unknown, *scan.recent]
        try:
            plan = await self._ctx.provider_for(identity).plan_restrict(
                identity_ref(identity), scan.unused, keep
            )
        except CloudError as error:
            raise LeashError(f"Cannot restrict {identity.name}: {error}") from None
        return scan, plan

    async def preview(self, reference: str, *, actor: Actor) -> RestrictionPreview:
        """What would be denied, for a button that confirms this very plan."""
        try:
            identity = await self._load(reference, actor=actor)
            scan, plan = await self._plan(identity)
        except LeashError as error:
            raise await self._ctx.refuse(
                error, actor=actor, event_type="restrict.refused", detail={"identity": reference}
            ) from None
        return self._preview(identity, scan, plan)

    def _preview(
        self, identity: Identity, scan: UsageScan, plan: RestrictionPlan
    ) -> RestrictionPreview:
        report_only = self._ctx.rules.least_privilege.enforcement is Mode.REPORT
        return RestrictionPreview(identity, scan, plan, report_only=report_only)

    async def confirm(
        self, reference: str, fingerprint: str, *, actor: Actor
    ) -> Restricted | RestrictionReported | RestrictionChanged:
        """Write the deny, re-checked against the identity as it is now."""
        ctx = self._ctx
        try:
            identity = await self._load(reference, actor=actor)
            scan, plan = await self._plan(identity)
            if not fingerprint or plan.fingerprint[:FINGERPRINT_CHARS] != fingerprint.lower():
                raise ChangedSincePreviewError(
                    f"The permissions of {identity.name} changed since that preview; "
                    "nothing was written. Here is the new one."
                )
            row = await self._claim(identity, plan, actor=actor)
        except ChangedSincePreviewError as error:
            await ctx.refuse(error, actor=actor, event_type="restrict.refused")
            return RestrictionChanged(str(error), self._preview(identity, scan, plan))
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="restrict.refused", detail={"identity": reference}
            ) from None
        if row is None:
            return RestrictionReported(identity, plan)
        await self._write(row, identity, plan, actor=actor)
        return Restricted(identity, plan, passing=await self._exempt_live_grants(identity))

    async def _claim(
        self, identity: Identity, plan: RestrictionPlan, *, actor: Actor
    ) -> Enforcement | None:
        """Claim the restriction's row; in report-only mode record it instead (None)."""
        detail = {"mechanism": plan.mechanism, "fingerprint": plan.fingerprint}
        if self._ctx.rules.least_privilege.enforcement is Mode.REPORT:
            await enforcement.record_report(
                self._ctx,
                identity,
                EnforcementKind.RESTRICT,
                actor=actor,
                actions=list(plan.deny),
                detail=detail,
                reason=None,
                event_type="restrict.reported",
            )
            return None
        return await enforcement.claim(
            self._ctx,
            identity,
            EnforcementKind.RESTRICT,
            actor=actor,
            actions=list(plan.deny),
            detail=detail,
            reason=None,
        )

    async def _write(
        self, row: Enforcement, identity: Identity, plan: RestrictionPlan, *, actor: Actor
    ) -> None:
        """Deny in the cloud; on failure the claimed row is abandoned and the error raised."""
        ctx = self._ctx
        try:
            snapshot = await ctx.provider_for(identity).restrict(identity_ref(identity), plan)
        except CloudError as error:
            await enforcement.abandon(
                ctx, row, identity, actor=actor, event_type="restrict.failed", error=str(error)
            )
            changed = isinstance(error, CloudConflictError)
            raise LeashError(
                f"{identity.name} was not restricted: "
                + ("its permissions changed since the preview." if changed else str(error))
            ) from None
        await enforcement.activate(
            ctx,
            row,
            identity,
            actor=actor,
            snapshot=dict(snapshot),
            event_type="restrict.applied",
            detail={"denied": list(plan.deny)[:500], "mechanism": plan.mechanism},
        )

    async def _exempt_live_grants(self, identity: Identity) -> str | None:
        """Let grants approved before the restriction keep working until they end."""
        try:
            if await RestrictionExemptions(self._ctx).refresh(identity, always=True):
                return "Live grants pass through it on their resources until they end."
        except CloudError as error:
            log.warning("live grants on %s are behind its restriction: %s", identity.name, error)
            return f"Live grants may be cancelled by it until they end: {error}"
        return None

    async def lift(self, reference: str, *, actor: Actor) -> Lifted:
        """Remove the restriction, restoring the identity's previous policies exactly."""
        identity, released = await enforcement.undo(
            self._ctx,
            reference,
            EnforcementKind.RESTRICT,
            actor=actor,
            verb="unrestrict",
            not_enforced="{name} is not restricted by Leash.",
            in_cloud=lambda provider, ref, snapshot: provider.unrestrict(ref, snapshot),
            event_type="restrict.lifted",
        )
        return Lifted(identity, released=released)
