"""GcpProvider: conditional IAM bindings that expire by themselves, and project discovery."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, datetime

from google.auth.credentials import Credentials

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
from cloud.gcp import grants
from cloud.gcp import guardrail as guardrails
from cloud.gcp import quarantine as quarantines
from cloud.gcp import restriction as restrictions
from cloud.gcp.bindings import EXPIRY_MECHANISM
from cloud.gcp.clients import GcpClients
from cloud.gcp.discovery import PROVIDER, Project, list_projects, scan_project
from cloud.gcp.permissions import (
    ORGANIZATION_PERMISSIONS,
    READ_PERMISSIONS,
    WRITE_PERMISSIONS,
    unique,
)
from cloud.gcp.usage import RoleCatalog, read_usage


def _parent(kind: str, value: str) -> str:
    """Spell an organization or folder as `organizations/<n>` / `folders/<n>`."""
    prefix = f"{kind}/"
    name = value if value.startswith(prefix) else f"{prefix}{value}"
    if not re.fullmatch(rf"{kind}/\d+", name):
        raise CloudConfigurationError(f"{value!r} is not a GCP {kind[:-1]} (`{kind}/<number>`)")
    return name


class GcpProvider:
    """Leash's view of Google Cloud: the service accounts of the configured projects.

    Projects are the configured ones, else every active project under `folders` and
    `organization` (sub-folders included), else the project of the default credentials.
    Credentials default to `google.auth.default()`, resolved at first use; `rest_endpoint`
    and `grpc_target` point the clients at the sandbox emulator instead. `role_permissions`
    names the permissions of roles (custom ones, say) so usage need not ask IAM `roles.get`.
    """

    name = PROVIDER

    def __init__(
        self,
        *,
        projects: Sequence[str] = (),
        organization: str | None = None,
        folders: Sequence[str] = (),
        rest_endpoint: str | None = None,
        grpc_target: str | None = None,
        credentials: Credentials | None = None,
        max_attempts: int = 4,
        conflict_attempts: int = 8,
        backoff: float = 0.2,
        max_concurrency: int = 8,
        role_permissions: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if max_attempts < 1 or conflict_attempts < 1 or max_concurrency < 1:
            raise CloudConfigurationError(
                "max_attempts, conflict_attempts and max_concurrency must be at least 1"
            )
        if backoff < 0:
            raise CloudConfigurationError("backoff must not be negative")
        self._projects = tuple(dict.fromkeys(projects))
        self._parents = tuple(
            dict.fromkeys(
                [
                    *(_parent("folders", folder) for folder in folders),
                    *([_parent("organizations", organization)] if organization else []),
                ]
            )
        )
        self._clients = GcpClients(
            credentials=credentials,
            rest_endpoint=rest_endpoint,
            grpc_target=grpc_target,
            max_attempts=max_attempts,
            conflict_attempts=conflict_attempts,
            backoff=backoff,
        )
        self._roles = RoleCatalog(self._clients, known=role_permissions)
        self._max_concurrency = max_concurrency
        self._clock = clock or (lambda: datetime.now(UTC))

    async def discover(self) -> DiscoveryResult:
        """List service accounts in every project; a failing project is reported, not fatal."""
        failures: dict[str, str] = {}
        projects = await asyncio.to_thread(self._projects_to_scan, failures)
        return await fan_out(
            projects,
            lambda project: asyncio.to_thread(scan_project, self._clients, project),
            key=lambda project: project.project_id,
            failures=failures,
            max_concurrency=self._max_concurrency,
        )

    async def grant(self, identity: IdentityRef, spec: GrantSpec) -> AppliedGrant:
        """Bind each role under the condition `leash-grant-<id>` that ends at expiry."""
        self._check(identity)
        return await asyncio.to_thread(
            lambda: grants.apply_grant(
                self._clients, identity, spec, self._roles.permissions, clock=self._clock
            )
        )

    async def revoke(self, identity: IdentityRef, grant_id: str) -> bool:
        """Remove the grant's bindings and deny policy; False when they were already gone."""
        self._check(identity)
        return await asyncio.to_thread(
            lambda: grants.revoke_grant(
                self._clients, identity, grant_id, self._roles.permissions, clock=self._clock
            )
        )

    async def grant_artefacts(self, identity: IdentityRef) -> tuple[GrantArtefact, ...]:
        """List the `leash-grant-*` bindings and deny policies of a service account."""
        self._check(identity)
        return await asyncio.to_thread(grants.grant_artefacts, self._clients, identity)

    def scanning(self) -> AbstractAsyncContextManager[None]:
        """Nothing is shared between identities' usage reads here."""
        return nullcontext()

    async def usage(self, identity: IdentityRef, since: datetime) -> UsageReport:
        """Compare granted roles with what the IAM recommender saw used (see `cloud.gcp.usage`)."""
        self._check(identity)
        return await asyncio.to_thread(
            lambda: read_usage(
                self._clients,
                identity,
                since,
                role_permissions=self._roles.permissions,
                now=self._clock(),
            )
        )

    async def plan_restrict(
        self, identity: IdentityRef, unused: Sequence[str], keep: Sequence[str]
    ) -> RestrictionPlan:
        """Plan the removal of unused roles and the deny of unused permissions."""
        self._check(identity)
        return await asyncio.to_thread(
            restrictions.plan_restriction, self._clients, identity, unused, keep
        )

    async def restrict(self, identity: IdentityRef, plan: RestrictionPlan) -> Snapshot:
        """Apply the plan unless the account's bindings changed since it was made."""
        self._check(identity)
        return await asyncio.to_thread(restrictions.restrict, self._clients, identity, plan)

    async def let_through_restriction(
        self,
        identity: IdentityRef,
        snapshot: Snapshot,
        deny: Sequence[str],
        exemptions: Sequence[Exemption],
    ) -> bool:
        """Grants are never written behind the restriction's deny policy: Leash refuses, at
        request time, a role carrying a permission the restriction denies. Nothing to write."""
        return True

    async def unrestrict(self, identity: IdentityRef, snapshot: Snapshot) -> bool:
        """Give back the removed bindings and lift the deny; False when nothing was left."""
        self._check(identity)
        return await asyncio.to_thread(restrictions.unrestrict, self._clients, identity, snapshot)

    async def quarantine(self, identity: IdentityRef, *, at: datetime, reason: str) -> Snapshot:
        """Disable the service account: its tokens stop working at once; nothing is deleted."""
        self._check(identity)
        return await asyncio.to_thread(
            lambda: quarantines.quarantine(self._clients, identity, at=at, reason=reason)
        )

    async def release(self, identity: IdentityRef, snapshot: Snapshot) -> bool:
        """Enable the service account again; False when it was not disabled."""
        self._check(identity)
        return await asyncio.to_thread(quarantines.release, self._clients, identity, snapshot)

    async def guardrail(
        self,
        identity: IdentityRef,
        actions: Sequence[str],
        exemptions: Sequence[Exemption] = (),
        *,
        dry_run: bool = False,
    ) -> GuardrailChange:
        """Write `leash-guardrail-<hash>`: deny the GCP permissions in `actions`, bar exemptions."""
        self._check(identity)
        return await asyncio.to_thread(
            lambda: guardrails.guardrail(
                self._clients, identity, actions, exemptions, dry_run=dry_run, now=self._clock()
            )
        )

    async def resolve(self, identity: IdentityRef, asked: Sequence[str]) -> Resolution:
        """Expand each role (predefined or custom) into its permissions through IAM `roles.get`."""
        self._check(identity)

        def run() -> Resolution:
            items: list[ResolvedItem] = []
            unresolved: dict[str, str] = {}
            for role in asked:
                permissions = self._roles.permissions(role)
                if permissions is None:
                    unresolved[role] = "Google IAM does not show this role (unknown or unreadable)"
                else:
                    items.append(ResolvedItem(role, role, tuple(sorted(permissions))))
            return Resolution(items=tuple(items), unresolved=unresolved)

        return await asyncio.to_thread(run)

    async def grant_mechanism(self, identity: IdentityRef) -> str:
        """Grants end by themselves: an IAM condition on request.time."""
        return EXPIRY_MECHANISM

    def required_permissions(self) -> tuple[str, ...]:
        """Name every GCP permission Leash calls: reads (discovery, usage), then writes."""
        read = tuple(
            permission
            for permission in READ_PERMISSIONS
            if not self._projects or permission not in ORGANIZATION_PERMISSIONS
        )
        return unique(read, WRITE_PERMISSIONS)

    # Blocking parts, run in worker threads.

    def _projects_to_scan(self, failures: dict[str, str]) -> list[Project]:
        projects = self._projects
        if not projects and not self._parents:
            default = self._clients.default_project()
            if default is None:
                raise CloudConfigurationError(
                    "no GCP projects, folders or organization configured, and the default "
                    "credentials name no project"
                )
            projects = (default,)
        return list_projects(
            self._clients, projects=projects, parents=self._parents, failures=failures
        )

    def _check(self, identity: IdentityRef) -> None:
        check_identity(identity, PROVIDER, (IdentityKind.SERVICE_ACCOUNT,))
