"""The GCP emulator, through the real google-cloud clients: REST and gRPC, as a provider uses it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import iam_admin_v1

from cloud.sandbox.gcp import ApiCall, GcpEmulator
from cloud.sandbox.gcp.seed import (
    AGENTS_PROJECT,
    DATA_PROJECT,
    FOLDER_NUMBER,
    INACTIVE_DAYS,
    ML_PROJECT,
    RETIRED_DAYS,
    VERTEX_SERVICE_AGENT,
)
from tests.cloud.gcp_fixtures import GcpClients, deny_parent, finished, sa_member

TRIAGE = f"support-triage-gcp-agent@{AGENTS_PROJECT}.iam.gserviceaccount.com"
FORECAST = f"forecast-gcp-agent@{ML_PROJECT}.iam.gserviceaccount.com"
ETL = f"etl-runner@{DATA_PROJECT}.iam.gserviceaccount.com"
CHATBOT = f"old-chatbot-agent@{AGENTS_PROJECT}.iam.gserviceaccount.com"
KeyType = iam_admin_v1.types.ListServiceAccountKeysRequest.KeyType
IAM_RECOMMENDER = "locations/global/recommenders/google.iam.policy.Recommender"
POLICY_INSIGHTS = "locations/global/insightTypes/google.iam.policy.Insight"
ACCOUNT_INSIGHTS = "locations/global/insightTypes/google.iam.serviceAccount.Insight"


@pytest.fixture(scope="module")
def emulator() -> Iterator[GcpEmulator]:
    running = GcpEmulator.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def module_clients(emulator: GcpEmulator) -> Iterator[GcpClients]:
    clients = GcpClients.connect(emulator)
    yield clients
    clients.close()


@pytest.fixture
def gcp(emulator: GcpEmulator) -> GcpEmulator:
    """The module's emulator, back in its seeded state."""
    emulator.reset()
    return emulator


@pytest.fixture
def clients(gcp: GcpEmulator, module_clients: GcpClients) -> GcpClients:
    return module_clients


def read_policy(clients: GcpClients, project_id: str, version: int = 3) -> Any:
    return clients.projects.get_iam_policy(
        request={
            "resource": f"projects/{project_id}",
            "options": {"requested_policy_version": version},
        }
    )


def write_policy(clients: GcpClients, project_id: str, policy: Any) -> Any:
    return clients.projects.set_iam_policy(
        request={"resource": f"projects/{project_id}", "policy": policy}
    )


def until(at: datetime, title: str = "leash-grant-1") -> dict[str, str]:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"title": title, "expression": f'request.time < timestamp("{stamp}")'}


# Resource Manager


def test_projects_are_found_under_the_organization_and_its_folder(
    gcp: GcpEmulator, clients: GcpClients
) -> None:
    folders = list(clients.folders.list_folders(parent=gcp.organization))
    in_org = list(clients.projects.list_projects(parent=gcp.organization))
    in_folder = list(clients.projects.list_projects(parent=f"folders/{FOLDER_NUMBER}"))

    assert [f.name for f in folders] == [f"folders/{FOLDER_NUMBER}"]
    assert [p.project_id for p in in_org] == [DATA_PROJECT, ML_PROJECT]
    assert [p.project_id for p in in_folder] == [AGENTS_PROJECT]
    assert gcp.project_ids == (AGENTS_PROJECT, DATA_PROJECT, ML_PROJECT)
    project = clients.projects.get_project(name=f"projects/{AGENTS_PROJECT}")
    assert project.name == f"projects/{gcp.project_number(AGENTS_PROJECT)}"
    assert project.parent == f"folders/{FOLDER_NUMBER}"
    assert dict(project.labels)["team"] == "support-bots"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("", [AGENTS_PROJECT, DATA_PROJECT, ML_PROJECT], id="everything"),
        pytest.param("labels.team:ml-platform", [DATA_PROJECT, ML_PROJECT], id="by-label"),
        pytest.param(f"parent:folders/{FOLDER_NUMBER}", [AGENTS_PROJECT], id="by-parent"),
        pytest.param("id:leash-demo-a*", [AGENTS_PROJECT], id="by-id-prefix"),
    ],
)
def test_search_projects_pages_through_matches(
    clients: GcpClients, query: str, expected: list[str]
) -> None:
    found = clients.projects.search_projects(request={"query": query, "page_size": 1})

    assert [p.project_id for p in found] == expected


