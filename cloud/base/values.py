"""The values the provider contract speaks in: identities, grants, usage, plans, artefacts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

GRANT_ARTEFACT_PREFIX = "leash-grant-"
RESTRICT_ARTEFACT = "leash-restrict"
QUARANTINE_ARTEFACT = "leash-quarantine"
GUARDRAIL_ARTEFACT = "leash-guardrail"
QUARANTINE_TAG = "leash:quarantined"

# What a provider hands back after an enforcement write and takes again to undo it exactly:
# plain JSON-serialisable data that Leash stores with the enforcement.
Snapshot = Mapping[str, Any]


class IdentityKind(StrEnum):
    """What kind of principal the cloud sees."""

    ROLE = "role"
    USER = "user"
    SERVICE_ACCOUNT = "service_account"
    SERVICE_PRINCIPAL = "service_principal"
    MANAGED_IDENTITY = "managed_identity"


@dataclass(frozen=True, slots=True)
class IdentityRef:
    """Enough to address one principal in its cloud."""

    provider: str
    account: str
    native_id: str
    name: str
    kind: IdentityKind


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who created an identity and who granted it permissions, as the cloud's audit log says.

    Each principal is one readable string chosen by the provider (an ARN, a user name, an
    e-mail, e.g. `alice@example.com (via AWSReservedSSO_Admin_abc)` on AWS); cloud services
    and Leash itself are never named. Empty when the log does not reach back far enough.
    """

    created_by: str | None = None
    granted_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DiscoveredIdentity:
    """A principal found by discovery, with what classification and ownership need.

    `created_by` and `granted_by` (distinct, first grant first) are its `Provenance`;
    `attached_policies` names managed policies (ARNs on AWS) and `inline_policies` the
    policies embedded in the identity, Leash's own `leash-grant-*` ones included.
    """

    ref: IdentityRef
    tags: Mapping[str, str] = field(default_factory=dict)
    trust_principals: tuple[str, ...] = ()
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    created_by: str | None = None
    granted_by: tuple[str, ...] = ()
    attached_policies: tuple[str, ...] = ()
    inline_policies: tuple[str, ...] = ()

    @property
    def provenance(self) -> Provenance:
        """Return who created and who granted to this identity."""
        return Provenance(created_by=self.created_by, granted_by=self.granted_by)


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    """Identities found, and the scopes (accounts, projects) that could not be read."""

    identities: tuple[DiscoveredIdentity, ...]
    failures: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResolvedItem:
    """One asked action or role as the cloud knows it, with the permissions it carries.

    `name` is the cloud's own spelling (an Azure role's display name, a GCP role's full name,
    an AWS action as AWS spells it). `permissions` are what it allows (AWS actions, GCP
    permissions, Azure actions and data actions, which may hold wildcards); `excluded` are
    the ones it takes back (Azure `notActions`/`notDataActions`).
    """

    asked: str
    name: str
    permissions: tuple[str, ...]
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Resolution:
    """What `CloudProvider.resolve` found: each item it resolved, and why others are not."""

    items: tuple[ResolvedItem, ...] = ()
    unresolved: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GrantSpec:
    """A scoped, time-limited permission to put on one identity."""

    grant_id: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    expires_at: datetime
    deny_actions: tuple[str, ...] = ()

    @property
    def artefact_name(self) -> str:
        return grant_artefact_name(self.grant_id)


@dataclass(frozen=True, slots=True)
class AppliedGrant:
    """Where the cloud holds a grant, and how its expiry is enforced."""

    artefact: str
    mechanism: str


@dataclass(frozen=True, slots=True)
class GrantArtefact:
    """A `leash-grant-*` object found in the cloud (for reconcile)."""

    identity: IdentityRef
    grant_id: str
    artefact: str


class UsageStatus(StrEnum):
    """How much the cloud could say about an identity's use of its permissions."""

    COMPLETE = "complete"  # action level wherever the cloud tracks actions
    SERVICE_LEVEL = "service_level"  # only per service: whole unused services are known
    UNKNOWN = "unknown"  # the job failed or never completed: nothing may be restricted


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Granted versus used permissions of one identity, as the cloud records them.

    `granted` lists the allowed action patterns as the identity's policies spell them.
    `used` maps each action (or `service:*` when only the service is tracked) to when it
    was last used within the window; `not_used` lists what the cloud tracks and saw no use
    of since `since`: exact actions, or `service:*` for a service not used at all;
    `unknown` lists granted actions the cloud does not track (e.g. `iam:PassRole`, data-plane
    actions), which must never be restricted automatically. `last_activity_at` is the last
    time the identity did anything the cloud saw, None when never (or not known).
    """

    identity: IdentityRef
    status: UsageStatus
    since: datetime
    granted: tuple[str, ...] = ()
    used: Mapping[str, datetime] = field(default_factory=dict)
    not_used: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    last_activity_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class RestrictionPlan:
    """Exactly what a restriction will deny, computed before the owner confirms.

    `deny` is the list of action patterns the deny names (possibly coarsened to wildcards
    that still match no action in `keep`); `mechanism` says where it goes (`inline` policy
    `leash-restrict`, or a customer-managed policy); `document` is the compact policy JSON;
    `fingerprint` identifies the identity's permissions when planned, so a write after
    someone else changed them is refused.
    """

    identity: IdentityRef
    deny: tuple[str, ...]
    mechanism: str
    document: str
    fingerprint: str
    coarsened: bool = False


@dataclass(frozen=True, slots=True)
class Exemption:
    """A privileged action the guardrail lets through until an approved grant expires."""

    action: str
    expires_at: datetime
    grant_id: str
    # The grant's resources: the action stays denied on every other resource ("*": any).
    resources: tuple[str, ...] = ("*",)


@dataclass(frozen=True, slots=True)
class GuardrailChange:
    """The guardrail before and after a (possibly dry-run) write: compact JSON or None."""

    identity: IdentityRef
    before: str | None
    after: str
    mechanism: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def grant_artefact_name(grant_id: str) -> str:
    """Name the cloud object that carries one grant."""
    return f"{GRANT_ARTEFACT_PREFIX}{grant_id}"


def grant_id_from_artefact(artefact: str) -> str | None:
    """Return the grant id a `leash-grant-*` name carries, or None for other objects."""
    if not artefact.startswith(GRANT_ARTEFACT_PREFIX):
        return None
    grant_id = artefact.removeprefix(GRANT_ARTEFACT_PREFIX)
    return grant_id or None
