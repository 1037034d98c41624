"""The Azure emulator, through the real Azure SDK clients over https, as a provider uses it."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.core.rest import HttpRequest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.aio import AuthorizationManagementClient as AsyncAuthorizationClient

from cloud.sandbox.azure import ApiCall, AzureEmulator
from cloud.sandbox.azure import roles as role
from cloud.sandbox.azure.seed import (
    AGENTS_SCOPE,
    AGENTS_SUBSCRIPTION,
    ALICE,
    CAROL,
    DATA_SCOPE,
    DATA_SUBSCRIPTION,
    ETL,
    FORECAST,
    FORECAST_GROUP,
    RECENT_DAYS,
    SUMMARIZER,
    SUMMARIZER_CLIENT,
    SUMMARIZER_NAME,
    SUPPORT_GROUP,
    SUPPORT_SCOPE,
    TENANT_ID,
    TRIAGE,
    TRIAGE_APP,
)
from tests.cloud.azure_fixtures import GRAPH_SCOPE, AzureClients, arm_kwargs, send

FORECAST_SCOPE = f"{AGENTS_SCOPE}/resourceGroups/{FORECAST_GROUP}"
BUILT_INS = {
    "Owner": role.OWNER,
    "Contributor": role.CONTRIBUTOR,
    "Reader": role.READER,
    "User Access Administrator": role.USER_ACCESS_ADMINISTRATOR,
    "Storage Blob Data Reader": role.STORAGE_BLOB_DATA_READER,
    "Storage Blob Data Contributor": role.STORAGE_BLOB_DATA_CONTRIBUTOR,
    "Cognitive Services OpenAI User": role.COGNITIVE_SERVICES_OPENAI_USER,
    "Key Vault Secrets User": role.KEY_VAULT_SECRETS_USER,
    "Managed Identity Operator": role.MANAGED_IDENTITY_OPERATOR,
    "Role Based Access Control Administrator": role.RBAC_ADMINISTRATOR,
    "Virtual Machine Contributor": role.VIRTUAL_MACHINE_CONTRIBUTOR,
    "Automation Contributor": role.AUTOMATION_CONTRIBUTOR,
    "Tag Contributor": role.TAG_CONTRIBUTOR,
    "Key Vault Contributor": role.KEY_VAULT_CONTRIBUTOR,
    "Managed Identity Contributor": role.MANAGED_IDENTITY_CONTRIBUTOR,
}
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"


@pytest.fixture(scope="module")
def emulator() -> Iterator[AzureEmulator]:
    running = AzureEmulator.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def module_clients(emulator: AzureEmulator) -> Iterator[AzureClients]:
    clients = AzureClients.connect(emulator)
    yield clients
    clients.close()


@pytest.fixture
def azure(emulator: AzureEmulator) -> AzureEmulator:
    """The module's emulator, back in its seeded state."""
    emulator.reset()
    return emulator


@pytest.fixture
def clients(azure: AzureEmulator, module_clients: AzureClients) -> AzureClients:
    return module_clients


@pytest.fixture
def auth(clients: AzureClients) -> AuthorizationManagementClient:
    return clients.authorization(AGENTS_SUBSCRIPTION)


def definition(guid: str, subscription_id: str = AGENTS_SUBSCRIPTION) -> str:
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    )


def schedule_request(
    principal_id: str,
    role_guid: str,
    *,
    request_type: str = "AdminAssign",
    expiration: dict[str, Any] | None = None,
    subscription_id: str = AGENTS_SUBSCRIPTION,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "role_definition_id": definition(role_guid, subscription_id),
        "principal_id": principal_id,
        "request_type": request_type,
        "justification": "Leash grant for ticket 42",
    }
    if expiration is not None:
        body["schedule_info"] = {"start_date_time": datetime.now(UTC), "expiration": expiration}
    return body


def for_an_hour() -> dict[str, Any]:
    return {"type": "AfterDuration", "duration": "PT1H"}


def error_code(error: HttpResponseError) -> str:
    assert error.error is not None
    return str(error.error.code)


