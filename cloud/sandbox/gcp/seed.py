"""The demo organisation the GCP emulator starts with, mirroring the AWS sandbox's demo.

| service account             | project           | what it shows                                 |
|-----------------------------|-------------------|-----------------------------------------------|
| support-triage-gcp-agent    | leash-demo-agents | agent with an owner; storage.admin, which     |
|                             |                   | should be storage.objectViewer (REPLACE_ROLE) |
| forecast-gcp-agent          | leash-demo-ml     | agent without an owner, idle INACTIVE_DAYS;   |
|                             |                   | unused bigquery.dataEditor on leash-demo-data |
| etl-runner                  | leash-demo-data   | a plain workload, not an agent; a user key    |
| old-chatbot-agent           | leash-demo-agents | disabled agent, idle RETIRED_DAYS days        |
| service-N@gcp-sa-aiplatform | (Google's)        | Vertex AI service agent in leash-demo-ml      |

Agents say so, and name their owner, in their description: `leash:agent=true
leash:owner=alice@example.com` (service accounts have no labels); teams are project labels.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloud.sandbox.gcp.deny import deny_etag
from cloud.sandbox.gcp.iam_policy import write_policy
from cloud.sandbox.gcp.state import (
    SA_DOMAIN,
    Folder,
    GcpState,
    JsonObject,
    Organization,
    Project,
    RoleRecommendation,
    ServiceAccount,
    ServiceAccountKey,
    World,
    timestamp,
)

ORGANIZATION_NUMBER = "100000000001"
ORGANIZATION_DOMAIN = "example.com"
FOLDER_NUMBER = "200000000001"
AGENTS_PROJECT = "leash-demo-agents"
DATA_PROJECT = "leash-demo-data"
ML_PROJECT = "leash-demo-ml"
INACTIVE_DAYS = 120
RETIRED_DAYS = 200
NEVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
BACKFILL_CONDITION = {
    "title": "backfill-until-2030",
    "description": "Temporary BigQuery admin for the 2029 backfill.",
    "expression": 'request.time < timestamp("2030-01-01T00:00:00Z")',
}


@dataclass(frozen=True, slots=True)
class SeededProject:
    project_id: str
    number: str
    in_folder: bool
    team: str


@dataclass(frozen=True, slots=True)
class SeededAccount:
    account_id: str
    project_id: str
    display_name: str
    description: str
    roles: tuple[tuple[str, str], ...]  # (project id, role)
    last_authenticated_days: int
    disabled: bool = False
    user_managed_key: bool = False

    @property
    def email(self) -> str:
        return f"{self.account_id}@{self.project_id}.{SA_DOMAIN}"


PROJECTS = (
    SeededProject(AGENTS_PROJECT, "300000000011", in_folder=True, team="support-bots"),
    SeededProject(DATA_PROJECT, "300000000012", in_folder=False, team="ml-platform"),
    SeededProject(ML_PROJECT, "300000000013", in_folder=False, team="ml-platform"),
)
VERTEX_SERVICE_AGENT = f"service-{PROJECTS[2].number}@gcp-sa-aiplatform.iam.gserviceaccount.com"

ACCOUNTS = (
    SeededAccount(
        "support-triage-gcp-agent",
        AGENTS_PROJECT,
        "Support triage agent",
        "Triages support tickets with Gemini on Vertex AI. "
        "leash:agent=true leash:owner=alice@example.com",
        roles=(
            (AGENTS_PROJECT, "roles/storage.admin"),
            (AGENTS_PROJECT, "roles/aiplatform.user"),
            (AGENTS_PROJECT, "roles/logging.logWriter"),
        ),
        last_authenticated_days=1,
    ),
    SeededAccount(
        "forecast-gcp-agent",
        ML_PROJECT,
        "Forecast agent",
        "Forecasts demand from warehouse data. leash:agent=true",
        roles=((ML_PROJECT, "roles/aiplatform.user"), (DATA_PROJECT, "roles/bigquery.dataEditor")),
        last_authenticated_days=INACTIVE_DAYS,
    ),
    SeededAccount(
        "etl-runner",
        DATA_PROJECT,
        "ETL runner",
        "Nightly ETL batch job.",
        roles=(
            (DATA_PROJECT, "roles/bigquery.dataEditor"),
            (DATA_PROJECT, "roles/storage.objectAdmin"),
        ),
        last_authenticated_days=0,
        user_managed_key=True,
    ),
    SeededAccount(
        "old-chatbot-agent",
        AGENTS_PROJECT,
        "Old support chatbot",
        "Retired support chatbot. leash:agent=true leash:owner=bob@example.com",
        roles=((AGENTS_PROJECT, "roles/aiplatform.user"),),
        last_authenticated_days=RETIRED_DAYS,
        disabled=True,
    ),
)

# Bindings that are not the seeded accounts' own: people, groups, Google's service agent.
OTHER_BINDINGS: dict[str, tuple[tuple[str, str], ...]] = {
    f"organizations/{ORGANIZATION_NUMBER}": (
        ("roles/resourcemanager.organizationAdmin", "group:cloud-admins@example.com"),
        ("roles/iam.securityReviewer", "group:security@example.com"),
    ),
    f"folders/{FOLDER_NUMBER}": (
        ("roles/resourcemanager.folderViewer", "group:support-bots@example.com"),
    ),
    f"projects/{AGENTS_PROJECT}": (("roles/owner", "user:alice@example.com"),),
    f"projects/{DATA_PROJECT}": (("roles/owner", "user:carol@example.com"),),
    f"projects/{ML_PROJECT}": (
        ("roles/owner", "group:ml-platform@example.com"),
        ("roles/aiplatform.serviceAgent", f"serviceAccount:{VERTEX_SERVICE_AGENT}"),
    ),
}

AUDIT_BUCKETS_DENY = {
    "displayName": "Nobody deletes the audit buckets",
    "rules": [
        {
            "description": "Only security admins may delete buckets.",
            "denyRule": {
                "deniedPrincipals": ["principalSet://goog/public:all"],
                "exceptionPrincipals": ["principalSet://goog/group/security-admins@example.com"],
                "deniedPermissions": ["storage.googleapis.com/buckets.delete"],
            },
        }
    ],
}


def empty_world(state: GcpState) -> World:
    """Return an organisation with nothing in it."""
    now = state.now()
    return World(
        organization=Organization(
            ORGANIZATION_NUMBER, ORGANIZATION_DOMAIN, "C01demo42", now - timedelta(days=900)
        )
    )


def demo_world(state: GcpState) -> World:
    """Return the demo organisation, dated relative to the emulator's clock."""
    now = state.now()
    world = empty_world(state)
    organization = world.organization.name
    folder = Folder(FOLDER_NUMBER, organization, "agents", now - timedelta(days=700))
    world.folders[folder.name] = folder
    for seeded in PROJECTS:
        world.projects[seeded.project_id] = Project(
            project_id=seeded.project_id,
            number=seeded.number,
            parent=folder.name if seeded.in_folder else organization,
            display_name=seeded.project_id.replace("-", " ").title(),
            labels={"team": seeded.team, "env": "demo"},
            create_time=now - timedelta(days=600),
        )
    bindings: dict[str, list[JsonObject]] = {
        resource: [{"role": role, "members": [member]} for role, member in pairs]
        for resource, pairs in OTHER_BINDINGS.items()
    }
    for index, seeded_account in enumerate(ACCOUNTS, start=1):
        _add_account(world, seeded_account, index, now)
        for project_id, role in seeded_account.roles:
            member = f"serviceAccount:{seeded_account.email}"
            bindings[f"projects/{project_id}"].append({"role": role, "members": [member]})
    bindings[f"projects/{ML_PROJECT}"].append(
        {
            "role": "roles/bigquery.admin",
            "members": ["group:ml-platform@example.com"],
            "condition": BACKFILL_CONDITION,
        }
    )
    for resource, resource_bindings in bindings.items():
        conditional = any("condition" in binding for binding in resource_bindings)
        world.policies[resource] = write_policy(
            {"bindings": []},
            {"version": 3 if conditional else 1, "bindings": resource_bindings},
            update_mask=None,
            new_etag=state.next_etag(),
            account_exists=world.account_exists,
        )
    _add_recommendations(world, now)
    world.deny_policies[f"projects/{DATA_PROJECT}"] = {
        "protect-audit-buckets": _seeded_deny_policy(state, world, now)
    }
    return world


