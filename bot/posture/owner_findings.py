"""What the nightly scan tells owners: one grouped message each, and their one-click answers."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select

from bot.access.tokens import revoke_on_owner_change
from bot.core.authorizing import check_on_identity
from bot.core.context import Context
from bot.core.persons import expanded
from bot.domain.actors import Actor
from bot.domain.authority import Verb
from bot.domain.errors import LeashError
from bot.domain.findings import RISK_ORDER, Risk, fingerprint_parts, privileged
from bot.domain.messages import Choice, ChoiceStyle, Notice, NoticeKind, Reply, Section
from bot.domain.states import Classification, EnforcementKind, EnforcementState
from bot.inventory import registry
from bot.posture import enforcement
from bot.posture.usage_scan import latest_scans
from bot.store import audit
from bot.store.tables import Enforcement as EnforcementRow
from bot.store.tables import Identity, OwnerReport, Ownership, UsageScan

SHOWN = 8
NIGHTLY = "Nightly scan"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 agent`, `2 agents`: a count with its noun agreeing."""
    return f"{count} {noun}" if count == 1 else f"{count} {plural or noun + 's'}"


def findings_headline(trigger: str, scans: Sequence[UsageScan]) -> str:
    """Say what the scan found, each count with the noun and verb it agrees with.

    "Nightly scan: 2 of your agents can do more than they use (14 unused permissions);
    1 agent is inactive."
    """
    wide = [scan for scan in scans if scan.unused]
    inactive = sum(1 for scan in scans if scan.inactive)
    parts = []
    if wide:
        unused = counted(sum(scan.unused_count for scan in wide), "unused permission")
        parts.append(
            f"1 of your agents can do more than it uses ({unused})"
            if len(wide) == 1
            else f"{len(wide)} of your agents can do more than they use ({unused})"
        )
    if inactive:
        verb = "is" if inactive == 1 else "are"
        parts.append(f"{counted(inactive, 'agent')} {verb} inactive (no recent activity)")
    return f"{trigger}: {'; '.join(parts) or 'nothing to report'}."


def _few(actions: list[str]) -> str:
    more = f" … +{len(actions) - SHOWN}" if len(actions) > SHOWN else ""
    return ", ".join(actions[:SHOWN]) + more


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else "never"


def finding_lines(scan: UsageScan, identity: Identity) -> tuple[str, ...]:
    """Describe one identity's latest findings in a few lines."""
    lines = [f"{identity.account} · risk {scan.risk} · scanned {scan.scanned_at:%Y-%m-%d %H:%M}"]
    if scan.status == "unknown":
        lines.append(f"Usage unknown ({scan.note or 'no data'}): nothing will be restricted.")
    if scan.unused:
        new = f" ({len(scan.newly_unused)} new)" if scan.newly_unused else ""
        lines.append(f"Unused {scan.unused_count}{new}: {_few(scan.unused)}")
        hot = privileged(scan.unused)
        if hot:
            lines.append(f"Privileged among them: {_few(list(hot))}")
    if scan.inactive:
        lines.append(f"Inactive: last activity {_when(scan.last_activity_at)}")
    if scan.unknown:
        lines.append(f"Not tracked by the cloud (never removed): {_few(scan.unknown)}")
    if scan.recent:
        lines.append(f"Granted recently (not judged yet): {_few(scan.recent)}")
    return tuple(lines)


def finding_section(scan: UsageScan, identity: Identity, quarantined: bool) -> Section:
    """One identity's findings with what its owner can do about them."""
    ref = identity.native_id
    if quarantined:
        return Section(
            title=f"{identity.name} — quarantined",
            lines=finding_lines(scan, identity),
            choices=(Choice("Release", f"release {ref}"),),
        )
    choices = [
        Choice("Quarantine", f"quarantine {ref} because nightly scan finding", ChoiceStyle.DANGER),
        Choice("Keep for 30 days", f"keep {ref}"),
        Choice("Not mine", f"disown {ref}"),
    ]
    if scan.unused and scan.status != "unknown":
        choices.insert(0, Choice("Restrict unused", f"restrict {ref}", ChoiceStyle.PRIMARY))
    return Section(title=identity.name, lines=finding_lines(scan, identity), choices=tuple(choices))


@dataclass(frozen=True, slots=True)
class Findings:
    """The latest scan of one identity (None if it was never scanned)."""

    identity: Identity
    scan: UsageScan | None


@dataclass(frozen=True, slots=True)
class Kept:
    """`keep`: the identity's findings are silent until `until`."""

    identity: Identity
    until: datetime


@dataclass(frozen=True, slots=True)
class Disowned:
    """`disown`: who owns the identity now (the former backup), if anyone."""

    identity: Identity
    owner: str | None


