"""AwsProvider: IAM inline policies that expire by themselves, and multi-account discovery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cloud.aws import grants, restriction_exemptions
from cloud.aws import guardrail as guardrails
from cloud.aws import quarantine as quarantines
from cloud.aws import restriction as restrictions
from cloud.aws.clients import AccountClients
from cloud.aws.discovery import PROVIDER, AccountDiscovery, ScanOptions
from cloud.aws.permissions import ACCOUNT_PERMISSIONS as ACCOUNT_PERMISSIONS
from cloud.aws.permissions import DISCOVERY_PERMISSIONS as DISCOVERY_PERMISSIONS
from cloud.aws.permissions import GRANT_PERMISSIONS as GRANT_PERMISSIONS
from cloud.aws.permissions import GRANT_ROLE_PERMISSIONS, READ_ROLE_PERMISSIONS, unique
from cloud.aws.permissions import ORGANIZATIONS_PERMISSIONS as ORGANIZATIONS_PERMISSIONS
from cloud.aws.permissions import PROVENANCE_PERMISSIONS as PROVENANCE_PERMISSIONS
from cloud.aws.policy_document import EXPIRY_MECHANISM
from cloud.aws.provenance import (
    LOOKUP_RATE,
    MAX_PAGES,
    LookupThrottle,
)
from cloud.aws.scan_snapshots import ScanSnapshots
from cloud.aws.usage import read_usage
from cloud.base import (
    AppliedGrant,
    CloudConfigurationError,
    DiscoveryResult,
    Exemption,
    GrantArtefact,
    GrantSpec,
    GuardrailChange,
    IdentityKind,
    IdentityRef,
    Resolution,
    ResolvedItem,
    RestrictionPlan,
    Snapshot,
    UsageReport,
    check_identity,
    fan_out,
)

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_iam import IAMClient


def _new_session() -> boto3.Session:
    """A default boto3 session; boto3 is imported here, when Leash first talks to AWS."""
    import boto3

    return boto3.Session()


class AwsProvider:
    """Leash's view of AWS: IAM roles and users across the accounts of an organization.

    With `trace_provenance`, discovery also reads CloudTrail in each account (through the read
    role) to name who created each identity and who granted it permissions; see
    `cloud.aws.provenance` for how principals are rendered. `lookup_rate` caps LookupEvents
    calls per second per account (CloudTrail allows 2). An account whose CloudTrail cannot be
    read keeps its identities, without provenance, and is noted under `<account>:cloudtrail`.
    """

    name = PROVIDER

    def __init__(
        self,
        *,
        session_factory: Callable[[], boto3.Session] | None = None,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        accounts: Sequence[str] = (),
        read_role_name: str = "LeashReadOnly",
        grant_role_name: str = "LeashGrantManager",
        use_organizations: bool = True,
        include_service_linked: bool = False,
        include_sso: bool = False,
        max_attempts: int = 3,
        max_concurrency: int = 8,
        trace_provenance: bool = True,
        lookup_rate: float = LOOKUP_RATE,
        max_lookup_pages: int = MAX_PAGES,
        usage_poll_interval: float = 1.0,
        usage_max_wait: float = 60.0,
    ) -> None:
        if max_attempts < 1 or max_concurrency < 1 or max_lookup_pages < 1:
            raise CloudConfigurationError(
                "max_attempts, max_concurrency and max_lookup_pages must be at least 1"
            )
        if lookup_rate <= 0:
            raise CloudConfigurationError("lookup_rate must be positive")
        if usage_poll_interval <= 0 or usage_max_wait <= 0:
            raise CloudConfigurationError("usage_poll_interval and usage_max_wait must be positive")
        self._clients = AccountClients(
            session_factory=session_factory or _new_session,
            endpoint_url=endpoint_url,
            region=region,
            max_attempts=max_attempts,
        )
        self._read_role_name = read_role_name
        self._grant_role_name = grant_role_name
        self._use_organizations = use_organizations
        self._max_concurrency = max_concurrency
        self._trace_provenance = trace_provenance
        self._discovery = AccountDiscovery(
            clients=self._clients,
            accounts=tuple(accounts),
            use_organizations=use_organizations,
            read_role_name=read_role_name,
            options=ScanOptions(
                include_service_linked=include_service_linked,
                include_sso=include_sso,
                own_roles=frozenset({read_role_name, grant_role_name}),
            ),
            region=region,
            trace_provenance=trace_provenance,
            throttle=LookupThrottle(lookup_rate),
            max_lookup_pages=max_lookup_pages,
        )
        self._usage_poll_interval = usage_poll_interval
        self._usage_max_wait = usage_max_wait
        self._scan_snapshots = ScanSnapshots(
            lambda account: self._clients.iam(account, role_name=self._read_role_name)
        )

    async def discover(self) -> DiscoveryResult:
        """List roles and users in every account; a failing account is reported, not fatal."""
        failures: dict[str, str] = {}
        accounts = await asyncio.to_thread(self._discovery.accounts_to_scan, failures)
        return await fan_out(
            accounts,
            lambda account: asyncio.to_thread(self._discovery.scan, account, failures),
            key=lambda account: account,
            failures=failures,
            max_concurrency=self._max_concurrency,
        )

    async def grant(self, identity: IdentityRef, spec: GrantSpec) -> AppliedGrant:
        """Write `leash-grant-<id>` as an inline policy that stops working at expiry."""
        return await asyncio.to_thread(
            grants.apply_grant, lambda: self._iam_for(identity), identity, spec
        )

    async def revoke(self, identity: IdentityRef, grant_id: str) -> bool:
        """Delete `leash-grant-<id>`; False when it (or the identity) was already gone."""
        return await asyncio.to_thread(
            lambda: grants.revoke_grant(self._iam_for(identity), identity, grant_id)
        )

    async def grant_artefacts(self, identity: IdentityRef) -> tuple[GrantArtefact, ...]:
        """List the `leash-grant-*` inline policies on a role or user."""
        return await asyncio.to_thread(
            lambda: grants.grant_artefacts(self._iam_for(identity), identity)
        )

    def scanning(self) -> AbstractAsyncContextManager[None]:
        """While open, usage reads share one policy snapshot per account (a scan's)."""
        return self._scan_snapshots.open()

    async def usage(self, identity: IdentityRef, since: datetime) -> UsageReport:
        """Compare granted with used actions through Access Advisor (action level), read role."""
        roles = identity.kind is IdentityKind.ROLE
        snapshot = await self._scan_snapshots.get(identity.account) if roles else None
        return await asyncio.to_thread(
            read_usage,
            lambda: self._clients.iam(identity.account, role_name=self._read_role_name),
            identity,
            since,
            poll_interval=self._usage_poll_interval,
            max_wait=self._usage_max_wait,
            snapshot=snapshot,
        )

    async def plan_restrict(
        self, identity: IdentityRef, unused: Sequence[str], keep: Sequence[str]
    ) -> RestrictionPlan:
        """Plan the deny of `unused`: inline, else a managed policy, else coarser wildcards."""
        return await asyncio.to_thread(
            lambda: restrictions.plan_restriction(self._iam_for(identity), identity, unused, keep)
        )

    async def restrict(self, identity: IdentityRef, plan: RestrictionPlan) -> Snapshot:
        """Write the planned deny unless the identity's permissions changed since the plan."""
        return await asyncio.to_thread(
            lambda: restrictions.restrict(self._iam_for(identity), identity, plan)
        )

    async def let_through_restriction(
        self,
        identity: IdentityRef,
        snapshot: Snapshot,
        deny: Sequence[str],
        exemptions: Sequence[Exemption],
    ) -> bool:
        """Rewrite `leash-restrict` with the deny split around the grants' exemptions."""
        now = datetime.now(UTC)
        return await asyncio.to_thread(
            lambda: restriction_exemptions.rewrite(
                self._iam_for(identity), identity, snapshot, deny, exemptions, now=now
            )
        )

    async def unrestrict(self, identity: IdentityRef, snapshot: Snapshot) -> bool:
        """Put back what `restrict` replaced; False when the restriction was already gone."""
        return await asyncio.to_thread(
            lambda: restrictions.unrestrict(self._iam_for(identity), identity, snapshot)
        )

    async def quarantine(self, identity: IdentityRef, *, at: datetime, reason: str) -> Snapshot:
        """Deny everything, sessions issued before `at` included, and tag the identity."""
        return await asyncio.to_thread(
            lambda: quarantines.quarantine(self._iam_for(identity), identity, at=at, reason=reason)
        )

    async def release(self, identity: IdentityRef, snapshot: Snapshot) -> bool:
        """Remove exactly what `quarantine` added; False when the identity was not quarantined."""
        return await asyncio.to_thread(
            lambda: quarantines.release(self._iam_for(identity), identity, snapshot)
        )

    async def guardrail(
        self,
        identity: IdentityRef,
        actions: Sequence[str],
        exemptions: Sequence[Exemption] = (),
        *,
        dry_run: bool = False,
    ) -> GuardrailChange:
        """Write `leash-guardrail`: deny `actions`, each exemption until its grant expires."""
        return await asyncio.to_thread(
            lambda: guardrails.guardrail(
                self._iam_for(identity), identity, actions, exemptions, dry_run=dry_run
            )
        )

    async def resolve(self, identity: IdentityRef, asked: Sequence[str]) -> Resolution:
        """An AWS action is its own permission: Leash checks it against AWS's action data and
        expands its wildcards against the catalogue before tiering, so IAM need not be asked."""
        return Resolution(items=tuple(ResolvedItem(a, a, (a,)) for a in asked))

    async def grant_mechanism(self, identity: IdentityRef) -> str:
        """Grants end by themselves: a DateLessThan condition in the inline policy."""
        return EXPIRY_MECHANISM

    def required_permissions(self) -> tuple[str, ...]:
        """Name every AWS action Leash calls: account access, then the read and grant roles'."""
        organizations = ORGANIZATIONS_PERMISSIONS if self._use_organizations else ()
        read = tuple(
            action
            for action in READ_ROLE_PERMISSIONS
            if self._trace_provenance or action not in PROVENANCE_PERMISSIONS
        )
        return unique(ACCOUNT_PERMISSIONS, organizations, read, GRANT_ROLE_PERMISSIONS)

    # Blocking parts, run in worker threads.

    def _iam_for(self, identity: IdentityRef) -> IAMClient:
        check_identity(identity, PROVIDER, (IdentityKind.ROLE, IdentityKind.USER))
        return self._clients.iam(identity.account, role_name=self._grant_role_name)
