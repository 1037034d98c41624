"""One entry point for least privilege: the nightly pass and on-demand scans."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.authorizing import check_everywhere
from bot.core.context import Context
from bot.domain.actors import Actor
from bot.domain.authority import Verb
from bot.domain.errors import LeashError, NotAllowedError
from bot.domain.messages import Reply
from bot.domain.rules import GuardrailMode
from bot.inventory.stewardship import Stewardship
from bot.posture import enforcement
from bot.posture.digest import DigestService
from bot.posture.guardrails import GuardrailFlow, GuardrailRun, GuardrailView
from bot.posture.owner_findings import Disowned, Findings, Kept, OwnerFindings
from bot.posture.quarantine import Quarantined, QuarantineFlow, Released
from bot.posture.restriction import (
    Lifted,
    Restricted,
    RestrictionChanged,
    RestrictionFlow,
    RestrictionPreview,
    RestrictionReported,
)
from bot.posture.usage_scan import ScanSummary, UsageScanner

# What ran a scan, as the owners' message is titled (the nightly run's title is the default).
ON_DEMAND = "Scan now (asked for in chat)"
FROM_CLI = "Scan from the command line"


@dataclass(frozen=True, slots=True)
class NightlyReport:
    """What the least-privilege part of the nightly run did."""

    scan: ScanSummary
    guardrails: GuardrailRun
    owners_told: int
    auto_quarantined: int


@dataclass(frozen=True, slots=True)
class ScanReport:
    """`scan now` of everything: the scan, and how many owners were told."""

    summary: ScanSummary
    owners_told: int


class LeastPrivilege:
    """Scans, owner messages, restriction, quarantine, guardrails and digests together."""

    def __init__(self, ctx: Context, stewardship: Stewardship) -> None:
        self._ctx = ctx
        self._stewardship = stewardship
        self.scanner = UsageScanner(ctx)
        self.findings = OwnerFindings(ctx)
        self.restrictions = RestrictionFlow(ctx)
        self.quarantines = QuarantineFlow(ctx)
        self.guardrails = GuardrailFlow(ctx)
        self.digests = DigestService(ctx)

    async def nightly(self) -> NightlyReport:
        """Scan every identity, guard new agents, tell owners, quarantine silent zombies."""
        summary = await self.scanner.scan()
        guardrails = await self.guardrails.apply()
        told = await self.findings.notify_owners()
        quarantined = await self.quarantines.auto_quarantine()
        return NightlyReport(summary, guardrails, told, quarantined)

    async def scan_now(self, reference: str | None, *, actor: Actor) -> ScanReport | Findings:
        """Scan one identity (its owners or an admin) or everything (admins), then report."""
        ctx = self._ctx
        try:
            if reference is None:
                check_everywhere(Verb.SCAN_ALL, actor, ctx.rules)
                summary = await self.scanner.scan()
                told = await self.findings.notify_owners(trigger=ON_DEMAND)
                return ScanReport(summary, told)
            identity = await enforcement.load(ctx, reference, actor=actor, what="scan")
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="scan.refused", detail={"identity": reference}
            ) from None
        summary = await self.scanner.scan([identity.id])
        if summary.failures:
            raise LeashError(f"Could not scan {identity.name}: {summary.failures[identity.name]}")
        return await self.findings.unused(identity.id)

    async def disown(self, reference: str, *, actor: Actor) -> Disowned:
        """An owner says "not mine"; the unowned alert goes out at once."""
        disowned = await self.findings.disown(reference, actor=actor)
        await self._stewardship.alert_unowned()
        return disowned

    # The commands, one call each for the layers above (they never reach the flows inside).

    async def scan(self, identity_ids: list[str] | None = None) -> ScanSummary:
        return await self.scanner.scan(identity_ids)

    async def notify_owners(self, *, trigger: str = FROM_CLI) -> int:
        return await self.findings.notify_owners(trigger=trigger)

    async def unused(self, reference: str) -> Findings:
        return await self.findings.unused(reference)

    async def keep(self, reference: str, *, actor: Actor) -> Kept:
        return await self.findings.keep(reference, actor=actor)

    async def preview_restriction(self, reference: str, *, actor: Actor) -> RestrictionPreview:
        return await self.restrictions.preview(reference, actor=actor)

    async def restrict(
        self, reference: str, fingerprint: str, *, actor: Actor
    ) -> Restricted | RestrictionReported | RestrictionChanged:
        return await self.restrictions.confirm(reference, fingerprint, actor=actor)

    async def unrestrict(self, reference: str, *, actor: Actor) -> Lifted:
        return await self.restrictions.lift(reference, actor=actor)

    async def quarantine(self, reference: str, *, actor: Actor, reason: str) -> Quarantined:
        return await self.quarantines.quarantine(reference, actor=actor, reason=reason)

    async def release(self, reference: str, *, actor: Actor) -> Released:
        return await self.quarantines.release(reference, actor=actor)

    async def show_guardrail(self, reference: str) -> GuardrailView:
        return await self.guardrails.show(reference)

    async def apply_guardrails(
        self,
        reference: str | None,
        *,
        actor: Actor,
        dry_run: bool,
        mode: GuardrailMode | None = None,
    ) -> tuple[GuardrailRun, GuardrailMode]:
        """Apply guardrails (everyone's needs the right to); `mode` defaults to the policy's.

        Returns the run and the mode it ran in (an "off" policy runs as a report).
        """
        if reference is None:
            try:
                check_everywhere(Verb.GUARDRAIL_APPLY_ALL, actor, self._ctx.rules)
            except NotAllowedError as error:
                raise await self._ctx.refuse(
                    error, actor=actor, event_type="guardrail.refused"
                ) from None
        mode = mode or self._ctx.rules.least_privilege.guardrail
        if mode is GuardrailMode.OFF:
            mode = GuardrailMode.REPORT
        run = await self.guardrails.apply(reference, actor=actor, mode=mode, dry_run=dry_run)
        return run, mode

    async def send_digest(self, team: str, *, actor: Actor) -> str:
        """Post a team's weekly digest (for those allowed to); return the channel it went to."""
        try:
            check_everywhere(Verb.DIGEST, actor, self._ctx.rules)
        except NotAllowedError as error:
            raise await self._ctx.refuse(error, actor=actor, event_type="digest.refused") from None
        await self.digests.send(team)
        return self._ctx.rules.teams[team].channel

    async def digest(self, team: str, *, post: bool) -> Reply:
        """A team's weekly digest, posted to its channel when `post`."""
        if post:
            return await self.digests.send(team)
        return self.digests.render(await self.digests.build(team))

    async def send_all_digests(self) -> int:
        return await self.digests.send_all()
