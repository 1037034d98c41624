"""The demo tenant the Azure emulator starts with, mirroring the AWS and GCP sandboxes' demo.

| principal               | kind              | what it shows                                    |
|-------------------------|-------------------|--------------------------------------------------|
| support-triage-az-agent | service principal | agent with an owner; Contributor on its group;   |
|                         |                   | read storage and deployed RECENT_DAYS ago        |
| forecast-az-agent       | service principal | agent without an owner; blob data on the         |
|                         |                   | warehouse, Owner(!) on leash-demo-agents; idle   |
| etl-runner-sp           | service principal | plain workload; User Access Administrator (data) |
| openai-summarizer-mi    | managed identity  | agent (ARM tags) owned by bob; OpenAI User       |
| alice, carol            | users             | subscription owners                              |

Agents say so in their tags: Graph service-principal tags are strings
("leash:agent=true", "leash:owner=alice@example.com"); managed identities carry ARM tags
({"leash:agent": "true", "leash:owner": "bob@example.com"}). PIM is on for leash-demo-agents
and off (no licence) for leash-demo-data.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from cloud.sandbox.azure import roles
from cloud.sandbox.azure.state import (
    ActivityEntry,
    AzureState,
    ManagedIdentity,
    ResourceGroup,
    RoleAssignment,
    ServicePrincipal,
    Subscription,
    User,
    World,
    clean_scope,
    new_guid,
)

TENANT_ID = "5f0c2d1e-7a4b-4c3d-9e8f-0a1b2c3d4e5f"
AGENTS_SUBSCRIPTION = "3f1c2a5e-8b4d-4c7a-9e2f-1a6b5c4d3e21"
DATA_SUBSCRIPTION = "8d2e4f6a-1b3c-4d5e-8f7a-9b0c1d2e3f42"
LOCATION = "westeurope"
SUPPORT_GROUP = "rg-support-bots"
FORECAST_GROUP = "rg-forecast"
WAREHOUSE_GROUP = "rg-warehouse"
ETL_GROUP = "rg-etl"

TRIAGE = "a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
TRIAGE_APP = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c21"
FORECAST = "b2e4d3c5-6c7f-4081-9ba2-c3d4e5f60712"
FORECAST_APP = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c22"
ETL = "c3f5e4d6-7d80-4192-acb3-d4e5f6071823"
ETL_APP = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c23"
SUMMARIZER = "d4a6f5e7-8e91-42a3-bdc4-e5f607182934"  # the managed identity's principal id
SUMMARIZER_CLIENT = "e5b7a6f8-9fa2-43b4-8ed5-f60718293a45"
SUMMARIZER_NAME = "openai-summarizer-mi"
ALICE = "f6c8b7a9-a0b3-44c5-9fe6-0718293a4b56"
CAROL = "07d9c8ba-b1c4-45d6-a0f7-18293a4b5c67"
INACTIVE_DAYS = 120
RECENT_DAYS = 10

AGENTS_SCOPE = f"/subscriptions/{AGENTS_SUBSCRIPTION}"
DATA_SCOPE = f"/subscriptions/{DATA_SUBSCRIPTION}"
SUPPORT_SCOPE = f"{AGENTS_SCOPE}/resourceGroups/{SUPPORT_GROUP}"
WAREHOUSE_ACCOUNT = (
    f"{DATA_SCOPE}/resourceGroups/{WAREHOUSE_GROUP}"
    "/providers/Microsoft.Storage/storageAccounts/leashdemowarehouse"
)
TICKETS_ACCOUNT = f"{SUPPORT_SCOPE}/providers/Microsoft.Storage/storageAccounts/leashdemotickets"
OPENAI_ACCOUNT = f"{SUPPORT_SCOPE}/providers/Microsoft.CognitiveServices/accounts/leash-demo-openai"

GROUPS = (
    (AGENTS_SUBSCRIPTION, SUPPORT_GROUP, {"team": "support-bots", "env": "demo"}),
    (AGENTS_SUBSCRIPTION, FORECAST_GROUP, {"team": "ml-platform", "env": "demo"}),
    (DATA_SUBSCRIPTION, WAREHOUSE_GROUP, {"team": "ml-platform", "env": "demo"}),
    (DATA_SUBSCRIPTION, ETL_GROUP, {"team": "data-eng", "env": "demo"}),
)
SERVICE_PRINCIPALS = (
    ServicePrincipal(
        TRIAGE,
        TRIAGE_APP,
        "support-triage-az-agent",
        tags=("leash:agent=true", "leash:owner=alice@example.com", "team=support-bots"),
        notes="Triages support tickets with Azure OpenAI.",
    ),
    ServicePrincipal(
        FORECAST,
        FORECAST_APP,
        "forecast-az-agent",
        tags=("leash:agent=true", "team=ml-platform"),
        notes="Forecasts demand from warehouse data.",
    ),
    ServicePrincipal(
        ETL, ETL_APP, "etl-runner-sp", tags=("team=data-eng",), notes="Nightly ETL batch job."
    ),
)
# (scope, role GUID, principal id, principal type)
ASSIGNMENTS = (
    (SUPPORT_SCOPE, roles.CONTRIBUTOR, TRIAGE, "ServicePrincipal"),
    (WAREHOUSE_ACCOUNT, roles.STORAGE_BLOB_DATA_CONTRIBUTOR, FORECAST, "ServicePrincipal"),
    (AGENTS_SCOPE, roles.OWNER, FORECAST, "ServicePrincipal"),
    (DATA_SCOPE, roles.USER_ACCESS_ADMINISTRATOR, ETL, "ServicePrincipal"),
    (OPENAI_ACCOUNT, roles.COGNITIVE_SERVICES_OPENAI_USER, SUMMARIZER, "ServicePrincipal"),
    (AGENTS_SCOPE, roles.OWNER, ALICE, "User"),
    (DATA_SCOPE, roles.OWNER, CAROL, "User"),
)
# (subscription, caller, operation, days ago, resource id)
ACTIVITY = (
    (
        AGENTS_SUBSCRIPTION,
        TRIAGE,
        "Microsoft.Storage/storageAccounts/read",
        RECENT_DAYS,
        TICKETS_ACCOUNT,
    ),
    (
        AGENTS_SUBSCRIPTION,
        TRIAGE,
        "Microsoft.Resources/deployments/write",
        RECENT_DAYS,
        f"{SUPPORT_SCOPE}/providers/Microsoft.Resources/deployments/triage-release",
    ),
    (
        DATA_SUBSCRIPTION,
        ETL,
        "Microsoft.Storage/storageAccounts/listKeys/action",
        1,
        WAREHOUSE_ACCOUNT,
    ),
)


def empty_world(state: AzureState) -> World:
    """Return a tenant with the built-in roles and nothing else."""
    world = World(tenant_id=TENANT_ID)
    built_in = (*roles.BUILT_IN_ROLES, *roles.CODE_AND_TAG_ROLES)
    world.role_definitions = {role.guid: role for role in built_in}
    return world


def demo_world(state: AzureState) -> World:
    """Return the demo tenant, dated relative to the emulator's clock."""
    now = state.now()
    world = empty_world(state)
    for subscription_id, name, pim in (
        (AGENTS_SUBSCRIPTION, "leash-demo-agents", True),
        (DATA_SUBSCRIPTION, "leash-demo-data", False),
    ):
        world.subscriptions[subscription_id] = Subscription(subscription_id, name, pim)
    for subscription_id, group, tags in GROUPS:
        world.resource_groups[(subscription_id, group)] = ResourceGroup(
            subscription_id, group, LOCATION, dict(tags)
        )
    for principal in SERVICE_PRINCIPALS:
        world.service_principals[principal.object_id] = dataclasses.replace(principal)
    for object_id, name, upn in (
        (ALICE, "Alice Admin", "alice@example.com"),
        (CAROL, "Carol Data", "carol@example.com"),
    ):
        world.users[object_id] = User(object_id, name, upn)
    add_identity(
        world,
        AGENTS_SUBSCRIPTION,
        SUPPORT_GROUP,
        SUMMARIZER_NAME,
        tags={"leash:agent": "true", "leash:owner": "bob@example.com"},
        principal_id=SUMMARIZER,
        client_id=SUMMARIZER_CLIENT,
    )
    for scope, role_guid, principal_id, principal_type in ASSIGNMENTS:
        assignment = RoleAssignment(
            name=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{role_guid}|{principal_id}")),
            scope=scope,
            role_guid=role_guid,
            principal_id=principal_id,
            principal_type=principal_type,
            created_on=now - timedelta(days=200),
        )
        world.role_assignments[assignment.name] = assignment
    for subscription_id, caller, operation, days, resource_id in ACTIVITY:
        add_event(
            world,
            subscription_id,
            caller,
            operation,
            now - timedelta(days=days, hours=2),
            resource_id=resource_id,
        )
    return world