def test_an_unknown_project_is_denied_as_if_it_may_not_exist(clients: GcpClients) -> None:
    # Over REST the client maps by HTTP status: 403 gives Forbidden (PermissionDenied's base).
    with pytest.raises(exceptions.Forbidden, match="or it may not exist"):
        clients.projects.get_project(name="projects/no-such-project")


# IAM admin over gRPC


def test_service_accounts_are_listed_a_page_at_a_time(clients: GcpClients) -> None:
    pager = clients.iam.list_service_accounts(
        request={"name": f"projects/{AGENTS_PROJECT}", "page_size": 1}
    )

    pages = list(pager.pages)
    accounts = {a.email: a for page in pages for a in page.accounts}
    assert len(pages) == 2
    assert set(accounts) == {TRIAGE, CHATBOT}
    assert accounts[CHATBOT].disabled
    assert "leash:owner=alice@example.com" in accounts[TRIAGE].description
    listed_ml = [a.email for a in clients.iam.list_service_accounts(name=f"projects/{ML_PROJECT}")]
    assert listed_ml == [FORECAST]  # Google's Vertex AI service agent is not the project's


def test_disable_and_enable_a_service_account(gcp: GcpEmulator, clients: GcpClients) -> None:
    name = f"projects/-/serviceAccounts/{TRIAGE}"

    clients.iam.disable_service_account(request={"name": name})
    disabled = clients.iam.get_service_account(name=name)
    clients.iam.enable_service_account(request={"name": name})

    assert disabled.disabled
    assert not gcp.service_account(TRIAGE)["disabled"]
    assert gcp.requests[-3:] == [
        ("iam", "projects.serviceAccounts.disable", name),
        ("iam", "projects.serviceAccounts.get", name),
        ("iam", "projects.serviceAccounts.enable", name),
    ]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            f"projects/-/serviceAccounts/nobody@{AGENTS_PROJECT}.iam.gserviceaccount.com",
            id="unknown-email",
        ),
        pytest.param(f"projects/{DATA_PROJECT}/serviceAccounts/{TRIAGE}", id="other-project"),
    ],
)
def test_an_unknown_service_account_is_not_found(clients: GcpClients, name: str) -> None:
    with pytest.raises(exceptions.NotFound):
        clients.iam.get_service_account(name=name)
    with pytest.raises(exceptions.NotFound):
        clients.iam.disable_service_account(request={"name": name})


@pytest.mark.parametrize(
    ("key_types", "expected"),
    [
        pytest.param([KeyType.USER_MANAGED], [KeyType.USER_MANAGED], id="user-managed"),
        pytest.param([KeyType.SYSTEM_MANAGED], [KeyType.SYSTEM_MANAGED], id="system-managed"),
        pytest.param([], [KeyType.USER_MANAGED, KeyType.SYSTEM_MANAGED], id="all"),
    ],
)
def test_keys_are_listed_by_type(
    clients: GcpClients, key_types: list[Any], expected: list[Any]
) -> None:
    listed = clients.iam.list_service_account_keys(
        request={"name": f"projects/{DATA_PROJECT}/serviceAccounts/{ETL}", "key_types": key_types}
    )

    assert sorted(key.key_type for key in listed.keys) == expected
    assert all(
        key.name.startswith(f"projects/{DATA_PROJECT}/serviceAccounts/{ETL}/keys/")
        for key in listed.keys
    )


# Allow policies