def test_subscriptions_are_listed_over_https(clients: AzureClients) -> None:
    # What SubscriptionClient.subscriptions.list() sends (api-version 2022-12-01).
    response = send(clients.arm(), "GET", "/subscriptions", params={"api-version": "2022-12-01"})

    assert response.status_code == 200
    body = response.json()
    assert {(s["subscriptionId"], s["displayName"]) for s in body["value"]} == {
        (AGENTS_SUBSCRIPTION, "leash-demo-agents"),
        (DATA_SUBSCRIPTION, "leash-demo-data"),
    }
    assert all(s["tenantId"] == TENANT_ID and s["state"] == "Enabled" for s in body["value"])


def test_subscription_client_lists_subscriptions(clients: AzureClients) -> None:
    # azure-mgmt-resource 24+ moved SubscriptionClient to azure-mgmt-resource-subscriptions.
    package = pytest.importorskip("azure.mgmt.resource.subscriptions")
    client: Any = package.SubscriptionClient(
        clients.credential,
        base_url=clients.emulator.endpoint,
        connection_verify=clients.emulator.cert_path,
    )

    names = {s.display_name for s in client.subscriptions.list()}

    assert names == {"leash-demo-agents", "leash-demo-data"}


def test_resource_groups_are_listed(clients: AzureClients) -> None:
    groups = clients.resources(AGENTS_SUBSCRIPTION).resource_groups.list()

    assert {g.name: (g.tags or {}).get("team") for g in groups} == {
        SUPPORT_GROUP: "support-bots",
        FORECAST_GROUP: "ml-platform",
    }


def test_role_definitions_are_the_built_ins_with_their_actions(
    auth: AuthorizationManagementClient,
) -> None:
    listed = {d.role_name: d for d in auth.role_definitions.list(AGENTS_SCOPE)}
    operator = next(
        iter(
            auth.role_definitions.list(
                AGENTS_SCOPE, filter="roleName eq 'Managed Identity Operator'"
            )
        )
    )
    owner = auth.role_definitions.get_by_id(
        f"/providers/Microsoft.Authorization/roleDefinitions/{role.OWNER}"
    )
    contributor = auth.role_definitions.get(SUPPORT_SCOPE, role.CONTRIBUTOR)
    blob_reader = listed["Storage Blob Data Reader"].permissions[0]

    assert {name: d.name for name, d in listed.items()} == BUILT_INS
    assert listed["Owner"].id == definition(role.OWNER)
    assert "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action" in (
        operator.permissions[0].actions
    )
    assert owner.permissions[0].actions == ["*"]
    assert owner.role_type == "BuiltInRole"
    assert "Microsoft.Authorization/*/Write" in contributor.permissions[0].not_actions
    assert blob_reader.data_actions == [
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
    ]


