"""The weekly digest: per team, what it owns, what changed, and the unused-permission trend."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.context import Context
from bot.domain.errors import InvalidInputError
from bot.domain.messages import Attachment, Notice, NoticeKind, Reply
from bot.domain.states import Classification, EnforcementKind, EnforcementState, Tier
from bot.store.tables import AccessRequest, Enforcement, Grant, Identity, Ownership, UsageScan

log = logging.getLogger("leash.digest")

WEEKS = 8
WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class TeamDigest:
    """Everything one team's weekly message says."""

    team: str
    channel: str
    platform: str
    week_ending: datetime
    owned: int
    agents: int
    new: tuple[str, ...]
    unowned: tuple[str, ...]
    grants: int
    privileged_grants: int
    top_requesters: tuple[tuple[str, int], ...]
    unused_total: int
    weeks: tuple[str, ...]
    unused_trend: tuple[int, ...]
    inactive_trend: tuple[int, ...]
    inactive: tuple[str, ...]
    quarantined: tuple[str, ...]
    overdue_attestations: tuple[str, ...]


def _latest_before(scans: list[UsageScan], moment: datetime) -> dict[str, UsageScan]:
    found: dict[str, UsageScan] = {}
    for scan in scans:  # ordered by id: later scans replace earlier ones
        if scan.scanned_at <= moment:
            found[scan.identity_id] = scan
    return found


@dataclass(frozen=True, slots=True)
class _TeamRows:
    rows: list[tuple[Identity, Ownership]]
    tagged: list[str]
    grants: list[tuple[Grant, AccessRequest]]
    scans: list[UsageScan]
    quarantined: set[str]


async def _quarantined(ids: list[str], *, session: AsyncSession) -> set[str]:
    """Which of `ids` are quarantined now."""
    return set(
        (
            await session.exec(
                select(Enforcement.identity_id).where(
                    col(Enforcement.identity_id).in_(ids),
                    col(Enforcement.kind) == EnforcementKind.QUARANTINE,
                    col(Enforcement.state) == EnforcementState.ACTIVE,
                )
            )
        ).all()
    )


