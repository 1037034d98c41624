"""AzureEmulator: the ARM and Graph APIs Leash uses, over https on loopback, for the real SDKs."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

from azure.core.credentials import AccessToken

from cloud.sandbox.azure import authorization, graph, identities, monitor, pim, resources
from cloud.sandbox.azure.seed import add_event, add_identity, demo_world, empty_world
from cloud.sandbox.azure.server import TOKEN, HttpsServer
from cloud.sandbox.azure.state import (
    ApiCall,
    AzureState,
    ResourceGroup,
    RoleAssignment,
    ServicePrincipal,
    Subscription,
    World,
    check_scope,
    clean_scope,
    new_guid,
    role_definition_id,
    same_scope,
    timestamp,
)
from cloud.sandbox.azure.tls import Certificate
from cloud.sandbox.operation_log import CloudOperation

TOKEN_LIFETIME_SECONDS = 3600


class EmulatorCredential:
    """A TokenCredential that hands the emulator's token to any scope it is asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []  # what each get_token call asked for

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Return the emulator's token, valid an hour by the real clock (azure-core checks it)."""
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + TOKEN_LIFETIME_SECONDS)

    def close(self) -> None:
        """Release nothing (a credential may be closed by its client)."""


class AsyncEmulatorCredential:
    """An AsyncTokenCredential handing out the emulator's token, for the `aio` clients."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Return the emulator's token, valid an hour by the real clock."""
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + TOKEN_LIFETIME_SECONDS)

    async def close(self) -> None:
        """Release nothing."""

    async def __aenter__(self) -> AsyncEmulatorCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Close nothing."""


class AzureEmulator:
    """Subscriptions, RBAC, PIM, managed identities and the activity log over ARM; Graph SPs."""

    def __init__(self, *, state: AzureState, server: HttpsServer, certificate: Certificate) -> None:
        self._state = state
        self._server = server
        self._certificate = certificate

    @classmethod
    def start(cls, *, seed: bool = True) -> AzureEmulator:
        """Make a certificate and serve https on a free loopback port, seeded unless told not to."""
        state = AzureState(demo_world if seed else empty_world)
        routes = [
            *resources.ROUTES,
            *identities.ROUTES,
            *monitor.ROUTES,
            *pim.ROUTES,
            *authorization.ROUTES,
            *graph.ROUTES,
        ]
        certificate = Certificate.create()
        try:
            server = HttpsServer.start(state=state, routes=routes, certificate=certificate)
        except BaseException:
            certificate.remove()
            raise
        return cls(state=state, server=server, certificate=certificate)

    def stop(self) -> None:
        """Stop the server and delete the certificate files."""
        self._server.stop()
        self._certificate.remove()

    def reset(self) -> None:
        """Return to the state `start` built; forget calls and the set clock."""
        self._state.reset()

    def __enter__(self) -> AzureEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """ARM's base_url; Graph is at the same host under /v1.0."""
        return self._server.endpoint

    @property
    def cert_path(self) -> str:
        """The PEM certificate clients pass as `connection_verify`."""
        return self._certificate.cert_path

    @property
    def tenant_id(self) -> str:
        with self._state.locked() as world:
            return world.tenant_id

    @property
    def subscription_ids(self) -> tuple[str, ...]:
        with self._state.locked() as world:
            return tuple(s.subscription_id for s in world.subscriptions.values())

    @property
    def requests(self) -> list[ApiCall]:
        """Return every call received since start or reset, oldest first (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def operations(self) -> list[CloudOperation]:
        """Return every operation served since start or reset, with its permission (a copy)."""
        with self._state.lock:
            return list(self._state.operations)

    def credential(self) -> EmulatorCredential:
        """Return a credential whose tokens the emulator accepts."""
        return EmulatorCredential()

    def async_credential(self) -> AsyncEmulatorCredential:
        """Return the same, as an AsyncTokenCredential for the `aio` clients."""
        return AsyncEmulatorCredential()

    def now(self) -> datetime:
        """Return the emulator's time."""
        return self._state.now()

    def set_now(self, at: datetime | None) -> None:
        """Fix the emulator's clock at `at` (timezone-aware), or None for real time."""
        self._state.set_now(at)

    def pim_enabled(self, subscription_id: str, enabled: bool) -> None:
        """Turn PIM on or off for a subscription (off answers as a tenant without P2 does)."""
        with self._state.locked() as world:
            subscription = world.subscription(subscription_id)
            if subscription is None:
                raise LookupError(f"no subscription {subscription_id} in the emulator")
            subscription.pim_enabled = enabled

    def role_assignments(self, scope_prefix: str = "") -> list[dict[str, Any]]:
        """Return the assignments in force now (plain and running PIM ones) under a scope prefix."""
        prefix = clean_scope(scope_prefix).lower()
        with self._state.locked() as world:
            found = []
            for assignment, schedule in world.effective_assignments(self._state.now()):
                if not assignment.scope.lower().startswith(prefix):
                    continue
                found.append(
                    {
                        "id": assignment.id,
                        "name": assignment.name,
                        "scope": assignment.scope,
                        "roleDefinitionId": role_definition_id(
                            assignment.scope, assignment.role_guid
                        ),
                        "roleName": world.role_definitions[assignment.role_guid].role_name,
                        "principalId": assignment.principal_id,
                        "principalType": assignment.principal_type,
                        "viaPim": schedule is not None,
                        "endDateTime": timestamp(schedule.end) if schedule else None,
                    }
                )
            return found

    def add_role_assignment(
        self, scope: str, role_definition_id: str, principal_id: str, principal_type: str
    ) -> str:
        """Assign a role (GUID, full id or role name) as another admin would; return its id."""
        scope = clean_scope(scope)
        with self._state.locked() as world:
            check_scope(world, scope)
            role = world.role(role_definition_id) or next(
                (
                    r
                    for r in world.role_definitions.values()
                    if r.role_name.lower() == role_definition_id.lower()
                ),
                None,
            )
            if role is None:
                raise LookupError(f"no role definition {role_definition_id} in the emulator")
            if any(
                same_scope(held.scope, scope)
                and held.role_guid == role.guid
                and held.principal_id.lower() == principal_id.lower()
                for held, _ in world.effective_assignments(self._state.now())
            ):
                raise ValueError(f"{principal_id} already holds {role.role_name} at {scope}")
            assignment = RoleAssignment(
                name=new_guid(),
                scope=scope,
                role_guid=role.guid,
                principal_id=principal_id,
                principal_type=principal_type,
                created_on=self._state.now(),
            )
            world.role_assignments[assignment.name] = assignment
            return assignment.id

    def add_activity(
        self,
        subscription_id: str,
        principal_id: str,
        operation_name: str,
        at: datetime,
        *,
        resource_id: str | None = None,
    ) -> None:
        """Record that `principal_id` (the caller's object id) did an operation at `at`."""
        with self._state.locked() as world:
            add_event(
                world, subscription_id, principal_id, operation_name, at, resource_id=resource_id
            )

    def add_service_principal(
        self,
        display_name: str,
        *,
        tags: Iterable[str] = (),
        notes: str = "",
        app_id: str | None = None,
    ) -> str:
        """Create an application service principal in the directory; return its object id."""
        principal = ServicePrincipal(
            object_id=new_guid(),
            app_id=(app_id or new_guid()).lower(),
            display_name=display_name,
            tags=tuple(tags),
            notes=notes,
        )
        with self._state.locked() as world:
            world.service_principals[principal.object_id] = principal
        return principal.object_id

    def add_managed_identity(
        self, subscription_id: str, resource_group: str, name: str, *, tags: Mapping[str, str]
    ) -> str:
        """Create a user-assigned identity (and its service principal); return its principal id."""
        with self._state.locked() as world:
            return add_identity(
                world, subscription_id, resource_group, name, tags=tags
            ).principal_id

    def add_resource_group(
        self, subscription_id: str, name: str, *, tags: Mapping[str, str] | None = None
    ) -> str:
        """Create a resource group in a subscription; return its id."""
        with self._state.locked() as world:
            subscription = _subscription(world, subscription_id)
            group = ResourceGroup(
                subscription.subscription_id, name, "westeurope", dict(tags or {})
            )
            world.resource_groups.setdefault((subscription_id.lower(), name.lower()), group)
            return group.id


def _subscription(world: World, subscription_id: str) -> Subscription:
    subscription = world.subscription(subscription_id)
    if subscription is None:
        raise LookupError(f"no subscription {subscription_id} in the emulator")
    return subscription