def test_unknown_role_definition_is_not_found(auth: AuthorizationManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as raised:
        auth.role_definitions.get(AGENTS_SCOPE, str(uuid.uuid4()))

    assert error_code(raised.value) == "RoleDefinitionDoesNotExist"


def test_role_assignment_create_list_filter_get_delete(
    azure: AzureEmulator, auth: AuthorizationManagementClient
) -> None:
    name = str(uuid.uuid4())
    created = auth.role_assignments.create(
        FORECAST_SCOPE,
        name,
        {"role_definition_id": definition(role.READER), "principal_id": ETL},
    )
    for_etl = list(
        auth.role_assignments.list_for_scope(FORECAST_SCOPE, filter=f"principalId eq '{ETL}'")
    )
    at_group = list(auth.role_assignments.list_for_scope(FORECAST_SCOPE, filter="atScope()"))
    fetched = auth.role_assignments.get(FORECAST_SCOPE, name)
    deleted = auth.role_assignments.delete(FORECAST_SCOPE, name)
    deleted_again = auth.role_assignments.delete(FORECAST_SCOPE, name)

    assert created.principal_type == "ServicePrincipal"
    assert (
        created.id == f"{FORECAST_SCOPE}/providers/Microsoft.Authorization/roleAssignments/{name}"
    )
    assert [a.name for a in for_etl] == [name]
    # atScope(): at the group and above it (the subscription's Owners), nothing below.
    assert {(a.principal_id, a.scope) for a in at_group} == {
        (ETL, FORECAST_SCOPE),
        (FORECAST, AGENTS_SCOPE),
        (ALICE, AGENTS_SCOPE),
    }
    assert fetched.role_definition_id == definition(role.READER)
    assert deleted is not None
    assert deleted.name == name
    assert deleted_again is None  # 204, as Azure answers for an assignment that is gone
    with pytest.raises(ResourceNotFoundError) as raised:
        auth.role_assignments.get(FORECAST_SCOPE, name)
    assert error_code(raised.value) == "RoleAssignmentNotFound"
    assert not [a for a in azure.role_assignments(FORECAST_SCOPE) if a["principalId"] == ETL]


def test_subscription_listing_includes_assignments_below_it(
    auth: AuthorizationManagementClient,
) -> None:
    forecast = list(
        auth.role_assignments.list_for_subscription(filter=f"principalId eq '{FORECAST}'")
    )
    everyone = {a.principal_id for a in auth.role_assignments.list_for_subscription()}

    assert [(a.scope, a.role_definition_id) for a in forecast] == [
        (AGENTS_SCOPE, definition(role.OWNER))
    ]
    assert everyone == {TRIAGE, FORECAST, SUMMARIZER, ALICE}


def test_the_same_role_principal_and_scope_twice_is_a_409(
    auth: AuthorizationManagementClient,
) -> None:
    body = {
        "role_definition_id": definition(role.CONTRIBUTOR),
        "principal_id": TRIAGE,
        "principal_type": "ServicePrincipal",
    }
    triage = next(
        a for a in auth.role_assignments.list_for_scope(SUPPORT_SCOPE) if a.principal_id == TRIAGE
    )

    with pytest.raises(ResourceExistsError) as duplicate:
        auth.role_assignments.create(SUPPORT_SCOPE, str(uuid.uuid4()), body)
    again = auth.role_assignments.create(SUPPORT_SCOPE, str(triage.name), body)
    with pytest.raises(HttpResponseError) as moved:
        auth.role_assignments.create(FORECAST_SCOPE, str(triage.name), body)

    assert duplicate.value.status_code == 409
    assert error_code(duplicate.value) == "RoleAssignmentExists"
    assert again.id == triage.id  # the same PUT again is idempotent
    # The same name at another scope would be an update, which Azure refuses.
    assert error_code(moved.value) == "RoleAssignmentUpdateNotPermitted"


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        pytest.param(
            "not-a-guid",
            {"role_definition_id": definition(role.READER), "principal_id": ETL},
            "InvalidRoleAssignmentId",
            id="name-not-a-guid",
        ),
        pytest.param(
            None,
            {"role_definition_id": definition(role.READER), "principal_id": str(uuid.uuid4())},
            "PrincipalNotFound",
            id="unknown-principal-without-type",
        ),
        pytest.param(
            None,
            {"role_definition_id": definition(str(uuid.uuid4())), "principal_id": ETL},
            "RoleDefinitionDoesNotExist",
            id="unknown-role",
        ),
        pytest.param(
            None,
            {
                "role_definition_id": definition(role.READER),
                "principal_id": ALICE,
                "principal_type": "ServicePrincipal",
            },
            "UnmatchedPrincipalType",
            id="wrong-principal-type",
        ),
    ],
)
def test_bad_role_assignments_are_refused(
    auth: AuthorizationManagementClient, name: str | None, body: dict[str, str], code: str
) -> None:
    with pytest.raises(HttpResponseError) as raised:
        auth.role_assignments.create(FORECAST_SCOPE, name or str(uuid.uuid4()), body)

    assert raised.value.status_code == 400
    assert error_code(raised.value) == code