def test_a_conditional_binding_round_trips_in_a_version_3_policy(
    gcp: GcpEmulator, clients: GcpClients
) -> None:
    policy = read_policy(clients, AGENTS_PROJECT)
    expires = datetime.now(UTC) + timedelta(hours=1)
    policy.bindings.add(
        role="roles/bigquery.dataViewer", members=[sa_member(TRIAGE)], condition=until(expires)
    )
    policy.version = 3

    written = write_policy(clients, AGENTS_PROJECT, policy)
    again = read_policy(clients, AGENTS_PROJECT)
    as_version_1 = read_policy(clients, AGENTS_PROJECT, version=1)

    assert written.etag != policy.etag
    assert again.etag == written.etag
    assert again.version == 3
    granted = [b for b in again.bindings if b.role == "roles/bigquery.dataViewer"]
    assert [(b.condition.title, list(b.members)) for b in granted] == [
        ("leash-grant-1", [sa_member(TRIAGE)])
    ]
    assert as_version_1.version == 1
    assert any("_withcond_" in b.role for b in as_version_1.bindings)
    stored = gcp.iam_policy(AGENTS_PROJECT)
    assert stored["version"] == 3
    assert {
        "role": "roles/bigquery.dataViewer",
        "members": [sa_member(TRIAGE)],
        "condition": until(expires),
    } in stored["bindings"]


def test_a_stale_etag_is_refused_with_conflict(gcp: GcpEmulator, clients: GcpClients) -> None:
    policy = read_policy(clients, DATA_PROJECT)
    write_policy(clients, DATA_PROJECT, policy)

    with pytest.raises(exceptions.Conflict, match="concurrent policy changes") as caught:
        write_policy(clients, DATA_PROJECT, policy)

    # REST errors are mapped by HTTP status: 409 gives Conflict, not its subclass Aborted.
    assert type(caught.value) is exceptions.Conflict
    assert caught.value.code == 409
    assert gcp.sets_without_etag == 0


def test_a_concurrent_writer_makes_the_next_set_fail_until_reread(
    gcp: GcpEmulator, clients: GcpClients
) -> None:
    gcp.conflict_next_sets(1)
    policy = read_policy(clients, DATA_PROJECT)

    with pytest.raises(exceptions.Conflict):
        write_policy(clients, DATA_PROJECT, policy)
    with pytest.raises(exceptions.Conflict):
        write_policy(clients, DATA_PROJECT, policy)  # the other writer moved the etag on
    write_policy(clients, DATA_PROJECT, read_policy(clients, DATA_PROJECT))


def test_a_set_without_etag_is_accepted_and_counted(gcp: GcpEmulator, clients: GcpClients) -> None:
    policy = read_policy(clients, DATA_PROJECT)
    policy.etag = b""

    write_policy(clients, DATA_PROJECT, policy)

    assert gcp.sets_without_etag == 1
    assert gcp.requests[-1] == ApiCall(
        "cloudresourcemanager", "projects.setIamPolicy", f"projects/{DATA_PROJECT}"
    )


def test_the_21st_conditional_binding_for_one_role_and_member_is_refused(
    clients: GcpClients,
) -> None:
    policy = read_policy(clients, AGENTS_PROJECT)
    policy.version = 3
    soon = datetime.now(UTC) + timedelta(hours=1)
    for number in range(1, 21):
        policy.bindings.add(
            role="roles/storage.objectViewer",
            members=[sa_member(TRIAGE)],
            condition=until(soon + timedelta(minutes=number), f"leash-grant-{number}"),
        )
    policy = write_policy(clients, AGENTS_PROJECT, policy)
    policy.bindings.add(
        role="roles/storage.objectViewer",
        members=[sa_member(TRIAGE)],
        condition=until(soon, "leash-grant-21"),
    )

    with pytest.raises(exceptions.BadRequest, match="limit is 20 conditional role bindings"):
        write_policy(clients, AGENTS_PROJECT, policy)


def test_more_than_100_conditional_bindings_are_refused(clients: GcpClients) -> None:
    policy = read_policy(clients, AGENTS_PROJECT)
    policy.version = 3
    soon = datetime.now(UTC) + timedelta(hours=1)
    for number in range(101):
        policy.bindings.add(
            role=f"roles/custom.role{number % 6}",
            members=[f"user:person{number}@example.com"],
            condition=until(soon, f"grant-{number}"),
        )

    with pytest.raises(exceptions.BadRequest, match="limit is 100 conditional role bindings"):
        write_policy(clients, AGENTS_PROJECT, policy)


