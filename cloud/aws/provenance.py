"""Who created each IAM role or user and who granted it permissions, read from CloudTrail.

`trace_account` asks CloudTrail `LookupEvents` (management events, last 90 days) for each
event name below, one name per call, and reads each event's `CloudTrailEvent` JSON:
`requestParameters.roleName` / `userName` name the identity, `userIdentity` the principal.
`created_by` is whoever made the newest CreateRole / CreateUser (the current incarnation);
`granted_by` lists the distinct callers of the grant events, earliest first (grants to an
earlier identity of the same name within the window count too). Nothing older than 90 days
is known, so an identity created before that has no creator.

A principal is rendered as one readable string:

* an IAM user, the root user or a federated user: its ARN, e.g.
  `arn:aws:iam::111122223333:user/bob`;
* a role session: `<session name> (via <role name>)`, e.g.
  `alice@example.com (via AWSReservedSSO_Admin_abc)` -- for IAM Identity Center roles the
  session name is the person's user name or e-mail. When the role lives in another account
  than the identity, its ARN replaces the name: `ci (via arn:aws:iam::444455556666:role/deploy)`;
* anything else: its ARN, else its user name, else its principal id.

Left out, so never named: AWS services (`AWSService` identities and calls an AWS service made
on someone's behalf, which carry `invokedBy`), failed calls (`errorCode`), and Leash itself
(its read and grant roles in any account, and its own principal in its home account).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloud.aws.errors import translate
from cloud.base import CloudError, IdentityKind, Provenance

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_cloudtrail.type_defs import EventTypeDef, LookupEventsRequestTypeDef

CREATE_EVENTS: Mapping[str, IdentityKind] = {
    "CreateRole": IdentityKind.ROLE,
    "CreateUser": IdentityKind.USER,
}
GRANT_EVENTS: Mapping[str, IdentityKind] = {
    "PutRolePolicy": IdentityKind.ROLE,
    "AttachRolePolicy": IdentityKind.ROLE,
    "PutRolePermissionsBoundary": IdentityKind.ROLE,
    "UpdateAssumeRolePolicy": IdentityKind.ROLE,
    "PutUserPolicy": IdentityKind.USER,
    "AttachUserPolicy": IdentityKind.USER,
    "PutUserPermissionsBoundary": IdentityKind.USER,
}
# LookupEvents reaches back 90 days, allows 2 calls per second per account and Region, and
# returns at most 50 events a page.
LOOKBACK = timedelta(days=90)
LOOKUP_RATE = 2.0
PAGE_SIZE = 50
MAX_PAGES = 200
_ASSUMED_ROLE = re.compile(r"^arn:[\w-]+:sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/")

Key = tuple[IdentityKind, str]


def iam_trail_region(region: str) -> str:
    """Return the Region whose CloudTrail holds IAM's events (IAM is global) for `region`."""
    if region.startswith("us-gov-"):
        return "us-gov-west-1"
    if region.startswith("cn-"):
        return "cn-north-1"
    return "us-east-1"


class LookupThrottle:
    """Space LookupEvents calls per account, across threads, to stay under CloudTrail's rate."""

    def __init__(
        self,
        rate: float = LOOKUP_RATE,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("the LookupEvents rate must be positive")
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, account: str) -> None:
        """Block until `account` may make its next call, and book that slot."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(account, now))
            self._next[account] = slot + self._interval
        if slot > now:
            self._sleep(slot - now)


@dataclass(frozen=True, slots=True)
class OwnPrincipals:
    """Leash's own principals, whose writes are never attributed to a human."""

    role_names: frozenset[str] = frozenset()
    # (account, role name) for role sessions, else principal ARNs.
    sessions: frozenset[tuple[str, str]] = frozenset()
    arns: frozenset[str] = frozenset()

    @classmethod
    def of(cls, role_names: Iterable[str], caller_arn: str) -> OwnPrincipals:
        """Leash's member roles, plus its own principal (`GetCallerIdentity`'s ARN)."""
        match = _ASSUMED_ROLE.match(caller_arn)
        sessions = {(match["account"], match["role"])} if match else set()
        return cls(frozenset(role_names), frozenset(sessions), frozenset({caller_arn}))

    def owns(self, identity: Mapping[str, Any]) -> bool:
        """Say whether a CloudTrail `userIdentity` is Leash itself."""
        if identity.get("arn") in self.arns:
            return True
        issuer = _issuer(identity)
        if not issuer:
            return False
        role = str(issuer.get("userName", ""))
        return role in self.role_names or (str(issuer.get("accountId", "")), role) in self.sessions