def test_pim_grant_is_listed_and_effective_until_it_expires(
    azure: AzureEmulator, auth: AuthorizationManagementClient
) -> None:
    request = auth.role_assignment_schedule_requests.create(
        SUPPORT_SCOPE,
        str(uuid.uuid4()),
        schedule_request(FORECAST, role.READER, expiration=for_an_hour()),
    )
    only_reader = f"principalId eq '{FORECAST}' and roleDefinitionId eq '{definition(role.READER)}'"
    instances = list(
        auth.role_assignment_schedule_instances.list_for_scope(SUPPORT_SCOPE, filter=only_reader)
    )
    schedules = list(
        auth.role_assignment_schedules.list_for_scope(SUPPORT_SCOPE, filter=only_reader)
    )
    in_force = list(
        auth.role_assignments.list_for_scope(SUPPORT_SCOPE, filter=f"principalId eq '{FORECAST}'")
    )

    assert request.status == "Provisioned"
    assert request.principal_type == "ServicePrincipal"
    assert [i.id for i in instances] == [request.target_role_assignment_schedule_instance_id]
    assert instances[0].end_date_time - instances[0].start_date_time == timedelta(hours=1)
    assert instances[0].expanded_properties.principal.display_name == "forecast-az-agent"
    assert [s.id for s in schedules] == [request.target_role_assignment_schedule_id]
    assert {a.role_definition_id for a in in_force} == {
        definition(role.READER),
        definition(role.OWNER),
    }
    assert [a["roleName"] for a in azure.role_assignments(SUPPORT_SCOPE) if a["viaPim"]] == [
        "Reader"
    ]

    azure.set_now(instances[0].end_date_time + timedelta(seconds=1))

    assert not list(
        auth.role_assignment_schedule_instances.list_for_scope(SUPPORT_SCOPE, filter=only_reader)
    )
    assert not list(
        auth.role_assignment_schedules.list_for_scope(SUPPORT_SCOPE, filter=only_reader)
    )
    assert {
        a.role_definition_id
        for a in auth.role_assignments.list_for_scope(
            SUPPORT_SCOPE, filter=f"principalId eq '{FORECAST}'"
        )
    } == {definition(role.OWNER)}
    assert not [a for a in azure.role_assignments(SUPPORT_SCOPE) if a["viaPim"]]


def test_pim_lists_permanent_assignments_without_an_end(
    auth: AuthorizationManagementClient,
) -> None:
    instances = list(
        auth.role_assignment_schedule_instances.list_for_scope(
            SUPPORT_SCOPE, filter=f"principalId eq '{TRIAGE}'"
        )
    )

    assert [(i.role_definition_id, i.end_date_time) for i in instances] == [
        (definition(role.CONTRIBUTOR), None)
    ]


@pytest.mark.parametrize(
    ("expiration", "code"),
    [
        pytest.param(
            {"type": "AfterDuration", "duration": "PT4M"}, "ActiveDurationTooShort", id="4-minutes"
        ),
        pytest.param(
            {"type": "AfterDateTime", "end_date_time": datetime.now(UTC) + timedelta(minutes=3)},
            "ActiveDurationTooShort",
            id="ends-in-3-minutes",
        ),
        pytest.param(
            {"type": "NoExpiration"},
            "RoleAssignmentRequestPolicyValidationFailed",
            id="permanent",
        ),
        pytest.param(
            {"type": "AfterDuration", "duration": "P181D"},
            "RoleAssignmentRequestPolicyValidationFailed",
            id="over-180-days",
        ),
    ],
)
def test_pim_refuses_windows_outside_the_policy(
    auth: AuthorizationManagementClient, expiration: dict[str, Any], code: str
) -> None:
    with pytest.raises(HttpResponseError) as raised:
        auth.role_assignment_schedule_requests.create(
            SUPPORT_SCOPE,
            str(uuid.uuid4()),
            schedule_request(FORECAST, role.READER, expiration=expiration),
        )

    assert raised.value.status_code == 400
    assert error_code(raised.value) == code