@pytest.mark.parametrize(
    ("role", "member", "condition", "version", "message"),
    [
        pytest.param(
            "roles/storage.objectViewer",
            sa_member(TRIAGE),
            True,
            1,
            "version 3",
            id="condition-in-version-1",
        ),
        pytest.param(
            "roles/owner", sa_member(TRIAGE), True, 3, "basic roles", id="condition-on-basic-role"
        ),
        pytest.param(
            "roles/storage.objectViewer",
            sa_member(f"ghost@{AGENTS_PROJECT}.iam.gserviceaccount.com"),
            False,
            1,
            "does not exist",
            id="unknown-service-account",
        ),
        pytest.param(
            "roles/storage.objectViewer",
            "alice@example.com",
            False,
            1,
            "<type>:<value>",
            id="member-without-type",
        ),
    ],
)
def test_invalid_policies_are_refused(
    clients: GcpClients, role: str, member: str, condition: bool, version: int, message: str
) -> None:
    policy = read_policy(clients, AGENTS_PROJECT)
    policy.version = version
    binding = policy.bindings.add(role=role, members=[member])
    if condition:
        binding.condition.title = "leash-grant-x"
        binding.condition.expression = 'request.time < timestamp("2031-01-01T00:00:00Z")'

    with pytest.raises(exceptions.BadRequest, match=message):
        write_policy(clients, AGENTS_PROJECT, policy)


def test_only_a_set_without_etag_can_drop_conditions_by_writing_version_1(
    gcp: GcpEmulator, clients: GcpClients
) -> None:
    policy = read_policy(clients, ML_PROJECT)
    unconditional = [b for b in policy.bindings if not b.condition.expression]
    del policy.bindings[:]
    policy.bindings.extend(unconditional)
    policy.version = 1

    with pytest.raises(exceptions.BadRequest, match="set it with version 3"):
        write_policy(clients, ML_PROJECT, policy)
    policy.etag = b""
    write_policy(clients, ML_PROJECT, policy)

    assert all("condition" not in b for b in gcp.iam_policy(ML_PROJECT)["bindings"])
    assert gcp.sets_without_etag == 1


def test_effective_roles_evaluate_the_expiry_condition(
    gcp: GcpEmulator, clients: GcpClients
) -> None:
    expires = datetime(2031, 1, 1, tzinfo=UTC)
    policy = read_policy(clients, ML_PROJECT)
    policy.bindings.add(
        role="roles/bigquery.dataViewer", members=[sa_member(FORECAST)], condition=until(expires)
    )
    write_policy(clients, ML_PROJECT, policy)
    member = sa_member(FORECAST)

    before = gcp.effective_roles(member, ML_PROJECT, expires - timedelta(seconds=1))
    after = gcp.effective_roles(member, ML_PROJECT, expires + timedelta(seconds=1))
    gcp.set_now(expires + timedelta(days=1))

    assert before == {"roles/aiplatform.user", "roles/bigquery.dataViewer"}
    assert after == {"roles/aiplatform.user"}
    assert gcp.effective_roles(member, ML_PROJECT) == after
    assert gcp.effective_roles(sa_member(VERTEX_SERVICE_AGENT), ML_PROJECT) == {
        "roles/aiplatform.serviceAgent"
    }


def test_folder_and_organization_bindings_are_inherited(
    gcp: GcpEmulator, clients: GcpClients
) -> None:
    folder_policy = clients.folders.get_iam_policy(request={"resource": f"folders/{FOLDER_NUMBER}"})
    support_bots = "group:support-bots@example.com"

    assert [(b.role, list(b.members)) for b in folder_policy.bindings] == [
        ("roles/resourcemanager.folderViewer", [support_bots])
    ]
    assert gcp.effective_roles(support_bots, AGENTS_PROJECT) == {
        "roles/resourcemanager.folderViewer"
    }
    assert gcp.effective_roles(support_bots, DATA_PROJECT) == set()
    assert "roles/iam.securityReviewer" in gcp.effective_roles(
        "group:security@example.com", DATA_PROJECT
    )


# Deny policies


