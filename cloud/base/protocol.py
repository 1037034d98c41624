"""The provider contract every cloud implements."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

from cloud.base.values import (
    AppliedGrant,
    DiscoveryResult,
    Exemption,
    GrantArtefact,
    GrantSpec,
    GuardrailChange,
    IdentityRef,
    Resolution,
    RestrictionPlan,
    Snapshot,
    UsageReport,
)


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

    async def resolve(self, identity: IdentityRef, asked: Sequence[str]) -> Resolution:
        """Resolve what a request asks for into the permissions the cloud would grant.

        Args:
            identity: the principal the request is about (its project or subscription
                scopes custom roles).
            asked: actions or roles as the requester or a permission set spelt them.

        Returns:
            Every item resolved, in the order asked, and a reason for each that is not (an
            unknown role, a custom role the cloud would not show). Tiers are decided on the
            resolved permissions, so nothing unresolved is ever granted by default. Results
            may be cached for a few minutes.
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

    async def grant_mechanism(self, identity: IdentityRef) -> str:
        """Say how a grant on this identity would end: the mechanism `grant` would report.

        Args:
            identity: the principal a request is about.
        """
        ...

    async def revoke(self, identity: IdentityRef, grant_id: str) -> bool:
        """Remove a grant. Returns False when it was already gone (which is success)."""
        ...

    async def grant_artefacts(self, identity: IdentityRef) -> tuple[GrantArtefact, ...]:
        """List the `leash-grant-*` artefacts on an identity (for reconcile)."""
        ...

    def scanning(self) -> AbstractAsyncContextManager[None]:
        """A scan of many identities is running: reads may be shared until it ends.

        A provider with nothing to share returns `contextlib.nullcontext()`.
        """
        ...

    async def usage(self, identity: IdentityRef, since: datetime) -> UsageReport:
        """Compare the identity's granted permissions with what it used since `since`.

        A cloud job that fails or does not complete in bounded time gives status UNKNOWN
        (with a note), never an exception for that reason alone.
        """
        ...

    async def plan_restrict(
        self, identity: IdentityRef, unused: Sequence[str], keep: Sequence[str]
    ) -> RestrictionPlan:
        """Work out the deny of `unused` that fits the cloud's limits and matches no `keep`.

        Raises CloudLimitError when no deny fits.
        """
        ...

    async def restrict(self, identity: IdentityRef, plan: RestrictionPlan) -> Snapshot:
        """Write the planned deny; returns what is needed to undo it exactly.

        Raises CloudConflictError when the identity's permissions changed since the plan.
        """
        ...

    async def let_through_restriction(
        self,
        identity: IdentityRef,
        snapshot: Snapshot,
        deny: Sequence[str],
        exemptions: Sequence[Exemption],
    ) -> bool:
        """Rewrite the restriction `restrict` wrote: deny `deny`, and each exemption's action
        everywhere but its resources, and there too once it expires (by itself).

        A provider whose restriction never denies what a grant adds (it only removes
        assignments) returns True without writing. False when the restriction is gone.
        """
        ...

    async def unrestrict(self, identity: IdentityRef, snapshot: Snapshot) -> bool:
        """Restore the state before `restrict`; False when the restriction was already gone."""
        ...

    async def quarantine(self, identity: IdentityRef, *, at: datetime, reason: str) -> Snapshot:
        """Deny everything to the identity, sessions issued before `at` included; delete nothing.

        Raises CloudConflictError when the identity is already quarantined.
        """
        ...

    async def release(self, identity: IdentityRef, snapshot: Snapshot) -> bool:
        """Remove exactly what `quarantine` added; False when it was not quarantined."""
        ...

    async def guardrail(
        self,
        identity: IdentityRef,
        actions: Sequence[str],
        exemptions: Sequence[Exemption] = (),
        *,
        dry_run: bool = False,
    ) -> GuardrailChange:
        """Deny `actions` to the identity, except each exemption until it expires."""
        ...

    def required_permissions(self) -> tuple[str, ...]:
        """Name the cloud permissions Leash itself needs for this provider."""
        ...
