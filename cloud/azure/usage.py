"""Granted versus used roles of a principal, from the subscription's activity log (blocking).

Granted are the roles of the principal's own role assignments in (or above) the subscription,
Leash's grants left out. The activity log records the control-plane writes, deletes and
actions a caller makes (never reads, never data-plane calls) for 90 days. Each event whose
caller (or `oid` claim) is the principal is read as an operation (`authorization.action`, else
`operationName`) on a resource, and mapped to the granted roles that allow it (their `actions`,
wildcards and `notActions` honoured) at a scope holding that resource:

- `used`: each such operation a granted role allows, with the last time it was seen;
- `not_used`: the name of each role none of whose actions was seen, when the activity log can
  judge it, i.e. the role confers writes or actions and no data actions;
- `unknown`: what the activity log cannot see: the data actions of roles not otherwise used,
  and the names of roles that confer only reads (`*/read`, Reader) or could not be read.

`last_activity_at` is the principal's last event of any kind in the window. A `since` older
than the log's 90 days is read from 90 days ago, with a note. When the log cannot be read
the report is UNKNOWN with a note.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.azure.assignments import timestamp
from cloud.azure.clients import AzureClients
from cloud.azure.context import Context
from cloud.azure.roles import RoleDefinition, is_read
from cloud.base import CloudConfigurationError, CloudError, IdentityRef, UsageReport, UsageStatus

RETENTION = timedelta(days=90)
OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
USAGE_PERMISSIONS = (
    "Microsoft.Authorization/roleAssignments/read",
    "Microsoft.Authorization/roleDefinitions/read",
    "Microsoft.Insights/eventtypes/values/read",
)


@dataclass(frozen=True, slots=True)
class Event:
    """One activity log entry: the operation, when, and who made it."""

    operation: str
    at: datetime
    caller: str
    object_id: str = ""
    scope: str = ""  # the resource acted on, when the log says


@dataclass(frozen=True, slots=True)
class Granted:
    """One role the principal holds, and the scopes it holds it at."""

    role: RoleDefinition | None  # None: its definition could not be read
    scopes: tuple[str, ...]

    def covers(self, event: Event) -> bool:
        """Say whether the role allowed the event: its action, on a resource in its scopes."""
        if self.role is None or not self.role.allows(event.operation):
            return False
        target = event.scope.rstrip("/").lower()
        return not target or any(_inside(scope, target) for scope in self.scopes)


def _inside(scope: str, target: str) -> bool:
    root = scope.rstrip("/").lower()
    if not root.startswith("/subscriptions/"):  # the tenant root or a management group
        return True
    return target == root or target.startswith(f"{root}/")


def _text(value: Any) -> str:
    inner = getattr(value, "value", value)
    return inner if isinstance(inner, str) else ""


def event_of(message: Any) -> Event | None:
    """Read an SDK EventData; None when it names no operation or time."""
    moment = getattr(message, "event_timestamp", None)
    authorization = getattr(message, "authorization", None)
    operation = _text(getattr(authorization, "action", None)) or _text(message.operation_name)
    if not isinstance(moment, datetime) or not operation:
        return None
    claims: Mapping[str, Any] = getattr(message, "claims", None) or {}
    object_id = next((str(claims[k]) for k in OBJECT_ID_CLAIMS if claims.get(k)), "")
    scope = _text(getattr(authorization, "scope", None)) or _text(message.resource_id)
    return Event(
        operation=operation,
        at=moment if moment.tzinfo else moment.replace(tzinfo=UTC),
        caller=str(getattr(message, "caller", "") or ""),
        object_id=object_id,
        scope=scope,
    )


def by_principal(events: Iterable[Event], principal_id: str) -> list[Event]:
    """Keep the events the principal made (by caller or object id claim)."""
    wanted = principal_id.lower()
    return [e for e in events if wanted in (e.caller.lower(), e.object_id.lower())]


def assess(
    identity: IdentityRef,
    *,
    since: datetime,
    roles: Mapping[str, Granted],
    events: Iterable[Event],
    note: str = "",
) -> UsageReport:
    """Map the principal's events onto its roles (by name)."""
    seen = list(events)
    used: dict[str, datetime] = {}
    used_roles: set[str] = set()
    for event in seen:
        holders = [name for name, granted in roles.items() if granted.covers(event)]
        if holders:
            used[event.operation] = max(used.get(event.operation, event.at), event.at)
            used_roles.update(holders)
    not_used: list[str] = []
    unknown: list[str] = []
    notes = [note] if note else []
    for name, granted in roles.items():
        role = granted.role
        if name in used_roles:
            continue
        if role is None:
            unknown.append(name)
            notes.append(f"the definition of role {name} could not be read")
        elif role.data_actions:
            unknown += role.data_actions
        elif all(is_read(action) for action in role.actions):
            unknown.append(name)
        else:
            not_used.append(name)
    return UsageReport(
        identity=identity,
        status=UsageStatus.COMPLETE,
        since=since,
        granted=tuple(roles),
        used=used,
        not_used=tuple(dict.fromkeys(not_used)),
        unknown=tuple(dict.fromkeys(unknown)),
        last_activity_at=max((event.at for event in seen), default=None),
        note="; ".join(notes),
    )


def granted_roles(ctx: Context, identity: IdentityRef) -> dict[str, Granted]:
    """Return the principal's own roles by name (Leash's grants left out), sorted."""
    found: dict[str, Granted] = {}
    for assignment in ctx.holdings(identity).own:
        role = ctx.roles.get(identity.account, assignment.role_definition_id)
        name = role.name if role else assignment.role_guid
        held = found.get(name)
        scopes = (*held.scopes, assignment.scope) if held else (assignment.scope,)
        found[name] = Granted(role, scopes)
    return dict(sorted(found.items()))


def read_events(
    clients: AzureClients, subscription_id: str, start: datetime, end: datetime
) -> list[Event]:
    """List the subscription's activity log events between two times."""
    query = f"eventTimestamp ge '{timestamp(start)}' and eventTimestamp le '{timestamp(end)}'"
    client = clients.monitor(subscription_id)
    return clients.call(
        "activityLogs.list",
        f"subscription {subscription_id}",
        lambda: [e for m in client.activity_logs.list(filter=query) if (e := event_of(m))],
    )


def read_usage(ctx: Context, identity: IdentityRef, since: datetime) -> UsageReport:
    """Compare a principal's roles with what the activity log saw it do since `since`."""
    if since.tzinfo is None:
        raise CloudConfigurationError("usage needs a timezone-aware `since`")
    now = ctx.clock()
    granted = granted_roles(ctx, identity)
    start, note = since, ""
    if since < now - RETENTION:
        start = now - RETENTION
        note = f"the activity log keeps 90 days: read from {timestamp(start)}"
    try:
        events = read_events(ctx.clients, identity.account, start, now)
    except CloudError as error:
        return UsageReport(
            identity=identity,
            status=UsageStatus.UNKNOWN,
            since=since,
            granted=tuple(granted),
            note=f"the activity log could not be read: {error}",
        )
    mine = by_principal(events, identity.native_id)
    return assess(identity, since=since, roles=granted, events=mine, note=note)