def test_a_deny_policy_goes_through_create_list_update_and_delete(
    gcp: GcpEmulator, clients: GcpClients
) -> None:
    parent = deny_parent(AGENTS_PROJECT)
    rule = {
        "denied_principals": [
            f"principal://iam.googleapis.com/projects/-/serviceAccounts/{TRIAGE}"
        ],
        "denied_permissions": ["iam.googleapis.com/serviceAccountKeys.create"],
    }
    created = finished(
        clients.deny.create_policy(
            request={
                "parent": parent,
                "policy_id": "leash-guardrail",
                "policy": {"display_name": "Leash guardrail", "rules": [{"deny_rule": rule}]},
            }
        )
    )
    number = gcp.project_number(AGENTS_PROJECT)
    assert created.name == (
        f"policies/cloudresourcemanager.googleapis.com%2Fprojects%2F{number}"
        "/denypolicies/leash-guardrail"
    )

    listed = list(clients.deny.list_policies(parent=parent))
    assert [p.display_name for p in listed] == ["Leash guardrail"]
    assert not listed[0].rules  # ListPolicies leaves rules out
    fetched = clients.deny.get_policy(name=created.name)
    assert list(fetched.rules[0].deny_rule.denied_permissions) == rule["denied_permissions"]

    fetched.rules[0].deny_rule.exception_principals.append(
        "principalSet://goog/group/security-admins@example.com"
    )
    updated = finished(clients.deny.update_policy(request={"policy": fetched}))
    assert updated.etag != fetched.etag
    with pytest.raises(exceptions.Conflict):
        clients.deny.update_policy(request={"policy": fetched})  # its etag is stale now

    deleted = finished(clients.deny.delete_policy(name=created.name))
    assert deleted.name == created.name
    assert gcp.deny_policies(AGENTS_PROJECT) == []
    assert [p["displayName"] for p in gcp.deny_policies(DATA_PROJECT)] == [
        "Nobody deletes the audit buckets"
    ]
    resource = (
        f"policies/cloudresourcemanager.googleapis.com/projects/{AGENTS_PROJECT}/denypolicies"
    )
    assert ("iam", "policies.createPolicy", resource) in gcp.requests


@pytest.mark.parametrize(
    ("principal", "permission", "message"),
    [
        pytest.param(
            sa_member(TRIAGE),
            "iam.googleapis.com/serviceAccountKeys.create",
            "principal identifiers",
            id="v1-member",
        ),
        pytest.param(
            f"principal://iam.googleapis.com/projects/-/serviceAccounts/{TRIAGE}",
            "iam.serviceAccountKeys.create",
            "RESOURCE.ACTION",
            id="v1-permission",
        ),
    ],
)
def test_a_deny_rule_in_the_v1_vocabulary_is_refused(
    clients: GcpClients, principal: str, permission: str, message: str
) -> None:
    rule = {"denied_principals": [principal], "denied_permissions": [permission]}

    with pytest.raises(exceptions.BadRequest, match=message):
        clients.deny.create_policy(
            request={
                "parent": deny_parent(AGENTS_PROJECT),
                "policy_id": "leash-guardrail",
                "policy": {"rules": [{"deny_rule": rule}]},
            }
        )


# Recommender


def test_role_recommendations_name_the_binding_and_the_smaller_role(
    clients: GcpClients,
) -> None:
    replace = list(
        clients.recommender.list_recommendations(
            parent=f"projects/{AGENTS_PROJECT}/{IAM_RECOMMENDER}"
        )
    )
    remove = list(
        clients.recommender.list_recommendations(
            parent=f"projects/{DATA_PROJECT}/{IAM_RECOMMENDER}",
            filter="stateInfo.state = ACTIVE AND recommenderSubtype = REMOVE_ROLE",
        )
    )

    assert [r.recommender_subtype for r in replace] == ["REPLACE_ROLE"]
    operations = replace[0].content.operation_groups[0].operations
    assert [(op.action, op.path) for op in operations] == [
        ("add", "/iamPolicy/bindings/*/members/-"),
        ("remove", "/iamPolicy/bindings/*/members/*"),
    ]
    assert operations[0].path_filters["/iamPolicy/bindings/*/role"] == "roles/storage.objectViewer"
    assert operations[1].path_filters["/iamPolicy/bindings/*/role"] == "roles/storage.admin"
    assert operations[1].path_filters["/iamPolicy/bindings/*/members/*"] == sa_member(TRIAGE)
    assert [r.recommender_subtype for r in remove] == ["REMOVE_ROLE"]
    assert remove[0].content.overview["member"] == sa_member(FORECAST)
    insight = clients.recommender.get_insight(name=replace[0].associated_insights[0].insight)
    assert insight.insight_subtype == "PERMISSIONS_USAGE"
    assert insight.content["role"] == "roles/storage.admin"
    assert [p["permission"] for p in insight.content["exercisedPermissions"]] == [
        "storage.objects.get",
        "storage.objects.list",
    ]
    assert insight.content["currentTotalPermissionsCount"] == "65"
    assert insight.observation_period.days == 90