class OwnerFindings:
    """Groups the latest findings by owner, sends what changed, and records answers."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def notify_owners(self, *, trigger: str = NIGHTLY) -> int:
        """Send each owner one message about their agents' findings, only when it changed.

        `trigger` names what ran the scan ("Nightly scan", "Scan now by …"): it titles the message.
        """
        now = self._ctx.clock.now()
        by_owner, quarantined, reports = await self._findings_by_owner(now)
        sent = 0
        for owner, items in sorted(by_owner.items()):
            items.sort(key=lambda item: (RISK_ORDER[Risk(item[1].risk)], item[0].name))
            key = hashlib.sha256(
                json.dumps(
                    [fingerprint_parts(scan, identity) for identity, scan in items], default=str
                ).encode()
            ).hexdigest()
            previous = reports.get(owner)
            if previous is not None and previous.fingerprint == key:
                continue
            await self._send(owner, items, quarantined, trigger=trigger)
            await self._record_sent(owner, key, items, now=now)
            sent += 1
        return sent

    async def _findings_by_owner(
        self, now: datetime
    ) -> tuple[dict[str, list[tuple[Identity, UsageScan]]], set[str], dict[str, OwnerReport]]:
        """Each primary owner's agents with findings, the quarantined ids, the last reports."""
        ctx = self._ctx
        async with ctx.sessions() as session:
            rows = (
                await session.exec(
                    select(Identity, Ownership)
                    .join(Ownership, col(Ownership.identity_id) == col(Identity.id))
                    .where(
                        col(Identity.present),
                        col(Identity.classification) == Classification.AI_AGENT,
                        col(Ownership.primary_owner).is_not(None),
                    )
                    .order_by(col(Identity.name))
                )
            ).all()
            quarantined = set(
                (
                    await session.exec(
                        select(EnforcementRow.identity_id).where(
                            col(EnforcementRow.kind) == EnforcementKind.QUARANTINE,
                            col(EnforcementRow.state) == EnforcementState.ACTIVE,
                        )
                    )
                ).all()
            )
            reports = {r.owner: r for r in (await session.exec(select(OwnerReport))).all()}
        scans = await latest_scans(ctx, [identity.id for identity, _ in rows])
        by_owner: dict[str, list[tuple[Identity, UsageScan]]] = defaultdict(list)
        for identity, ownership in rows:
            scan = scans.get(identity.id)
            kept = identity.keep_until is not None and identity.keep_until > now
            if scan is None or kept or not (scan.unused or scan.inactive):
                continue
            assert ownership.primary_owner is not None
            by_owner[ownership.primary_owner].append((identity, scan))
        return by_owner, quarantined, reports

    async def _record_sent(
        self, owner: str, key: str, items: list[tuple[Identity, UsageScan]], *, now: datetime
    ) -> None:
        """Remember what the owner was told, and when inactive identities were first named."""
        async with self._ctx.transaction() as session:
            report = await session.get(OwnerReport, owner)
            report = report or OwnerReport(owner=owner, fingerprint=key, sent_at=now)
            report.fingerprint, report.sent_at = key, now
            session.add(report)
            newly_inactive = [
                i.id for i, s in items if s.inactive and i.inactive_notified_at is None
            ]
            if newly_inactive:
                await session.exec(
                    update(Identity)
                    .where(col(Identity.id).in_(newly_inactive))
                    .values(inactive_notified_at=now)
                )

    async def _send(
        self,
        owner: str,
        items: list[tuple[Identity, UsageScan]],
        quarantined: set[str],
        *,
        trigger: str,
    ) -> None:
        await self._ctx.tell(
            Notice(
                kind=NoticeKind.SCAN_FINDINGS,
                recipients=(owner,),
                reply=Reply(
                    text=findings_headline(trigger, [scan for _, scan in items]),
                    sections=tuple(
                        finding_section(scan, identity, identity.id in quarantined)
                        for identity, scan in items
                    ),
                ),
            )
        )

    async def unused(self, reference: str) -> Findings:
        """The latest findings of one identity."""
        async with self._ctx.sessions() as session:
            identity = await registry.resolve(reference, session=session)
        scan = (await latest_scans(self._ctx, [identity.id])).get(identity.id)
        return Findings(identity, scan)

    async def keep(self, reference: str, *, actor: Actor) -> Kept:
        """Silence an identity's findings for `keep_for` (default 30 days)."""
        ctx = self._ctx
        now = ctx.clock.now()
        until = now + ctx.rules.least_privilege.keep_for
        try:
            async with ctx.transaction() as session:
                identity = await registry.resolve(reference, session=session)
                await enforcement.check_may_act(
                    identity, actor=actor, session=session, rules=ctx.rules, what="keep"
                )
                identity.keep_until = until
                identity.owner_answered_at = now
                session.add(identity)
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="finding.kept",
                    at=now,
                    identity_id=identity.id,
                    resource=identity.native_id,
                    detail={"until": until.isoformat()},
                )
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="finding.refused", detail={"identity": reference}
            ) from None
        return Kept(identity, until)

    async def disown(self, reference: str, *, actor: Actor) -> Disowned:
        """An owner says the identity is not theirs: it becomes unowned and security is told."""
        ctx = self._ctx
        now = ctx.clock.now()
        try:
            async with ctx.transaction() as session:
                identity = await registry.resolve(reference, session=session)
                await check_on_identity(
                    Verb.DISOWN, actor, identity, session=session, rules=ctx.rules
                )
                ownership = await session.get(Ownership, identity.id)
                assert ownership is not None
                who = await expanded(actor, session=session)
                before = [ownership.primary_owner, ownership.backup_owner]
                if who.is_one_of([ownership.primary_owner]):
                    ownership.primary_owner = ownership.backup_owner
                ownership.backup_owner = None
                ownership.updated_at, ownership.updated_by = now, actor.name
                session.add(ownership)
                identity.unowned_alert_key = None
                identity.owner_answered_at = now
                session.add(identity)
                if ownership.primary_owner != before[0]:
                    await revoke_on_owner_change(identity, actor=actor, session=session, at=now)
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="owner.disowned",
                    at=now,
                    identity_id=identity.id,
                    resource=identity.native_id,
                    detail={"before": before, "after": [ownership.primary_owner, None]},
                )
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="owner.refused", detail={"identity": reference}
            ) from None
        return Disowned(identity, ownership.primary_owner)