def _add_account(world: World, seeded: SeededAccount, index: int, now: datetime) -> None:
    account = ServiceAccount(
        project_id=seeded.project_id,
        account_id=seeded.account_id,
        unique_id=str(100000000000000000000 + index),
        display_name=seeded.display_name,
        description=seeded.description,
        disabled=seeded.disabled,
    )
    world.service_accounts[account.email] = account
    world.keys[account.email] = [system_managed_key(account.email, now)]
    if seeded.user_managed_key:
        key_id = hashlib.sha1(f"{account.email}/user".encode(), usedforsecurity=False).hexdigest()
        world.keys[account.email].append(
            ServiceAccountKey(key_id, True, now - timedelta(days=300), NEVER)
        )
    world.last_authentication[account.email] = now - timedelta(
        days=seeded.last_authenticated_days, hours=2
    )


def system_managed_key(email: str, now: datetime) -> ServiceAccountKey:
    """Return the Google-managed key every service account has."""
    key_id = hashlib.sha1(f"{email}/system".encode(), usedforsecurity=False).hexdigest()
    return ServiceAccountKey(key_id, False, now - timedelta(days=3), now + timedelta(days=11))


def _add_recommendations(world: World, now: datetime) -> None:
    triage, forecast = ACCOUNTS[0], ACCOUNTS[1]
    world.recommendations += [
        RoleRecommendation(
            project_id=AGENTS_PROJECT,
            member=f"serviceAccount:{triage.email}",
            role="roles/storage.admin",
            replacement_role="roles/storage.objectViewer",
            exercised=("storage.objects.get", "storage.objects.list"),
            inferred=(),
            total_permissions=65,
            refreshed_at=now - timedelta(hours=20),
        ),
        RoleRecommendation(
            project_id=DATA_PROJECT,
            member=f"serviceAccount:{forecast.email}",
            role="roles/bigquery.dataEditor",
            replacement_role=None,
            exercised=(),
            inferred=(),
            total_permissions=29,
            refreshed_at=now - timedelta(hours=20),
        ),
    ]


def _seeded_deny_policy(state: GcpState, world: World, now: datetime) -> JsonObject:
    number = world.projects[DATA_PROJECT].number
    at = timestamp(now - timedelta(days=30))
    return {
        "name": (
            "policies/cloudresourcemanager.googleapis.com%2Fprojects%2F"
            f"{number}/denypolicies/protect-audit-buckets"
        ),
        "uid": "5f0c2f5e-3d4b-4a8e-9b1f-6a7c8d9e0f11",
        "kind": "DenyPolicy",
        "etag": deny_etag(state),
        "createTime": at,
        "updateTime": at,
        **copy.deepcopy(AUDIT_BUCKETS_DENY),
    }
