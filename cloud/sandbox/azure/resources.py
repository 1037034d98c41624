"""Subscriptions and resource groups (Microsoft.Resources), the frame every scope hangs on."""

from __future__ import annotations

from cloud.sandbox.azure.server import Call, Reply, Route, arm, ok
from cloud.sandbox.azure.state import ArmError, AzureState, JsonObject, ResourceGroup, Subscription

SUBSCRIPTION_VERSIONS = ("2016-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01")
GROUP_VERSIONS = (
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-03-01",
    "2025-04-01",
)
_SUBSCRIPTION = r"/subscriptions/(?P<subscription>[^/]+)"


def list_subscriptions(state: AzureState, call: Call) -> Reply:
    """List the subscriptions the caller can see (all of them)."""
    with state.locked() as world:
        found = [_subscription_json(world.tenant_id, s) for s in world.subscriptions.values()]
        return ok({"count": {"type": "Total", "value": len(found)}, "value": found})


def get_subscription(state: AzureState, call: Call) -> Reply:
    """Return one subscription."""
    with state.locked() as world:
        subscription = world.subscription(call.params["subscription"])
        if subscription is None:
            raise _no_subscription(call.params["subscription"])
        return ok(_subscription_json(world.tenant_id, subscription))


def list_groups(state: AzureState, call: Call) -> Reply:
    """List a subscription's resource groups."""
    with state.locked() as world:
        subscription = world.subscription(call.params["subscription"])
        if subscription is None:
            raise _no_subscription(call.params["subscription"])
        key = subscription.subscription_id.lower()
        found = [
            _group_json(group)
            for (owner, _), group in world.resource_groups.items()
            if owner == key
        ]
        return ok({"value": found})


def get_group(state: AzureState, call: Call) -> Reply:
    """Return one resource group."""
    with state.locked() as world:
        if world.subscription(call.params["subscription"]) is None:
            raise _no_subscription(call.params["subscription"])
        group = world.resource_group(call.params["subscription"], call.params["group"])
        if group is None:
            raise ArmError(
                404,
                "ResourceGroupNotFound",
                f"Resource group '{call.params['group']}' could not be found.",
            )
        return ok(_group_json(group))


def _subscription_json(tenant_id: str, subscription: Subscription) -> JsonObject:
    return {
        "id": subscription.id,
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "tags": {},
        "subscriptionId": subscription.subscription_id,
        "tenantId": tenant_id,
        "displayName": subscription.display_name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def _group_json(group: ResourceGroup) -> JsonObject:
    return {
        "id": group.id,
        "name": group.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": group.location,
        "tags": dict(group.tags),
        "properties": {"provisioningState": "Succeeded"},
    }


def _no_subscription(subscription_id: str) -> ArmError:
    return ArmError(
        404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found."
    )


ROUTES: tuple[Route, ...] = (
    arm("GET", "/subscriptions", SUBSCRIPTION_VERSIONS, list_subscriptions),
    arm("GET", _SUBSCRIPTION, SUBSCRIPTION_VERSIONS, get_subscription),
    arm("GET", rf"{_SUBSCRIPTION}/resourceGroups", GROUP_VERSIONS, list_groups),
    arm("GET", rf"{_SUBSCRIPTION}/resourceGroups/(?P<group>[^/]+)", GROUP_VERSIONS, get_group),
)
