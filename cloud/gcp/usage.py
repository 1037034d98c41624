"""Granted versus used permissions of a service account, from the IAM recommender (blocking).

Granted are the roles bound to the account in its project's allow policy (Leash's own
`leash-grant-*` bindings left out). The IAM recommender watches each role binding for its
observation period (90 days, whatever `since` says) and answers in three feeds:

- `google.iam.policy.Recommender`: a role recommended for removal (REMOVE_ROLE: nothing in it
  was used) goes to `not_used` as the role name. A role recommended to be replaced by smaller
  ones (REPLACE_ROLE) puts its permissions that neither the replacements carry nor the insight
  saw exercised or inferred into `not_used` as permission names; role contents come from the
  configured catalogue, else IAM `roles.get`, and when neither can say the role is `unknown`.
- `google.iam.policy.Insight` (permission usage): each exercised permission goes to `used`,
  dated at the insight's last refresh (Google gives no per-permission time); permissions the
  recommender only infers will be needed go to `unknown`.
- `google.iam.serviceAccount.Insight`, which exists only for an account that did not
  authenticate in the observation window: its last authentication is `last_activity_at`, and
  when that is before `since` every role nothing else speaks of goes to `not_used`.

Any other role is `unknown` (never restricted automatically). The report is COMPLETE when
some recommendation or insight covers the account, UNKNOWN (with a note) when the recommender
cannot be read or has nothing on it yet. An active account has no service-account insight, so
its `last_activity_at` is None.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import recommender_v1

from cloud.base import CloudConfigurationError, CloudError, IdentityRef, UsageReport, UsageStatus
from cloud.gcp import bindings as policies
from cloud.gcp.bindings import member_of
from cloud.gcp.clients import GcpClients
from cloud.gcp.errors import is_not_found

POLICY_RECOMMENDER = "google.iam.policy.Recommender"
POLICY_INSIGHT = "google.iam.policy.Insight"
ACCOUNT_INSIGHT = "google.iam.serviceAccount.Insight"
USAGE_PERMISSIONS = (
    "resourcemanager.projects.getIamPolicy",
    "recommender.iamPolicyRecommendations.list",
    "recommender.iamPolicyInsights.list",
    "recommender.iamServiceAccountInsights.list",
    "iam.roles.get",
)
_ROLE = "/iamPolicy/bindings/*/role"
_MEMBER = "/iamPolicy/bindings/*/members/*"
# How long what IAM said of a custom role is trusted (seconds): custom roles can be edited.
CUSTOM_ROLE_LIFETIME = 300.0
_LIVE_RECOMMENDATIONS = frozenset({"STATE_UNSPECIFIED", "ACTIVE", "CLAIMED"})
RolePermissions = Callable[[str], frozenset[str] | None]


@dataclass(frozen=True, slots=True)
class RoleAdvice:
    """The recommender's word on one role of the member: remove it, or replace it."""

    role: str
    replacements: tuple[str, ...] = ()  # empty: remove the role outright


@dataclass(frozen=True, slots=True)
class PermissionUsage:
    """What a permission-usage insight saw of one role of the member."""

    role: str
    exercised: tuple[str, ...]
    inferred: tuple[str, ...]
    observed_at: datetime | None


def parse_time(value: Any) -> datetime | None:
    """Read an RFC 3339 time as an aware datetime, None when absent or unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _operation_parts(operation: Mapping[str, Any]) -> tuple[str, str, list[str]]:
    """Return an operation's action, role and members, however the recommender spelled them."""
    filters = operation.get("path_filters") or {}
    value = operation.get("value")
    role = _text(filters.get(_ROLE))
    members = [_text(filters.get(_MEMBER))] if filters.get(_MEMBER) else []
    if isinstance(value, str):
        members.append(value)
    elif isinstance(value, Mapping):  # a whole binding added: {"role": ..., "members": [...]}
        role = role or _text(value.get("role"))
        members += [_text(m) for m in value.get("members") or []]
    return _text(operation.get("action")).lower(), role, members


def advice_for(recommendation: Mapping[str, Any], member: str) -> list[RoleAdvice]:
    """Return what a live role recommendation says about `member`'s roles."""
    state = (recommendation.get("state_info") or {}).get("state", "STATE_UNSPECIFIED")
    if str(state) not in _LIVE_RECOMMENDATIONS:
        return []
    content = recommendation.get("content") or {}
    removed: list[str] = []
    added: list[str] = []
    for group in content.get("operation_groups") or []:
        for operation in group.get("operations") or []:
            action, role, members = _operation_parts(operation)
            if not role or member not in members:
                continue
            (removed if action == "remove" else added if action == "add" else []).append(role)
    overview = content.get("overview") or {}
    if not removed and overview.get("member") == member and overview.get("removedRole"):
        removed = [_text(overview.get("removedRole"))]
        added = [_text(role) for role in overview.get("addedRoles") or []]
    replacements = tuple(dict.fromkeys(role for role in added if role not in removed))
    return [RoleAdvice(role, replacements) for role in dict.fromkeys(removed)]