def add_identity(
    world: World,
    subscription_id: str,
    resource_group: str,
    name: str,
    *,
    tags: Mapping[str, str],
    principal_id: str | None = None,
    client_id: str | None = None,
) -> ManagedIdentity:
    """Create a user-assigned identity and the ManagedIdentity service principal behind it."""
    group = world.resource_group(subscription_id, resource_group)
    if world.subscription(subscription_id) is None or group is None:
        raise LookupError(f"no resource group {resource_group} in {subscription_id}")
    identity = ManagedIdentity(
        subscription_id=group.subscription_id,
        resource_group=group.name,
        name=name,
        location=group.location,
        principal_id=(principal_id or new_guid()).lower(),
        client_id=(client_id or new_guid()).lower(),
        tags=dict(tags),
    )
    if identity.id.lower() in world.identities:
        raise ValueError(f"identity {identity.id} exists")
    world.identities[identity.id.lower()] = identity
    world.service_principals[identity.principal_id] = ServicePrincipal(
        identity.principal_id,
        identity.client_id,
        name,
        kind="ManagedIdentity",
        alternative_names=("isExplicit=True", identity.id),
    )
    return identity


def add_event(
    world: World,
    subscription_id: str,
    caller_id: str,
    operation_name: str,
    at: datetime,
    *,
    resource_id: str | None = None,
) -> ActivityEntry:
    """Record one management operation in a subscription's activity log."""
    subscription = world.subscription(subscription_id)
    if subscription is None:
        raise LookupError(f"no subscription {subscription_id} in the emulator")
    if at.tzinfo is None:
        raise ValueError("activity needs a timezone-aware datetime")
    entry = ActivityEntry(
        subscription_id=subscription.subscription_id,
        caller_id=caller_id,
        operation_name=operation_name,
        at=at,
        resource_id=clean_scope(resource_id or subscription.id),
        event_data_id=new_guid(),
        correlation_id=new_guid(),
    )
    world.activity.append(entry)
    return entry