@dataclass(slots=True)
class _Trace:
    created: dict[Key, tuple[str, str]] = field(default_factory=dict)  # key -> (time, who)
    grants: dict[Key, list[tuple[str, str]]] = field(default_factory=dict)

    def provenance(self) -> dict[Key, Provenance]:
        keys = set(self.created) | set(self.grants)
        found: dict[Key, Provenance] = {}
        for key in keys:
            created = self.created.get(key)
            granters = (who for _, who in sorted(self.grants.get(key, ())))
            found[key] = Provenance(
                created_by=created[1] if created else None,
                granted_by=tuple(dict.fromkeys(granters)),
            )
        return found


def trace_account(
    cloudtrail: CloudTrailClient,
    account: str,
    *,
    own: OwnPrincipals,
    throttle: LookupThrottle,
    now: datetime,
    kinds: Iterable[IdentityKind] = (IdentityKind.ROLE, IdentityKind.USER),
    max_pages: int = MAX_PAGES,
) -> tuple[dict[Key, Provenance], str | None]:
    """Return the provenance of the account's roles and/or users, and a note if cut short.

    Only the event names of `kinds` are looked up: an account without users costs 5 calls.

    Raises:
        CloudError: a LookupEvents call failed (denied, or throttled after retries).
    """
    wanted = set(kinds)
    names = [
        name for name, kind in (*CREATE_EVENTS.items(), *GRANT_EVENTS.items()) if kind in wanted
    ]
    trace = _Trace()
    truncated: list[str] = []
    for name in names:
        events, complete = _lookup(cloudtrail, account, name, throttle, now, max_pages)
        if not complete:
            truncated.append(name)
        for event in events:
            _read(event, account, own, trace)
    note = None
    if truncated:
        note = (
            f"CloudTrail in account {account}: read only the newest {max_pages * PAGE_SIZE} "
            f"events of {', '.join(truncated)}; older creators and granters are missing"
        )
    return trace.provenance(), note


def _lookup(
    cloudtrail: CloudTrailClient,
    account: str,
    event_name: str,
    throttle: LookupThrottle,
    now: datetime,
    max_pages: int,
) -> tuple[list[EventTypeDef], bool]:
    request: LookupEventsRequestTypeDef = {
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": event_name}],
        "StartTime": now - LOOKBACK,
        "EndTime": now,
        "MaxResults": PAGE_SIZE,
    }
    events: list[EventTypeDef] = []
    for _ in range(max_pages):
        throttle.wait(account)
        try:
            page = cloudtrail.lookup_events(**request)
        except Exception as error:
            raise translate(
                error, operation=f"LookupEvents {event_name}", target=f"CloudTrail in {account}"
            ) from error
        events.extend(page["Events"])
        token = page.get("NextToken")
        if not token:
            return events, True
        request["NextToken"] = token
    return events, False


def _read(event: EventTypeDef, account: str, own: OwnPrincipals, trace: _Trace) -> None:
    try:
        detail = json.loads(event.get("CloudTrailEvent", "") or "{}")
    except ValueError as error:
        raise CloudError(
            f"CloudTrail in {account} returned an unreadable event: {error}", code="BadEvent"
        ) from error
    if not isinstance(detail, dict) or detail.get("errorCode"):
        return
    if detail.get("recipientAccountId", account) != account:
        return
    name = str(detail.get("eventName") or event.get("EventName", ""))
    kind = CREATE_EVENTS.get(name) or GRANT_EVENTS.get(name)
    parameters = detail.get("requestParameters")
    parameters = parameters if isinstance(parameters, dict) else {}
    target = parameters.get("roleName" if kind is IdentityKind.ROLE else "userName")
    identity = detail.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    if kind is None or not target or own.owns(identity):
        return
    who = render(identity, account)
    if who is None:
        return
    key = (kind, str(target))
    when = str(detail.get("eventTime", ""))
    if name in CREATE_EVENTS:
        if key not in trace.created or trace.created[key][0] < when:  # the latest incarnation
            trace.created[key] = (when, who)
    else:
        trace.grants.setdefault(key, []).append((when, who))


def render(identity: Mapping[str, Any], account: str) -> str | None:
    """Return the readable principal of a CloudTrail `userIdentity`, or None for a service."""
    if identity.get("type") == "AWSService" or identity.get("invokedBy"):
        return None
    arn = str(identity.get("arn", ""))
    issuer = _issuer(identity)
    if identity.get("type") == "AssumedRole" and issuer:
        session = arn.rsplit("/", 1)[-1] if "/" in arn else str(identity.get("principalId", ""))
        session = session.split(":", 1)[-1]
        role = str(issuer.get("userName", ""))
        if str(issuer.get("accountId", account)) != account or not role:
            role = str(issuer.get("arn", role))
        return f"{session} (via {role})"
    for key in ("arn", "userName", "principalId"):
        value = identity.get(key)
        if value:
            return str(value)
    return None


def _issuer(identity: Mapping[str, Any]) -> Mapping[str, Any]:
    context = identity.get("sessionContext") or {}
    issuer = context.get("sessionIssuer") or {}
    return issuer if isinstance(issuer, Mapping) else {}
