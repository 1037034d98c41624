"""Pure least-privilege judgements: what a usage report means for an identity, and its risk.

The cloud says what was used; Leash adds what it knows: when each permission was first seen
granted (an action granted last week is not "unused for 90 days"), which unused actions are
privileged, and what changed since the previous scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bot.domain import catalog
from bot.domain.catalog import ActionCategory
from bot.domain.catalog import azure as catalog_azure
from bot.domain.catalog import gcp as catalog_gcp
from bot.domain.rules import LeastPrivilegeRules
from cloud.base import Exemption, UsageReport, UsageStatus


class Identity(Protocol):
    """What findings read of an identity (the stored row satisfies it)."""

    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> datetime | None: ...


class UsageScan(Protocol):
    """What findings read of a stored scan."""

    @property
    def unused(self) -> list[str]: ...

    @property
    def granted_since(self) -> dict[str, str]: ...

    @property
    def inactive(self) -> bool: ...

    @property
    def risk(self) -> str: ...

    @property
    def status(self) -> str: ...


class Grant(Protocol):
    """What findings read of a live grant."""

    @property
    def id(self) -> str: ...

    @property
    def actions(self) -> list[str]: ...

    @property
    def resources(self) -> list[str]: ...

    @property
    def expires_at(self) -> datetime: ...


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


RISK_ORDER = {Risk.HIGH: 0, Risk.MEDIUM: 1, Risk.LOW: 2}


@dataclass(frozen=True, slots=True)
class Judgement:
    """One identity's findings from one scan, ready to store as a `UsageScan`."""

    status: UsageStatus
    used: tuple[str, ...]
    unused: tuple[str, ...]
    unknown: tuple[str, ...]
    recent: tuple[str, ...]
    granted_since: dict[str, str]
    last_activity_at: datetime | None
    inactive: bool
    risk: Risk
    newly_unused: tuple[str, ...]
    note: str


def _parse(moment: str) -> datetime | None:
    try:
        return datetime.fromisoformat(moment)
    except ValueError:
        return None


def _service(action: str) -> str:
    return action.split(":", 1)[0].lower()


def granted_since(
    report: UsageReport, identity: Identity, previous: UsageScan | None, now: datetime
) -> dict[str, str]:
    """When each granted pattern was first seen: carried over, else creation, else now.

    On the first scan Leash knows no better than the identity's creation date; a pattern
    that appears later was granted between two scans, so it is dated at this scan.
    """
    carried = dict(previous.granted_since) if previous else {}
    first = identity.created_at if previous is None and identity.created_at else now
    return {pattern: carried.get(pattern, first.isoformat()) for pattern in report.granted}


def _old_enough(
    action: str, since: Mapping[str, str], granted: Sequence[str], cutoff: datetime
) -> bool:
    """Say whether every granted pattern that gives `action` was granted before `cutoff`."""
    service = _service(action)
    givers = [
        pattern
        for pattern in granted
        if pattern == "*"
        or pattern.lower() == action.lower()
        or (
            _service(pattern) == service
            and ("*" in pattern or "?" in pattern or action.endswith(":*"))
        )
    ]
    if not givers:
        return True
    moments = [_parse(since.get(pattern, "")) for pattern in givers]
    return all(moment is not None and moment <= cutoff for moment in moments)


def _inactive(
    report: UsageReport, identity: Identity, rules: LeastPrivilegeRules, now: datetime
) -> bool:
    if report.status is UsageStatus.UNKNOWN and report.last_activity_at is None:
        return False
    cutoff = now - rules.inactive_after
    if report.last_activity_at is not None:
        return report.last_activity_at < cutoff
    return identity.created_at is not None and identity.created_at < cutoff


def privileged(actions: Iterable[str]) -> tuple[str, ...]:
    """The actions (or wildcards) that cover something in the privileged catalogue."""
    return tuple(dict.fromkeys(match.requested for match in catalog.matches(list(actions))))


