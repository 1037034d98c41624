"""Find projects and their service accounts as `DiscoveredIdentity` values (blocking calls).

Each service account is addressed as `IdentityRef(provider="gcp", account=<project id>,
native_id=<e-mail>, name=<the e-mail's local part>, kind=SERVICE_ACCOUNT)`. Google-managed
service agents (`service-<project number>@gcp-sa-<service>.iam.gserviceaccount.com`, ...) are
not listed by the IAM API: they are found in the project's allow policy, named
`<local part>@<agent domain label>` (every agent of a project shares its local part), and
trusted by the service they act for. Neither API says when or by whom an account was created,
so `created_at`, `created_by` and `granted_by` stay empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from google.cloud import iam_admin_v1, resourcemanager_v3

from cloud.base import CloudError, DiscoveredIdentity, IdentityKind, IdentityRef
from cloud.gcp import bindings as policies
from cloud.gcp.bindings import AllowPolicy, member_of
from cloud.gcp.clients import GcpClients
from cloud.gcp.errors import is_not_found

PROVIDER = "gcp"
DISABLED_TAG = "leash:disabled"
KEYS_TAG = "leash:user-managed-keys"
SERVICE_ACCOUNT_MEMBER = "serviceAccount:"
_SERVICE_AGENT = re.compile(r"service-(\d+)@gcp-sa-([a-z0-9-]+)\.iam\.gserviceaccount\.com")
# Service agents outside `gcp-sa-*`: e-mail domain -> the service that acts as them.
_OTHER_AGENTS = {
    "compute-system.iam.gserviceaccount.com": "compute.googleapis.com",
    "container-engine-robot.iam.gserviceaccount.com": "container.googleapis.com",
    "gs-project-accounts.iam.gserviceaccount.com": "storage.googleapis.com",
    "serverless-robot-prod.iam.gserviceaccount.com": "run.googleapis.com",
    "dataflow-service-producer-prod.iam.gserviceaccount.com": "dataflow.googleapis.com",
    "cloudbuild.gserviceaccount.com": "cloudbuild.googleapis.com",
}
# `gcp-sa-<x>` agents whose service is not `<x>.googleapis.com`.
_AGENT_SERVICES = {
    "aiplatform-re": "aiplatform.googleapis.com",  # Vertex AI Agent Engine (reasoning engines)
    "aiplatform-cc": "aiplatform.googleapis.com",  # Vertex AI custom code
    "aiplatform-ft": "aiplatform.googleapis.com",  # Vertex AI tuning
}
# `key=value` in a description: a key of letters, digits and `_.:/-`, a value without spaces.
_PAIR = re.compile(r"(?<![\w.:/@=-])([A-Za-z][\w.:/-]*)=([^\s,;=][^\s,;]*)")


@dataclass(frozen=True, slots=True)
class Project:
    """A project to scan: its id, number and labels."""

    project_id: str
    number: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


def agent_service(email: str, *, project_number: str = "") -> str | None:
    """Return the service a Google-managed service agent acts for, else None.

    With `project_number`, only the agents of that project count.
    """
    local, _, domain = email.lower().partition("@")
    found = _SERVICE_AGENT.fullmatch(email.lower())
    if found is not None:
        if project_number and found.group(1) != project_number:
            return None
        agent = found.group(2)
        return _AGENT_SERVICES.get(agent, f"{agent}.googleapis.com")
    if domain in _OTHER_AGENTS:
        number = local.removeprefix("service-")
        if project_number and number != project_number:
            return None
        return _OTHER_AGENTS[domain]
    return None


def describe(identity: IdentityRef) -> str:
    """Name a service account and its project for messages."""
    return f"service account {identity.native_id} in project {identity.account}"


def description_tags(description: str) -> dict[str, str]:
    """Return the `key=value` pairs written in a service account's description."""
    return {
        key: value.rstrip(".)") for key, value in _PAIR.findall(description) if value.rstrip(".)")
    }


def list_projects(
    clients: GcpClients,
    *,
    projects: Sequence[str],
    parents: Sequence[str],
    failures: dict[str, str],
) -> list[Project]:
    """Return the configured projects, or the active ones under `parents` (folders included)."""
    if projects:
        found = [_get_project(clients, project_id, failures) for project_id in projects]
        return [project for project in found if project is not None]
    result: list[Project] = []
    pending = list(parents)
    seen: set[str] = set()
    while pending:
        parent = pending.pop(0)
        if parent in seen:
            continue
        seen.add(parent)
        try:
            listed, folders = _children(clients, parent)
        except CloudError as error:
            failures[parent] = str(error)
            continue
        result += [_project(project) for project in listed if _active(project)]
        pending += [str(folder.name) for folder in folders if _active(folder)]
    return sorted(result, key=lambda project: project.project_id)


