"""User-assigned managed identities (Microsoft.ManagedIdentity), with their tags and ids."""

from __future__ import annotations

from cloud.sandbox.azure.server import Call, Reply, Route, arm, ok
from cloud.sandbox.azure.state import (
    ArmError,
    AzureState,
    JsonObject,
    ManagedIdentity,
    World,
    check_scope,
)

MSI_VERSIONS = ("2018-11-30", "2023-01-31", "2024-11-30")
_PROVIDER = r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities"
_SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"
_GROUP = rf"{_SUBSCRIPTION}/resourceGroups/(?P<group>[^/]+)"


def list_by_subscription(state: AzureState, call: Call) -> Reply:
    """List a subscription's user-assigned identities."""
    return _list(state, call, group=None)


def list_by_group(state: AzureState, call: Call) -> Reply:
    """List a resource group's user-assigned identities."""
    return _list(state, call, group=call.params["group"])


def get_identity(state: AzureState, call: Call) -> Reply:
    """Return one user-assigned identity."""
    subscription, group, name = (call.params[key] for key in ("subscription", "group", "name"))
    with state.locked() as world:
        check_scope(world, f"/subscriptions/{subscription}/resourceGroups/{group}")
        key = (
            f"/subscriptions/{subscription}/resourceGroups/{group}"
            f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        ).lower()
        identity = world.identities.get(key)
        if identity is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/{name}' under "
                f"resource group '{group}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        return ok(identity_json(world, identity))


def identity_json(world: World, identity: ManagedIdentity) -> JsonObject:
    """Return a user-assigned identity as ARM shows it."""
    return {
        "id": identity.id,
        "name": identity.name,
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
        "location": identity.location,
        "tags": dict(identity.tags),
        "properties": {
            "tenantId": world.tenant_id,
            "principalId": identity.principal_id,
            "clientId": identity.client_id,
            "isolationScope": "None",
        },
    }


def _list(state: AzureState, call: Call, *, group: str | None) -> Reply:
    subscription = call.params["subscription"]
    scope = f"/subscriptions/{subscription}" + (f"/resourceGroups/{group}" if group else "")
    with state.locked() as world:
        check_scope(world, scope)
        found = [
            identity_json(world, identity)
            for identity in world.identities.values()
            if identity.subscription_id.lower() == subscription.lower()
            and (group is None or identity.resource_group.lower() == group.lower())
        ]
        return ok({"value": found})


ROUTES: tuple[Route, ...] = (
    arm("GET", rf"{_SUBSCRIPTION}{_PROVIDER}", MSI_VERSIONS, list_by_subscription),
    arm("GET", rf"{_GROUP}{_PROVIDER}", MSI_VERSIONS, list_by_group),
    arm("GET", rf"{_GROUP}{_PROVIDER}/(?P<name>[^/]+)", MSI_VERSIONS, get_identity),
)