def test_pim_without_a_licence_answers_as_azure_does(
    azure: AzureEmulator, clients: AzureClients
) -> None:
    data = clients.authorization(DATA_SUBSCRIPTION)
    grant = schedule_request(
        ETL, role.READER, expiration=for_an_hour(), subscription_id=DATA_SUBSCRIPTION
    )

    with pytest.raises(HttpResponseError) as refused:
        data.role_assignment_schedule_requests.create(DATA_SCOPE, str(uuid.uuid4()), grant)
    with pytest.raises(HttpResponseError) as listing:
        list(data.role_assignment_schedule_instances.list_for_scope(DATA_SCOPE))
    azure.pim_enabled(DATA_SUBSCRIPTION, True)
    granted = data.role_assignment_schedule_requests.create(DATA_SCOPE, str(uuid.uuid4()), grant)

    for error in (refused.value, listing.value):
        assert error.status_code == 400
        assert error_code(error) == "AadPremiumLicenseRequired"
        assert error.error is not None
        assert error.error.message == "The tenant needs an AAD Premium 2 license."
    assert granted.status == "Provisioned"


def test_pim_admin_remove_ends_the_grant(
    azure: AzureEmulator, auth: AuthorizationManagementClient
) -> None:
    auth.role_assignment_schedule_requests.create(
        SUPPORT_SCOPE,
        str(uuid.uuid4()),
        schedule_request(ETL, role.READER, expiration=for_an_hour()),
    )
    with pytest.raises(HttpResponseError) as twice:
        auth.role_assignment_schedule_requests.create(
            SUPPORT_SCOPE,
            str(uuid.uuid4()),
            schedule_request(ETL, role.READER, expiration=for_an_hour()),
        )

    removed = auth.role_assignment_schedule_requests.create(
        SUPPORT_SCOPE,
        str(uuid.uuid4()),
        schedule_request(ETL, role.READER, request_type="AdminRemove"),
    )
    with pytest.raises(HttpResponseError) as again:
        auth.role_assignment_schedule_requests.create(
            SUPPORT_SCOPE,
            str(uuid.uuid4()),
            schedule_request(ETL, role.READER, request_type="AdminRemove"),
        )

    assert error_code(twice.value) == "RoleAssignmentExists"
    assert removed.status == "Revoked"
    assert not [a for a in azure.role_assignments(SUPPORT_SCOPE) if a["principalId"] == ETL]
    assert not list(
        auth.role_assignment_schedule_instances.list_for_scope(
            SUPPORT_SCOPE, filter=f"principalId eq '{ETL}'"
        )
    )
    assert error_code(again.value) == "RoleAssignmentDoesNotExist"


def test_managed_identities_carry_tags_and_ids(azure: AzureEmulator, clients: AzureClients) -> None:
    msi = clients.msi(AGENTS_SUBSCRIPTION)
    added = azure.add_managed_identity(
        AGENTS_SUBSCRIPTION, FORECAST_GROUP, "forecast-mi", tags={"team": "ml-platform"}
    )

    listed = {i.name: i for i in msi.user_assigned_identities.list_by_subscription()}
    summarizer = msi.user_assigned_identities.get(SUPPORT_GROUP, SUMMARIZER_NAME)

    assert set(listed) == {SUMMARIZER_NAME, "forecast-mi"}
    assert listed["forecast-mi"].principal_id == added
    assert summarizer.tags == {"leash:agent": "true", "leash:owner": "bob@example.com"}
    assert (summarizer.principal_id, summarizer.client_id) == (SUMMARIZER, SUMMARIZER_CLIENT)
    assert summarizer.tenant_id == TENANT_ID
    assert not list(clients.msi(DATA_SUBSCRIPTION).user_assigned_identities.list_by_subscription())
    with pytest.raises(ResourceNotFoundError):
        msi.user_assigned_identities.get(SUPPORT_GROUP, "no-such-mi")