def assess_risk(unused: Sequence[str], inactive: bool, granted: Sequence[str]) -> Risk:
    """High: unused privileged permissions, or an inactive identity holding some.

    Medium: any other unused permission or inactivity. Low: nothing to remove.
    """
    if privileged(unused) or (inactive and privileged(granted)):
        return Risk.HIGH
    if unused or inactive:
        return Risk.MEDIUM
    return Risk.LOW


def judge(
    report: UsageReport,
    *,
    identity: Identity,
    previous: UsageScan | None,
    rules: LeastPrivilegeRules,
    now: datetime,
) -> Judgement:
    """Turn a usage report into findings; nothing is unused when usage is unknown."""
    since = granted_since(report, identity, previous, now)
    cutoff = now - rules.unused_after
    unused: list[str] = []
    recent: list[str] = []
    if report.status is not UsageStatus.UNKNOWN:
        for action in report.not_used:
            if _old_enough(action, since, report.granted, cutoff):
                unused.append(action)
            else:
                recent.append(action)
    inactive = _inactive(report, identity, rules, now)
    # On the first scan nothing is "new": there is nothing to compare with.
    before = set(previous.unused) if previous else set(unused)
    return Judgement(
        status=report.status,
        used=tuple(sorted(report.used)),
        unused=tuple(sorted(set(unused))),
        unknown=tuple(sorted(set(report.unknown))),
        recent=tuple(sorted(set(recent))),
        granted_since=since,
        last_activity_at=report.last_activity_at,
        inactive=inactive,
        risk=assess_risk(unused, inactive, report.granted),
        newly_unused=tuple(sorted(set(unused) - before)),
        note=report.note[:1000],
    )


def guardrail_actions(rules: LeastPrivilegeRules, *, provider: str = "aws") -> tuple[str, ...]:
    """The exact actions every agent's guardrail denies, from the catalogue and the policy.

    On Google Cloud these are IAM permissions (denied with an IAM deny policy).
    """
    if provider == "gcp":
        extra = [a for a in rules.guardrail_extra_actions if catalog_gcp.is_permission(a)]
        return tuple(dict.fromkeys([*catalog_gcp.GUARDRAIL_PERMISSIONS, *extra]))
    if provider == "azure":
        extra = [a for a in rules.guardrail_extra_actions if catalog_azure.is_action(a)]
        return tuple(dict.fromkeys([*catalog_azure.GUARDRAIL_ACTIONS, *extra]))
    categories = {ActionCategory(category) for category in rules.guardrail_categories}
    services = {service.lower() for service in rules.guardrail_privileged_services}
    chosen = [
        entry.action
        for entry in catalog.entries()
        if entry.category in categories
        or (entry.category is ActionCategory.PRIVILEGED and _service(entry.action) in services)
    ]
    chosen += [
        catalog.normalize_action(action)
        for action in rules.guardrail_extra_actions
        if not (catalog_gcp.is_permission(action) or catalog_azure.is_action(action))
    ]
    return tuple(sorted(dict.fromkeys(chosen), key=str.lower))


def exemptions_for(grants: Iterable[Grant], guarded: Sequence[str]) -> tuple[Exemption, ...]:
    """The guardrail exemptions live grants open: each guarded action a grant approves, for
    that grant's resources and until its expiry (one per grant and action)."""
    found = [
        Exemption(action, grant.expires_at, grant.id, tuple(grant.resources) or ("*",))
        for grant in grants
        for action in guarded
        if catalog.allows(grant.actions, action)
    ]
    return tuple(sorted(found, key=lambda e: (e.action.lower(), e.expires_at, e.grant_id)))


def fingerprint_parts(scan: UsageScan, identity: Identity) -> list[object]:
    """What an owner's nightly message says about one identity; a change means a new message."""
    return [identity.id, sorted(scan.unused), scan.inactive, scan.risk, scan.status]