class DigestService:
    """Builds and sends each team's digest to the channel the policy file names."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def teams(self) -> tuple[str, ...]:
        return tuple(sorted(self._ctx.rules.teams))

    async def build(self, team: str) -> TeamDigest:
        """Collect one team's numbers for the week ending now."""
        ctx = self._ctx
        rule = ctx.rules.teams.get(team)
        if rule is None:
            known = ", ".join(self.teams()) or "none in the policy file"
            raise InvalidInputError(f"There is no team '{team[:40]}' (teams: {known}).")
        now = ctx.clock.now()
        week_ago = now - WEEK
        found = await self._read(team, since=week_ago)
        rows, grants = found.rows, found.grants
        names = {identity.id: identity.name for identity, _ in rows}
        week_ends = [now - WEEK * back for back in range(WEEKS - 1, -1, -1)]
        trend = [_latest_before(found.scans, end) for end in week_ends]
        latest = trend[-1]
        attest_due = now - ctx.rules.ownership.attest_every
        owned = [(i, o) for i, o in rows if o.primary_owner]
        return TeamDigest(
            team=team,
            channel=rule.channel,
            platform=rule.platform.value,
            week_ending=now,
            owned=len(owned),
            agents=sum(1 for i, _ in rows if i.classification == Classification.AI_AGENT),
            new=tuple(i.name for i, _ in rows if i.created_at and i.created_at >= week_ago),
            unowned=(*(i.name for i, o in rows if not o.primary_owner), *found.tagged),
            grants=len(grants),
            privileged_grants=sum(1 for _, r in grants if r.tier != Tier.NORMAL),
            top_requesters=tuple(Counter(g.requester for g, _ in grants).most_common(3)),
            unused_total=sum(scan.unused_count for scan in latest.values()),
            weeks=tuple(f"{end:%m-%d}" for end in week_ends),
            unused_trend=tuple(sum(s.unused_count for s in week.values()) for week in trend),
            inactive_trend=tuple(sum(1 for s in week.values() if s.inactive) for week in trend),
            inactive=tuple(names[i] for i, s in latest.items() if s.inactive),
            quarantined=tuple(sorted(names[i] for i in found.quarantined)),
            overdue_attestations=tuple(
                f"{i.name} ({o.primary_owner})"
                for i, o in owned
                if (o.attested_at or o.updated_at) < attest_due
            ),
        )

    async def _read(self, team: str, *, since: datetime) -> _TeamRows:
        """The team's identities, tagged unowned ones, the week's grants, scans, quarantines."""
        async with self._ctx.sessions() as session:
            rows = list(
                (
                    await session.exec(
                        select(Identity, Ownership)
                        .join(Ownership, col(Ownership.identity_id) == col(Identity.id))
                        .where(col(Identity.present), col(Ownership.team) == team)
                        .order_by(col(Identity.name))
                    )
                ).all()
            )
            ids = [identity.id for identity, _ in rows]
            grants = list(
                (
                    await session.exec(
                        select(Grant, AccessRequest)
                        .join(AccessRequest, col(AccessRequest.id) == col(Grant.request_id))
                        .where(col(Grant.identity_id).in_(ids), col(Grant.created_at) >= since)
                    )
                ).all()
            )
            scans = list(
                (
                    await session.exec(
                        select(UsageScan)
                        .where(col(UsageScan.identity_id).in_(ids))
                        .order_by(col(UsageScan.id))
                    )
                ).all()
            )
            return _TeamRows(
                rows=rows,
                tagged=await self._tagged_unowned(team, session=session),
                grants=grants,
                scans=scans,
                quarantined=await _quarantined(ids, session=session),
            )

    async def _tagged_unowned(self, team: str, *, session: AsyncSession) -> list[str]:
        """Unowned identities often have no ownership row at all: their team is a tag."""
        loose = (
            await session.exec(
                select(Identity)
                .join(Ownership, col(Ownership.identity_id) == col(Identity.id), isouter=True)
                .where(col(Identity.present), col(Ownership.identity_id).is_(None))
                .order_by(col(Identity.name))
            )
        ).all()
        team_tags = self._ctx.rules.ownership.team_tags
        return [
            identity.name
            for identity in loose
            if any(identity.tags.get(key) == team for key in team_tags)
        ]

    def render(self, digest: TeamDigest) -> Reply:
        """The digest as a message, with its trend chart attached when charts are available."""
        previous = digest.unused_trend[-2] if len(digest.unused_trend) > 1 else 0
        change = digest.unused_total - previous
        requesters = ", ".join(f"{who} ({count})" for who, count in digest.top_requesters)
        lines = [
            f"Identities owned: {digest.owned} ({digest.agents} agents) · "
            f"new this week: {len(digest.new)} · unowned: {len(digest.unowned)}",
            f"Grants this week: {digest.grants} ({digest.privileged_grants} privileged)"
            + (f" · top requesters: {requesters}" if requesters else ""),
            f"Unused permissions: {digest.unused_total} ({change:+d} since last week)",
            f"Inactive agents: {', '.join(digest.inactive) or 'none'}",
            f"Quarantined: {', '.join(digest.quarantined) or 'none'}",
            f"Overdue attestations: {', '.join(digest.overdue_attestations) or 'none'}",
        ]
        if digest.new:
            lines.append(f"New: {', '.join(digest.new[:20])}")
        if digest.unowned:
            lines.append(f"Unowned: {', '.join(digest.unowned[:20])}")
        attachments: tuple[Attachment, ...] = ()
        charts = self._ctx.charts
        if charts is not None:
            try:
                png = charts.render_trend(
                    f"{digest.team}: unused permissions and inactive agents",
                    digest.weeks,
                    {
                        "unused permissions": [float(v) for v in digest.unused_trend],
                        "inactive agents": [float(v) for v in digest.inactive_trend],
                    },
                )
                attachments = (
                    Attachment(
                        filename=f"leash-{digest.team}-{digest.week_ending:%Y-%m-%d}.png",
                        content=png,
                        title=f"{digest.team}: last {len(digest.weeks)} weeks",
                    ),
                )
            except Exception:
                log.exception("the digest chart of %s could not be drawn", digest.team)
        return Reply(
            text=f"Weekly Leash digest for {digest.team} "
            f"(week ending {digest.week_ending:%Y-%m-%d})",
            lines=tuple(lines),
            attachments=attachments,
        )

    async def send(self, team: str) -> Reply:
        """Build, render and post one team's digest to its channel."""
        digest = await self.build(team)
        reply = self.render(digest)
        await self._ctx.tell(
            Notice(
                kind=NoticeKind.DIGEST,
                recipients=(digest.channel,),
                reply=reply,
                platform=digest.platform,
            )
        )
        return reply

    async def send_all(self) -> int:
        for team in self.teams():
            await self.send(team)
        return len(self.teams())