def test_activity_log_filters_by_window_and_caller(
    azure: AzureEmulator, clients: AzureClients
) -> None:
    now = datetime.now(UTC)
    monitor = clients.monitor(AGENTS_SUBSCRIPTION)
    azure.add_activity(
        AGENTS_SUBSCRIPTION,
        SUMMARIZER,
        "Microsoft.CognitiveServices/accounts/read",
        now - timedelta(hours=1),
    )

    def events(start: datetime, extra: str = "") -> list[Any]:
        window = (
            f"eventTimestamp ge '{start.isoformat()}' and eventTimestamp le '{now.isoformat()}'"
        )
        return list(monitor.activity_logs.list(filter=window + extra))

    month = events(now - timedelta(days=30))
    triage = events(now - timedelta(days=30), f" and caller eq '{TRIAGE}'")
    forecast = events(now - timedelta(days=90), f" and caller eq '{FORECAST}'")
    storage = events(now - timedelta(days=30), " and resourceProvider eq 'Microsoft.Storage'")
    this_week = events(now - timedelta(days=RECENT_DAYS - 3))

    assert [e.caller for e in month] == [SUMMARIZER, TRIAGE, TRIAGE]  # newest first
    assert {e.operation_name.value for e in triage} == {
        "Microsoft.Storage/storageAccounts/read",
        "Microsoft.Resources/deployments/write",
    }
    assert all(
        e.claims[OBJECT_ID_CLAIM] == TRIAGE and e.claims["appid"] == TRIAGE_APP for e in triage
    )
    assert all(e.authorization.action == e.operation_name.value for e in triage)
    assert triage[0].authorization.scope.startswith(SUPPORT_SCOPE)
    assert forecast == []
    assert [e.operation_name.value for e in storage] == ["Microsoft.Storage/storageAccounts/read"]
    assert [e.caller for e in this_week] == [SUMMARIZER]
    with pytest.raises(HttpResponseError) as too_old:
        events(now - timedelta(days=120))
    assert too_old.value.status_code == 400


def test_graph_looks_up_service_principals(clients: AzureClients) -> None:
    graph = clients.graph()
    missing = str(uuid.uuid4())

    one = send(graph, "GET", f"/v1.0/servicePrincipals/{TRIAGE}")
    several = send(
        graph,
        "GET",
        "/v1.0/servicePrincipals",
        params={"$filter": f"id in ('{FORECAST}', '{SUMMARIZER}', '{missing}')"},
    )
    by_ids = send(
        graph,
        "POST",
        "/v1.0/directoryObjects/getByIds",
        json={"ids": [ETL, CAROL, missing], "types": ["servicePrincipal", "user"]},
    )
    unknown = send(graph, "GET", f"/v1.0/servicePrincipals/{missing}")

    assert one.status_code == 200
    assert {
        key: one.json()[key] for key in ("id", "appId", "displayName", "servicePrincipalType")
    } == {
        "id": TRIAGE,
        "appId": TRIAGE_APP,
        "displayName": "support-triage-az-agent",
        "servicePrincipalType": "Application",
    }
    assert one.json()["tags"] == [
        "leash:agent=true",
        "leash:owner=alice@example.com",
        "team=support-bots",
    ]
    assert {p["displayName"]: p["servicePrincipalType"] for p in several.json()["value"]} == {
        "forecast-az-agent": "Application",
        SUMMARIZER_NAME: "ManagedIdentity",
    }
    assert [(o["@odata.type"], o["id"]) for o in by_ids.json()["value"]] == [
        ("#microsoft.graph.servicePrincipal", ETL),
        ("#microsoft.graph.user", CAROL),
    ]
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "Request_ResourceNotFound"
    assert (GRAPH_SCOPE,) in clients.credential.scopes


async def test_async_clients_use_the_same_credential_and_certificate(
    azure: AzureEmulator,
) -> None:
    async with AsyncAuthorizationClient(
        azure.async_credential(), AGENTS_SUBSCRIPTION, **arm_kwargs(azure)
    ) as auth:
        owners = [
            a.principal_id
            async for a in auth.role_assignments.list_for_scope(AGENTS_SCOPE, filter="atScope()")
        ]

    assert set(owners) == {FORECAST, ALICE}


