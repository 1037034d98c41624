"""One entry point for least privilege: the nightly pass and on-demand scans."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.authorizing import check_everywhere
from bot.core.context import Context
from bot.domain.actors import Actor
from bot.domain.authority import Verb
from bot.domain.errors import LeashError
from bot.domain.messages import Reply
from bot.inventory.stewardship import Stewardship
from bot.posture import enforcement
from bot.posture.digest import DigestService
from bot.posture.guardrails import GuardrailFlow, GuardrailRun
from bot.posture.owner_findings import OwnerFindings
from bot.posture.quarantine import QuarantineFlow
from bot.posture.restriction import RestrictionFlow
from bot.posture.usage_scan import ScanSummary, UsageScanner


@dataclass(frozen=True, slots=True)
class NightlyReport:
    """What the least-privilege part of the nightly run did."""

    scan: ScanSummary
    guardrails: GuardrailRun
    owners_told: int
    auto_quarantined: int


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

    async def scan_now(self, reference: str | None, *, actor: Actor) -> Reply:
        """Scan one identity (its owners or an admin) or everything (admins), then report."""
        ctx = self._ctx
        try:
            if reference is None:
                check_everywhere(Verb.SCAN_ALL, actor, ctx.rules)
                summary = await self.scanner.scan()
                told = await self.findings.notify_owners()
                return Reply(
                    text=f"Scanned {summary.scanned} identities: {summary.unused_total} unused "
                    f"permissions, {summary.inactive} inactive, usage unknown for "
                    f"{summary.unknown}. {told} owner(s) told.",
                    lines=tuple(
                        f"Failed: {n}: {e}" for n, e in list(summary.failures.items())[:10]
                    ),
                )
            identity = await enforcement.load(ctx, reference, actor=actor, what="scan")
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="scan.refused", detail={"identity": reference}
            ) from None
        summary = await self.scanner.scan([identity.id])
        if summary.failures:
            raise LeashError(f"Could not scan {identity.name}: {summary.failures[identity.name]}")
        return await self.findings.unused(identity.id)

    async def disown(self, reference: str, *, actor: Actor) -> Reply:
        """An owner says "not mine"; the unowned alert goes out at once."""
        reply = await self.findings.disown(reference, actor=actor)
        await self._stewardship.alert_unowned()
        return reply