def _permissions(values: Iterable[Any]) -> tuple[str, ...]:
    names = (v.get("permission") if isinstance(v, Mapping) else v for v in values)
    return tuple(dict.fromkeys(name for name in names if isinstance(name, str) and name))


def usage_for(insight: Mapping[str, Any], member: str) -> PermissionUsage | None:
    """Return what a permission-usage insight says about one of `member`'s roles, if it does."""
    state = (insight.get("state_info") or {}).get("state", "STATE_UNSPECIFIED")
    content = insight.get("content") or {}
    if str(state) == "DISMISSED" or content.get("member") != member or not content.get("role"):
        return None
    return PermissionUsage(
        role=_text(content.get("role")),
        exercised=_permissions(content.get("exercisedPermissions") or []),
        inferred=_permissions(content.get("inferredPermissions") or []),
        observed_at=parse_time(insight.get("last_refresh_time")),
    )


@dataclass(frozen=True, slots=True)
class Silence:
    """A service-account insight: the account did not authenticate in the observation window."""

    last_authenticated: datetime | None  # None: not at all within the window
    window_start: datetime | None

    def covers(self, since: datetime) -> bool:
        """Say whether the account surely used nothing since `since`."""
        if self.last_authenticated is not None:
            return self.last_authenticated < since
        return self.window_start is not None and self.window_start <= since


def _seconds(value: Any) -> float | None:
    text = value.removesuffix("s") if isinstance(value, str) else ""
    try:
        return float(text)
    except ValueError:
        return None


def silence_for(insight: Mapping[str, Any], email: str) -> Silence | None:
    """Return what a service-account insight says about `email`, if it speaks of it."""
    state = (insight.get("state_info") or {}).get("state", "STATE_UNSPECIFIED")
    content = insight.get("content") or {}
    named = _text(content.get("email")) or _text(content.get("member")).partition(":")[2]
    if str(state) == "DISMISSED" or named.lower() != email.lower():
        return None
    refreshed = parse_time(insight.get("last_refresh_time"))
    period = _seconds(insight.get("observation_period"))
    start = refreshed - timedelta(seconds=period) if refreshed and period is not None else None
    return Silence(parse_time(content.get("lastAuthenticatedTime")), start)