def test_plain_http_is_refused_by_the_client(azure: AzureEmulator, clients: AzureClients) -> None:
    insecure = AuthorizationManagementClient(
        clients.credential,
        AGENTS_SUBSCRIPTION,
        base_url=azure.endpoint.replace("https://", "http://"),
        retry_total=0,
    )
    port = int(azure.endpoint.rsplit(":", 1)[1])
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    with pytest.raises(ServiceRequestError, match="non-TLS"):
        list(insecure.role_assignments.list_for_subscription())
    # Nor does the emulator speak plain http: it only does TLS.
    plain.request("GET", "/subscriptions?api-version=2022-12-01")
    with pytest.raises((OSError, http.client.HTTPException)):
        plain.getresponse()
    plain.close()
    insecure.close()  # type: ignore[no-untyped-call]  # untyped in azure-mgmt-authorization 4.0.0
    assert azure.requests == []


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-token"),
        pytest.param({"Authorization": "Bearer forged"}, 401, id="wrong-token"),
    ],
)
def test_calls_without_the_emulator_token_are_unauthorized(
    azure: AzureEmulator, headers: dict[str, str], status: int
) -> None:
    bare: PipelineClient[HttpRequest, Any] = PipelineClient(
        base_url=azure.endpoint, policies=[], connection_verify=azure.cert_path
    )

    response = send(
        bare, "GET", "/subscriptions", params={"api-version": "2022-12-01"}, headers=headers
    )

    assert response.status_code == status
    assert response.json()["error"]["code"] in (
        "AuthenticationFailed",
        "InvalidAuthenticationToken",
    )


def test_unsupported_api_version_is_refused(clients: AzureClients) -> None:
    response = send(
        clients.arm(),
        "GET",
        f"{AGENTS_SCOPE}/providers/Microsoft.Authorization/roleAssignments",
        params={"api-version": "2015-07-01"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidApiVersionParameter"


def test_requests_are_logged_with_their_api_versions(
    azure: AzureEmulator, clients: AzureClients
) -> None:
    auth = clients.authorization(AGENTS_SUBSCRIPTION)
    list(auth.role_assignments.list_for_subscription())
    list(auth.role_assignment_schedule_instances.list_for_scope(AGENTS_SCOPE))
    list(clients.msi(AGENTS_SUBSCRIPTION).user_assigned_identities.list_by_subscription())

    assert azure.requests == [
        ApiCall(
            "GET", f"{AGENTS_SCOPE}/providers/Microsoft.Authorization/roleAssignments", "2022-04-01"
        ),
        ApiCall(
            "GET",
            f"{AGENTS_SCOPE}/providers/Microsoft.Authorization/roleAssignmentScheduleInstances",
            "2020-10-01",
        ),
        ApiCall(
            "GET",
            f"{AGENTS_SCOPE}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
            "2024-11-30",
        ),
    ]


def test_reset_restores_the_seed(azure: AzureEmulator, clients: AzureClients) -> None:
    seeded = sorted(a["id"] for a in azure.role_assignments())
    auth = clients.authorization(AGENTS_SUBSCRIPTION)
    auth.role_assignments.create(
        FORECAST_SCOPE,
        str(uuid.uuid4()),
        {"role_definition_id": definition(role.READER), "principal_id": ETL},
    )
    auth.role_assignment_schedule_requests.create(
        SUPPORT_SCOPE,
        str(uuid.uuid4()),
        schedule_request(ETL, role.READER, expiration=for_an_hour()),
    )
    added = azure.add_service_principal("temp-agent", tags=["leash:agent=true"])
    azure.pim_enabled(AGENTS_SUBSCRIPTION, False)
    azure.set_now(datetime(2030, 1, 1, tzinfo=UTC))

    azure.reset()

    assert sorted(a["id"] for a in azure.role_assignments()) == seeded
    assert azure.requests == []
    assert abs(azure.now() - datetime.now(UTC)) < timedelta(minutes=1)
    assert send(clients.graph(), "GET", f"/v1.0/servicePrincipals/{added}").status_code == 404
    assert list(auth.role_assignment_schedule_instances.list_for_scope(AGENTS_SCOPE))


def test_an_empty_emulator_has_only_the_built_in_roles() -> None:
    with AzureEmulator.start(seed=False) as empty:
        assert empty.subscription_ids == ()
        assert empty.role_assignments() == []
        assert empty.tenant_id == TENANT_ID
