"""Restrict unused permissions: preview exactly what is denied, confirm, and undo exactly."""

from __future__ import annotations

import logging

from bot.core.context import Context, identity_ref
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.messages import Choice, ChoiceStyle, Reply
from bot.domain.rules import Enforcement as Mode
from bot.domain.states import EnforcementKind
from bot.posture import enforcement
from bot.posture.restriction_exemptions import RestrictionExemptions
from bot.posture.usage_scan import latest_scans
from bot.store.tables import Identity, UsageScan
from cloud.base import CloudConflictError, CloudError, RestrictionPlan

log = logging.getLogger("leash.restriction")

SHOWN = 40
FINGERPRINT_CHARS = 12


class NothingToRestrictError(LeashError):
    code = "nothing_to_restrict"


class ChangedSincePreviewError(LeashError):
    code = "changed_since_preview"


def _listed(actions: list[str] | tuple[str, ...]) -> str:
    more = f" … and {len(actions) - SHOWN} more" if len(actions) > SHOWN else ""
    return ", ".join(actions[:SHOWN]) + more


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

    async def preview(self, reference: str, *, actor: Actor) -> Reply:
        """Show exactly what would be denied, with a button that confirms this very plan."""
        try:
            identity = await self._load(reference, actor=actor)
            scan, plan = await self._plan(identity)
        except LeashError as error:
            raise await self._ctx.refuse(
                error, actor=actor, event_type="restrict.refused", detail={"identity": reference}
            ) from None
        return self._preview_reply(identity, scan, plan)

    def _preview_reply(self, identity: Identity, scan: UsageScan, plan: RestrictionPlan) -> Reply:
        mode = self._ctx.rules.least_privilege.enforcement
        lines = [
            f"Deny ({len(plan.deny)}, {plan.mechanism} policy): {_listed(plan.deny)}",
            f"Still allowed — used: {_listed(scan.used) or 'none'}",
            f"Still allowed — not tracked by the cloud: {_listed(scan.unknown) or 'none'}",
        ]
        if scan.recent:
            lines.append(f"Still allowed — granted recently: {_listed(scan.recent)}")
        if plan.coarsened:
            lines.append("Actions were grouped into wildcards to fit the cloud's size limit.")
        if mode is Mode.REPORT:
            lines.append("Report-only mode: confirming records this, nothing is written.")
        confirm = f"restrict {identity.native_id} confirm {plan.fingerprint[:FINGERPRINT_CHARS]}"
        return Reply(
            text=f"Restrict {identity.name}: deny {scan.unused_count} unused permission(s)?",
            lines=tuple(lines),
            choices=(Choice("Confirm restrict", confirm, ChoiceStyle.DANGER),),
        )

    async def confirm(self, reference: str, fingerprint: str, *, actor: Actor) -> Reply:
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
            detail = {"mechanism": plan.mechanism, "fingerprint": plan.fingerprint}
            if ctx.rules.least_privilege.enforcement is Mode.REPORT:
                await enforcement.record_report(
                    ctx,
                    identity,
                    EnforcementKind.RESTRICT,
                    actor=actor,
                    actions=list(plan.deny),
                    detail=detail,
                    reason=None,
                    event_type="restrict.reported",
                )
                return Reply(
                    text=f"Report-only: {identity.name} would lose {len(plan.deny)} "
                    "unused permission(s). Nothing was written.",
                    lines=(f"Would deny: {_listed(plan.deny)}",),
                )
            row = await enforcement.claim(
                ctx,
                identity,
                EnforcementKind.RESTRICT,
                actor=actor,
                actions=list(plan.deny),
                detail=detail,
                reason=None,
            )
        except ChangedSincePreviewError as error:
            await ctx.refuse(error, actor=actor, event_type="restrict.refused")
            fresh = self._preview_reply(identity, scan, plan)
            return Reply(text=str(error), ok=False, lines=fresh.lines, choices=fresh.choices)
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="restrict.refused", detail={"identity": reference}
            ) from None
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
        passing: tuple[str, ...] = ()
        try:  # grants approved before the restriction keep working until they end
            if await RestrictionExemptions(ctx).refresh(identity, always=True):
                passing = ("Live grants pass through it on their resources until they end.",)
        except CloudError as error:
            log.warning("live grants on %s are behind its restriction: %s", identity.name, error)
            passing = (f"Live grants may be cancelled by it until they end: {error}",)
        return Reply(
            text=f"Restricted {identity.name}: {len(plan.deny)} unused permission(s) denied.",
            lines=(*passing, f"Undo with `unrestrict {identity.name}`."),
            choices=(Choice("Undo", f"unrestrict {identity.native_id}"),),
        )

    async def lift(self, reference: str, *, actor: Actor) -> Reply:
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
        if not released:
            return Reply(text=f"The restriction of {identity.name} was already lifted.")
        return Reply(text=f"Lifted the restriction of {identity.name}; its policies are as before.")