class RoleCatalog:
    """The permissions each role carries: as configured, else from IAM `roles.get`, remembered.

    A predefined role (`roles/...`) is Google's and is remembered for good. A custom role can
    be edited at any time, so what IAM said of it is remembered for `CUSTOM_ROLE_LIFETIME`
    seconds of the monotonic clock only: a request asked again after an edit is tiered on the
    edit.
    """

    def __init__(
        self,
        clients: GcpClients,
        *,
        known: Mapping[str, Iterable[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self._clock = clock
        self._lock = threading.Lock()
        self._configured: dict[str, frozenset[str]] = {
            role: frozenset(permissions) for role, permissions in (known or {}).items()
        }
        self._read: dict[str, tuple[frozenset[str] | None, float]] = {}  # role -> (what, when)

    def _remembered(self, role: str) -> tuple[bool, frozenset[str] | None]:
        if role in self._configured:
            return True, self._configured[role]
        if role not in self._read:
            return False, None
        found, at = self._read[role]
        fresh = role.startswith("roles/") or self._clock() - at < CUSTOM_ROLE_LIFETIME
        return fresh, found

    def permissions(self, role: str) -> frozenset[str] | None:
        """Return the role's permissions, or None when IAM cannot say."""
        with self._lock:
            remembered, found = self._remembered(role)
        if remembered:
            return found
        try:
            message = self._clients.call(
                "roles.get",
                f"role {role}",
                lambda: self._clients.iam().get_role(request={"name": role}),
            )
            # A deleted custom role is still shown for a while, but it grants nothing.
            found = None if message.deleted else frozenset(message.included_permissions)
        except CloudError as error:
            if not is_not_found(error) and error.retryable:
                return None  # try again next time
            found = None
        with self._lock:
            self._read[role] = (found, self._clock())
        return found


def _last_used(seen: Iterable[PermissionUsage], now: datetime) -> dict[str, datetime]:
    """Map each exercised permission to when it was last seen used (`now` when unsaid)."""
    used: dict[str, datetime] = {}
    for observed in seen:
        for permission in observed.exercised:
            moment = observed.observed_at or now
            used[permission] = max(used.get(permission, moment), moment)
    return used


def assess(
    identity: IdentityRef,
    *,
    since: datetime,
    granted: tuple[str, ...],
    advice: Iterable[RoleAdvice],
    usage: Iterable[PermissionUsage],
    silence: Silence | None,
    role_permissions: RolePermissions,
    now: datetime,
) -> UsageReport:
    """Turn the recommender's advice and insights on the granted roles into a usage report."""
    dormant = silence is not None and silence.covers(since)
    advised = {item.role: item for item in advice if item.role in granted}
    seen = {item.role: item for item in usage if item.role in granted}
    used = _last_used(seen.values(), now)
    not_used: list[str] = []
    unknown: list[str] = []
    notes: list[str] = []
    for role in granted:
        insight = seen.get(role)
        exercised = set(insight.exercised) if insight else set()
        inferred = set(insight.inferred) if insight else set()
        unknown += sorted(inferred - exercised)
        item = advised.get(role)
        if item is None:
            if insight is None:  # an account that never authenticated used none of its roles
                (not_used if dormant else unknown).append(role)
            continue
        if not item.replacements:
            if exercised:  # the two feeds disagree: restrict nothing on this role
                unknown.append(role)
                notes.append(f"{role} is recommended for removal but some of it was used")
            else:
                not_used.append(role)
            continue
        carried = role_permissions(role)
        kept = [role_permissions(replacement) for replacement in item.replacements]
        if carried is None or any(permissions is None for permissions in kept):
            unknown.append(role)
            notes.append(f"the permissions of {role} or its replacements could not be read")
            continue
        needed = set().union(*(permissions or frozenset() for permissions in kept))
        not_used += sorted(carried - needed - exercised - inferred)
    covered = bool(advised) or bool(seen) or dormant
    status = UsageStatus.COMPLETE if covered or not granted else UsageStatus.UNKNOWN
    if status is UsageStatus.UNKNOWN:
        notes.insert(0, f"the IAM recommender has no insight on {identity.native_id} yet")
    return UsageReport(
        identity=identity,
        status=status,
        since=since,
        granted=granted,
        used=used,
        not_used=tuple(dict.fromkeys(not_used)),
        unknown=tuple(dict.fromkeys(unknown)),
        last_activity_at=silence.last_authenticated if silence else None,
        note="; ".join(notes),
    )


def _feed(clients: GcpClients, project: str, kind: str, name: str) -> list[dict[str, Any]]:
    """List one recommender feed of the project as plain data."""
    client = clients.recommender()
    if kind == "recommenders":
        parent = f"projects/{project}/locations/global/recommenders/{name}"
        return clients.call(
            "recommendations.list",
            parent,
            lambda: [
                recommender_v1.Recommendation.to_dict(item, use_integers_for_enums=False)
                for item in client.list_recommendations(parent=parent)
            ],
        )
    parent = f"projects/{project}/locations/global/insightTypes/{name}"
    return clients.call(
        "insights.list",
        parent,
        lambda: [
            recommender_v1.Insight.to_dict(item, use_integers_for_enums=False)
            for item in client.list_insights(parent=parent)
        ],
    )


def read_usage(
    clients: GcpClients,
    identity: IdentityRef,
    since: datetime,
    *,
    role_permissions: RolePermissions,
    now: datetime,
) -> UsageReport:
    """Compare a service account's roles with what the IAM recommender saw it use."""
    if since.tzinfo is None:
        raise CloudConfigurationError("usage needs a timezone-aware `since`")
    project, email = identity.account, identity.native_id
    member = member_of(email)
    policy = policies.read(clients, project)
    granted = tuple(sorted({b.role for b in policy.of(member) if b.leash_grant is None}))
    notes: list[str] = []
    silence: Silence | None = None
    try:
        for insight in _feed(clients, project, "insightTypes", ACCOUNT_INSIGHT):
            silence = silence or silence_for(insight, email)
    except CloudError as error:
        notes.append(f"last authentication unknown: {error}")
    try:
        recommendations = _feed(clients, project, "recommenders", POLICY_RECOMMENDER)
        insights = _feed(clients, project, "insightTypes", POLICY_INSIGHT)
    except CloudError as error:
        return UsageReport(
            identity=identity,
            status=UsageStatus.UNKNOWN,
            since=since,
            granted=granted,
            last_activity_at=silence.last_authenticated if silence else None,
            note="; ".join([f"the IAM recommender could not be read: {error}", *notes]),
        )
    report = assess(
        identity,
        since=since,
        granted=granted,
        advice=[a for item in recommendations for a in advice_for(item, member)],
        usage=[u for item in insights if (u := usage_for(item, member)) is not None],
        silence=silence,
        role_permissions=role_permissions,
        now=now,
    )
    if not notes:
        return report
    return replace(report, note="; ".join(filter(None, [report.note, *notes])))
