"""AzureProvider: PIM schedules that expire by themselves, else Leash-revoked role assignments."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, datetime
from typing import TypeVar

from azure.core.credentials import TokenCredential

from cloud.azure import guardrail as guardrails
from cloud.azure import quarantine as quarantines
from cloud.azure import restriction as restrictions
from cloud.azure.clients import AzureClients
from cloud.azure.context import Context
from cloud.azure.discovery import (
    PROVIDER,
    Directory,
    describe,
    list_subscriptions,
    scan_subscription,
)
from cloud.azure.grants import PLAIN_MECHANISM, apply_grant, grant_artefacts, revoke_grant
from cloud.azure.permissions import READ_PERMISSIONS, WRITE_PERMISSIONS, unique
from cloud.azure.pim import EXPIRY_MECHANISM
from cloud.azure.roles import RoleCatalog
from cloud.azure.usage import read_usage
from cloud.base import (
    AppliedGrant,
    CloudConfigurationError,
    CloudError,
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

_T = TypeVar("_T")
SUBSCRIPTIONS_SCOPE = "subscriptions"  # failures key when the subscriptions cannot be listed
AZURE_KINDS = (IdentityKind.SERVICE_PRINCIPAL, IdentityKind.MANAGED_IDENTITY)


class AzureProvider:
    """Leash's view of Azure: the service principals and managed identities of subscriptions.

    Subscriptions are the configured ones, else every enabled one the credential can see. The
    credential defaults to `DefaultAzureCredential`, built at first use; `base_url`, `graph_url`
    and `connection_verify` point the clients at the sandbox emulator instead. With `pim` a
    grant is a PIM schedule Azure ends by itself (`azure-pim-schedule`); without it, or in a
    tenant whose PIM answers that it has no licence, a grant is a plain role assignment that
    Leash's scheduler and sweep remove (`azure-role-assignment-leash-revoked`):
    `grant_mechanism` says which applies to an identity before anything is written, so the
    approval card can say it. Azure has no deny a customer can write, so a grant's
    `deny_actions` cannot be enforced and are not (the grant carries only its roles).
    """

    name = PROVIDER

    def __init__(
        self,
        *,
        subscriptions: Sequence[str] = (),
        credential: TokenCredential | None = None,
        base_url: str | None = None,
        graph_url: str | None = None,
        connection_verify: str | bool = True,
        pim: bool = True,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_concurrency: int = 8,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if max_attempts < 1 or max_concurrency < 1:
            raise CloudConfigurationError("max_attempts and max_concurrency must be at least 1")
        if backoff < 0:
            raise CloudConfigurationError("backoff must not be negative")
        self._subscriptions = tuple(dict.fromkeys(s.strip() for s in subscriptions if s.strip()))
        clients = AzureClients(
            credential=credential,
            base_url=base_url,
            graph_url=graph_url,
            connection_verify=connection_verify,
            max_attempts=max_attempts,
            backoff=backoff,
        )
        self._ctx = Context(
            clients=clients,
            roles=RoleCatalog(clients),
            use_pim=pim,
            clock=clock or (lambda: datetime.now(UTC)),
        )
        self._directory = Directory(clients)
        self._max_concurrency = max_concurrency
        self._limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def _run(self, call: Callable[[], _T]) -> _T:
        """Run one blocking SDK call in a worker thread, at most `max_concurrency` at once."""
        loop = asyncio.get_running_loop()
        limit = self._limits.setdefault(loop, asyncio.Semaphore(self._max_concurrency))
        async with limit:
            return await asyncio.to_thread(call)

    async def discover(self) -> DiscoveryResult:
        """List principals in every subscription; a failing subscription is reported, not fatal."""
        failures: dict[str, str] = {}
        try:
            subscriptions = await self._run(
                lambda: list_subscriptions(
                    self._ctx.clients, wanted=self._subscriptions, failures=failures
                )
            )
        except CloudError as error:  # not even the list of subscriptions could be read
            return DiscoveryResult(identities=(), failures={SUBSCRIPTIONS_SCOPE: str(error)})

        return await fan_out(
            subscriptions,
            lambda subscription: self._run(
                lambda: scan_subscription(
                    self._ctx, self._directory, subscription, failures=failures
                )
            ),
            key=lambda subscription: subscription.subscription_id,
            failures=failures,
        )

    async def resolve(self, identity: IdentityRef, asked: Sequence[str]) -> Resolution:
        """Find each role by name (any case or spacing) or definition id, built-in or custom,
        in the identity's subscription, with the actions and data actions it confers."""
        self._check(identity)

        def run() -> Resolution:
            items: list[ResolvedItem] = []
            unresolved: dict[str, str] = {}
            for text in asked:
                role = self._ctx.roles.resolve(identity.account, text)
                if role is None:
                    unresolved[text] = (
                        f"no role definition of that name or id in subscription {identity.account}"
                    )
                    continue
                permissions = (*role.actions, *role.data_actions)
                excluded = (*role.not_actions, *role.not_data_actions)
                items.append(ResolvedItem(text, role.name, permissions, excluded))
            return Resolution(items=tuple(items), unresolved=unresolved)

        return await self._run(run)

    async def grant_mechanism(self, identity: IdentityRef) -> str:
        """Say whether a grant to the identity would be a PIM schedule or a plain assignment."""
        self._check(identity)
        available = await self._run(lambda: self._ctx.pim_available(identity.account))
        return EXPIRY_MECHANISM if available else PLAIN_MECHANISM

    async def grant(self, identity: IdentityRef, spec: GrantSpec) -> AppliedGrant:
        """Assign each role at each scope until expiry, through PIM when it can."""
        self._check(identity)
        return await self._run(lambda: apply_grant(self._ctx, identity, spec))

    async def revoke(self, identity: IdentityRef, grant_id: str) -> bool:
        """End the grant's PIM schedules and delete its assignments; False when already gone."""
        self._check(identity)
        return await self._run(lambda: revoke_grant(self._ctx, identity, grant_id))

    async def grant_artefacts(self, identity: IdentityRef) -> tuple[GrantArtefact, ...]:
        """List the identity's live `leash-grant-*` assignments and PIM schedules."""
        self._check(identity)
        return await self._run(lambda: grant_artefacts(self._ctx, identity))

    def scanning(self) -> AbstractAsyncContextManager[None]:
        """Nothing is shared between identities' usage reads here."""
        return nullcontext()

    async def usage(self, identity: IdentityRef, since: datetime) -> UsageReport:
        """Compare the identity's roles with its activity log (see `cloud.azure.usage`)."""
        self._check(identity)
        return await self._run(lambda: read_usage(self._ctx, identity, since))

    async def plan_restrict(
        self, identity: IdentityRef, unused: Sequence[str], keep: Sequence[str]
    ) -> RestrictionPlan:
        """Plan the removal of the unused roles' assignments."""
        self._check(identity)
        return await self._run(
            lambda: restrictions.plan_restriction(self._ctx, identity, unused, keep)
        )

    async def restrict(self, identity: IdentityRef, plan: RestrictionPlan) -> Snapshot:
        """Remove the planned assignments unless they changed since the plan."""
        self._check(identity)
        return await self._run(lambda: restrictions.restrict(self._ctx, identity, plan))

    async def let_through_restriction(
        self,
        identity: IdentityRef,
        snapshot: Snapshot,
        deny: Sequence[str],
        exemptions: Sequence[Exemption],
    ) -> bool:
        """An Azure restriction only removes role assignments, which a grant's own assignment
        does not need: nothing to write."""
        return True

    async def unrestrict(self, identity: IdentityRef, snapshot: Snapshot) -> bool:
        """Recreate the removed assignments exactly; False when they are all back already."""
        self._check(identity)
        return await self._run(lambda: restrictions.unrestrict(self._ctx, identity, snapshot))

    async def quarantine(self, identity: IdentityRef, *, at: datetime, reason: str) -> Snapshot:
        """Remove every role assignment of the identity in its subscription; delete nothing."""
        self._check(identity)
        return await self._run(
            lambda: quarantines.quarantine(self._ctx, identity, at=at, reason=reason)
        )

    async def release(self, identity: IdentityRef, snapshot: Snapshot) -> bool:
        """Recreate the assignments the quarantine removed; False when it was not quarantined."""
        self._check(identity)
        return await self._run(lambda: quarantines.release(self._ctx, identity, snapshot))

    async def guardrail(
        self,
        identity: IdentityRef,
        actions: Sequence[str],
        exemptions: Sequence[Exemption] = (),
        *,
        dry_run: bool = False,
    ) -> GuardrailChange:
        """Remove the identity's assignments that confer guarded actions, bar exemptions."""
        self._check(identity)
        return await self._run(
            lambda: guardrails.guardrail(self._ctx, identity, actions, exemptions, dry_run=dry_run)
        )

    def required_permissions(self) -> tuple[str, ...]:
        """Name every Azure permission Leash calls: reads (discovery, usage), then writes."""
        return unique(READ_PERMISSIONS, WRITE_PERMISSIONS)

    def _check(self, identity: IdentityRef) -> None:
        check_identity(identity, PROVIDER, AZURE_KINDS, label=describe(identity))
