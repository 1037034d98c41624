"""The weekly digest: per team, what it owns, what changed, and the unused-permission trend."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import notices
from bot.core.context import Context
from bot.domain.errors import InvalidInputError
from bot.domain.messages import Attachment, Mention, Notice, NoticeKind, Reply
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
    scanned: bool  # any of the team's identities was ever scanned
    unused_total: int
    weeks: tuple[str, ...]
    unused_trend: tuple[int | None, ...]  # None: no scan that week
    inactive_trend: tuple[int | None, ...]
    inactive: tuple[str, ...]
    quarantined: tuple[str, ...]
    overdue_attestations: tuple[str, ...]


def _latest_before(scans: list[UsageScan], moment: datetime) -> dict[str, UsageScan]:
    found: dict[str, UsageScan] = {}
    for scan in scans:  # ordered by id: later scans replace earlier ones
        if scan.scanned_at <= moment:
            found[scan.identity_id] = scan
    return found


def _week(scans: list[UsageScan], end: datetime) -> dict[str, UsageScan] | None:
    """Each identity's latest scan at `end`, or None when nothing was scanned that week.

    A week with no scan is a gap in the trend, not a week of zeros.
    """
    if not any(end - WEEK < scan.scanned_at <= end for scan in scans):
        return None
    return _latest_before(scans, end)


def labels(identities: Iterable[Identity]) -> dict[str, str]:
    """How the digest names each identity: its name, with its account when names clash."""
    listed = list(identities)
    clashes = Counter(identity.name for identity in listed)
    return {
        identity.id: identity.name
        if clashes[identity.name] == 1
        else f"{identity.name} ({identity.account})"
        for identity in listed
    }


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class _TeamRows:
    rows: list[tuple[Identity, Ownership]]
    tagged: list[Identity]
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


def _plotted(trend: tuple[int | None, ...]) -> list[float]:
    """The chart's values: a week with no scan is NaN, which the chart leaves as a gap."""
    return [math.nan if value is None else float(value) for value in trend]


def _grants_line(digest: TeamDigest) -> tuple[str, tuple[Mention, ...]]:
    """The week's grants and top requesters (line 1 of the digest), each requester marked."""
    line = f"Grants this week: {digest.grants} ({digest.privileged_grants} privileged)"
    mentions: list[Mention] = []
    for index, (who, count) in enumerate(digest.top_requesters):
        line += " · top requesters: " if index == 0 else ", "
        mentions.extend(notices.named(who, line=1, start=len(line)))
        line += f"{who} ({count})"
    return line, tuple(mentions)


def _usage_lines(digest: TeamDigest) -> list[str]:
    """Unused permissions (with the change since last week) and inactive agents."""
    if not digest.scanned:
        return [
            "Unused permissions: no scans yet (the nightly scan fills this in)",
            "Inactive agents: no scans yet",
        ]
    previous = digest.unused_trend[-2] if len(digest.unused_trend) > 1 else None
    change = (
        f"{digest.unused_total - previous:+d} since last week"
        if previous is not None
        else "no scan the week before"
    )
    return [
        f"Unused permissions: {digest.unused_total} ({change})",
        f"Inactive agents: {', '.join(digest.inactive) or 'none'}",
    ]


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
        names = labels([identity for identity, _ in rows] + found.tagged)
        week_ends = [now - WEEK * back for back in range(WEEKS - 1, -1, -1)]
        trend = [_week(found.scans, end) for end in week_ends]
        latest = _latest_before(found.scans, now)
        attest_due = now - ctx.rules.ownership.attest_every
        owned = [(i, o) for i, o in rows if o.primary_owner]
        return TeamDigest(
            team=team,
            channel=rule.channel,
            platform=rule.platform.value,
            week_ending=now,
            owned=len(owned),
            agents=sum(1 for i, _ in rows if i.classification == Classification.AI_AGENT),
            new=_unique(names[i.id] for i, _ in rows if i.created_at and i.created_at >= week_ago),
            unowned=_unique(
                [*(names[i.id] for i, o in rows if not o.primary_owner)]
                + [names[i.id] for i in found.tagged]
            ),
            grants=len(grants),
            privileged_grants=sum(1 for _, r in grants if r.tier != Tier.NORMAL),
            top_requesters=tuple(Counter(g.requester for g, _ in grants).most_common(3)),
            scanned=bool(latest),
            unused_total=sum(scan.unused_count for scan in latest.values()),
            weeks=tuple(f"{end:%m-%d}" for end in week_ends),
            unused_trend=tuple(
                None if week is None else sum(s.unused_count for s in week.values())
                for week in trend
            ),
            inactive_trend=tuple(
                None if week is None else sum(1 for s in week.values() if s.inactive)
                for week in trend
            ),
            inactive=_unique(names[i] for i, s in latest.items() if s.inactive),
            quarantined=_unique(sorted(names[i] for i in found.quarantined)),
            overdue_attestations=_unique(
                f"{names[i.id]} ({o.primary_owner})"
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

    async def _tagged_unowned(self, team: str, *, session: AsyncSession) -> list[Identity]:
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
            identity
            for identity in loose
            if any(identity.tags.get(key) == team for key in team_tags)
        ]

    def render(self, digest: TeamDigest) -> Reply:
        """The digest as a message, with its trend chart attached once there are scans."""
        grants, requesters = _grants_line(digest)
        lines = [
            f"Identities owned: {digest.owned} ({digest.agents} agents) · "
            f"new this week: {len(digest.new)} · unowned: {len(digest.unowned)}",
            grants,
            *_usage_lines(digest),
            f"Quarantined: {', '.join(digest.quarantined) or 'none'}",
            f"Overdue attestations: {', '.join(digest.overdue_attestations) or 'none'}",
        ]
        if digest.new:
            lines.append(f"New: {', '.join(digest.new[:20])}")
        if digest.unowned:
            lines.append(f"Unowned: {', '.join(digest.unowned[:20])}")
        return Reply(
            text=f"Weekly Leash digest for {digest.team} "
            f"(week ending {digest.week_ending:%Y-%m-%d})",
            lines=tuple(lines),
            attachments=self._chart(digest),
            mentions=requesters,
        )

    def _chart(self, digest: TeamDigest) -> tuple[Attachment, ...]:
        """The trend chart, when charts are available and the team has been scanned."""
        charts = self._ctx.charts
        if charts is None or not digest.scanned:
            return ()
        try:
            png = charts.render_trend(
                f"{digest.team}: the last {len(digest.weeks)} weeks",
                digest.weeks,
                {
                    "Unused permissions": _plotted(digest.unused_trend),
                    "Inactive agents": _plotted(digest.inactive_trend),
                },
            )
        except Exception:
            log.exception("the digest chart of %s could not be drawn", digest.team)
            return ()
        return (
            Attachment(
                filename=f"leash-{digest.team}-{digest.week_ending:%Y-%m-%d}.png",
                content=png,
                title=f"{digest.team}: last {len(digest.weeks)} weeks",
            ),
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
