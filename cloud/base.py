"""The provider contract every cloud implements, its value types and its error tree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

GRANT_ARTEFACT_PREFIX = "leash-grant-"


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


def grant_artefact_name(grant_id: str) -> str:
    """Name the cloud object that carries one grant."""
    return f"{GRANT_ARTEFACT_PREFIX}{grant_id}"


def grant_id_from_artefact(artefact: str) -> str | None:
    """Return the grant id a `leash-grant-*` name carries, or None for other objects."""
    if not artefact.startswith(GRANT_ARTEFACT_PREFIX):
        return None
    grant_id = artefact.removeprefix(GRANT_ARTEFACT_PREFIX)
    return grant_id or None


@runtime_checkable
class CloudProvider(Protocol):
    """One cloud, seen by Leash. Every method is async and raises only CloudError."""

    name: str

    async def discover(self) -> DiscoveryResult:
        """List the non-human identities in every configured scope.

        Returns:
            The identities found and, per scope that failed, why.
        """
        ...

    async def grant(self, identity: IdentityRef, spec: GrantSpec) -> AppliedGrant:
        """Put a grant on an identity whose expiry the cloud itself enforces.

        Args:
            identity: the principal to elevate.
            spec: the actions, resources, expiry and the persistence actions to deny.

        Returns:
            The artefact written and the expiry mechanism.

        Idempotent: applying the same grant id twice leaves one artefact.
        """
        ...

    async def revoke(self, identity: IdentityRef, grant_id: str) -> bool:
        """Remove a grant. Returns False when it was already gone (which is success)."""
        ...

    async def grant_artefacts(self, identity: IdentityRef) -> tuple[GrantArtefact, ...]:
        """List the `leash-grant-*` artefacts on an identity (for reconcile)."""
        ...

    def required_permissions(self) -> tuple[str, ...]:
        """Name the cloud permissions Leash itself needs for this provider."""
        ...


class CloudError(Exception):
    """A cloud call failed; `retryable` says whether trying again may help."""

    retryable: bool = False

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class CloudAccessDeniedError(CloudError):
    """Leash's own credentials lack a permission."""


class CloudNotFoundError(CloudError):
    """The identity or object does not exist."""


class CloudLimitError(CloudError):
    """The cloud would refuse the write: a size or count limit would be exceeded."""


class CloudThrottledError(CloudError):
    """The cloud throttled us even after the SDK's retries."""

    retryable = True


class CloudUnavailableError(CloudError):
    """The cloud could not be reached or answered with a server error."""

    retryable = True


class CloudConfigurationError(CloudError):
    """The provider is not configured well enough to run."""