def test_service_account_insights_show_only_accounts_idle_for_90_days(
    gcp: GcpEmulator, clients: GcpClients
) -> None:
    def idle(project_id: str) -> dict[str, Any]:
        found = clients.recommender.list_insights(
            parent=f"projects/{project_id}/{ACCOUNT_INSIGHTS}"
        )
        return {i.content["email"]: i.content for i in found}

    agents_before = idle(AGENTS_PROJECT)
    ml = idle(ML_PROJECT)
    gcp.set_last_authentication(TRIAGE, gcp.now() - timedelta(days=91))
    gcp.set_last_authentication(CHATBOT, None)

    assert set(agents_before) == {CHATBOT}
    assert set(ml) == {FORECAST}
    last = datetime.fromisoformat(ml[FORECAST]["lastAuthenticatedTime"])
    assert (gcp.now() - last).days == INACTIVE_DAYS
    assert (
        gcp.now() - datetime.fromisoformat(agents_before[CHATBOT]["lastAuthenticatedTime"])
    ).days == RETIRED_DAYS
    agents_after = idle(AGENTS_PROJECT)
    assert set(agents_after) == {TRIAGE, CHATBOT}
    assert "lastAuthenticatedTime" not in agents_after[CHATBOT]  # never authenticated
    assert idle(DATA_PROJECT) == {}


# The emulator itself


def test_reset_restores_the_seed(gcp: GcpEmulator, clients: GcpClients) -> None:
    seeded_policy = gcp.iam_policy(AGENTS_PROJECT)
    clients.iam.disable_service_account(request={"name": f"projects/-/serviceAccounts/{TRIAGE}"})
    policy = read_policy(clients, AGENTS_PROJECT)
    policy.etag = b""
    policy.bindings.add(role="roles/viewer", members=["user:mallory@example.com"])
    write_policy(clients, AGENTS_PROJECT, policy)
    gcp.add_service_account(AGENTS_PROJECT, "scratch-agent")
    gcp.set_now(datetime(2040, 1, 1, tzinfo=UTC))
    gcp.conflict_next_sets(5)

    gcp.reset()

    assert not gcp.service_account(TRIAGE)["disabled"]
    assert gcp.iam_policy(AGENTS_PROJECT)["bindings"] == seeded_policy["bindings"]
    assert gcp.requests == []
    assert gcp.sets_without_etag == 0
    assert gcp.now().year < 2040
    names = [a.email for a in clients.iam.list_service_accounts(name=f"projects/{AGENTS_PROJECT}")]
    assert names == [CHATBOT, TRIAGE]
    write_policy(clients, AGENTS_PROJECT, read_policy(clients, AGENTS_PROJECT))  # no conflict


def test_an_unseeded_emulator_holds_only_the_organization() -> None:
    with GcpEmulator.start(seed=False) as bare:
        assert bare.project_ids == ()
        assert bare.organization.startswith("organizations/")
        bare.add_project("scratch-project")
        email = bare.add_service_account("scratch-project", "scratch-agent", disabled=True)
        assert bare.service_account(email)["disabled"]


def test_predefined_roles_are_read_over_grpc(clients: GcpClients) -> None:
    role = clients.iam.get_role(request={"name": "roles/storage.objectViewer"})
    assert list(role.included_permissions) == ["storage.objects.get", "storage.objects.list"]
    with pytest.raises(exceptions.NotFound):
        clients.iam.get_role(request={"name": "roles/no.suchRole"})