def _children(
    clients: GcpClients, parent: str
) -> tuple[list[resourcemanager_v3.Project], list[resourcemanager_v3.Folder]]:
    """List the projects and folders directly under an organization or folder."""
    projects = clients.call(
        "projects.list", parent, lambda: list(clients.projects().list_projects(parent=parent))
    )
    folders = clients.call(
        "folders.list", parent, lambda: list(clients.folders().list_folders(parent=parent))
    )
    return projects, folders


def _active(item: resourcemanager_v3.Project | resourcemanager_v3.Folder) -> bool:
    return int(item.state) in (0, 1)  # unspecified or ACTIVE; not DELETE_REQUESTED


def _project(message: resourcemanager_v3.Project) -> Project:
    number = str(message.name).removeprefix("projects/")
    return Project(str(message.project_id), number, dict(message.labels))


def _get_project(clients: GcpClients, project_id: str, failures: dict[str, str]) -> Project | None:
    try:
        message = clients.call(
            "projects.get",
            f"project {project_id}",
            lambda: clients.projects().get_project(name=f"projects/{project_id}"),
        )
    except CloudError as error:
        failures[project_id] = str(error)
        return None
    if not _active(message):
        failures[project_id] = f"project {project_id} is not active (deletion requested)"
        return None
    return _project(message)


def scan_project(clients: GcpClients, project: Project) -> list[DiscoveredIdentity]:
    """List a project's service accounts and service agents, with tags and bound roles."""
    policy = policies.read(clients, project.project_id)
    accounts = clients.call(
        "serviceAccounts.list",
        f"service accounts of project {project.project_id}",
        lambda: list(
            clients.iam().list_service_accounts(request={"name": f"projects/{project.project_id}"})
        ),
    )
    found: list[DiscoveredIdentity] = []
    listed: set[str] = set()
    for account in accounts:
        email = str(account.email)
        listed.add(email.lower())
        keys = _user_managed_keys(clients, project.project_id, email)
        if keys is None:  # deleted while we were listing
            continue
        tags = {**project.labels, **description_tags(str(account.description))}
        if account.disabled:
            tags[DISABLED_TAG] = "true"
        if keys:
            tags[KEYS_TAG] = str(keys)
        found.append(_identity(project, policy, email, email.partition("@")[0], tags, ()))
    for email in _bound_service_accounts(policy):
        service = agent_service(email, project_number=project.number)
        if service is None or email.lower() in listed:
            continue
        local, _, domain = email.partition("@")
        name = f"{local}@{domain.split('.', 1)[0]}"
        found.append(_identity(project, policy, email, name, dict(project.labels), (service,)))
    return found


def _identity(
    project: Project,
    policy: AllowPolicy,
    email: str,
    name: str,
    tags: dict[str, str],
    trust: tuple[str, ...],
) -> DiscoveredIdentity:
    bound = policy.of(member_of(email))
    return DiscoveredIdentity(
        ref=IdentityRef(
            provider=PROVIDER,
            account=project.project_id,
            native_id=email,
            name=name,
            kind=IdentityKind.SERVICE_ACCOUNT,
        ),
        tags=tags,
        trust_principals=trust,
        attached_policies=tuple(sorted({b.role for b in bound if b.leash_grant is None})),
        inline_policies=tuple(sorted({t for b in bound if (t := b.leash_grant) is not None})),
    )


def _bound_service_accounts(policy: AllowPolicy) -> list[str]:
    members = (member for binding in policy.bindings for member in binding.members)
    emails = (
        m.removeprefix(SERVICE_ACCOUNT_MEMBER)
        for m in members
        if m.startswith(SERVICE_ACCOUNT_MEMBER)
    )
    return list(dict.fromkeys(emails))


def _user_managed_keys(clients: GcpClients, project_id: str, email: str) -> int | None:
    """Count the account's user-managed keys (long-lived credentials); None when it is gone."""
    user_managed = iam_admin_v1.ListServiceAccountKeysRequest.KeyType.USER_MANAGED
    try:
        response = clients.call(
            "serviceAccountKeys.list",
            f"service account {email}",
            lambda: clients.iam().list_service_account_keys(
                request={
                    "name": f"projects/{project_id}/serviceAccounts/{email}",
                    "key_types": [user_managed],
                }
            ),
        )
    except CloudError as error:
        if is_not_found(error):
            return None
        raise
    return sum(1 for key in response.keys if int(key.key_type) in (0, int(user_managed)))
