"""One world per cloud for the provider contract suite: what to act on, and the cloud read back.

A world names the identity the contract tests act on and the provider-specific facts they need
(what to grant, what to deny, what the guardrail guards), and reads the cloud's own state
directly (boto3 IAM on the AWS sandbox, the GCP and Azure emulators' helpers and APIs), never
through the provider under test. `allows` and `denies` judge the cloud's state the way the cloud
would: a small IAM evaluator on AWS, the emulator's effective roles and deny policies on GCP,
the role assignments in force and their role definitions on Azure (which has no deny).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol

from cloud.aws import AwsProvider
from cloud.base import (
    CloudProvider,
    IdentityKind,
    IdentityRef,
    grant_artefact_name,
)
from cloud.gcp import GcpProvider
from cloud.sandbox import Sandbox, ServiceUse
from cloud.sandbox.azure import AzureEmulator
from cloud.sandbox.azure.roles import BUILT_IN_ROLES
from cloud.sandbox.azure.state import RoleDefinition
from cloud.sandbox.gcp import GcpEmulator
from tests.cloud.aws_world import World as AwsSandbox
from tests.cloud.aws_world import attached, inline_policies, leash_policies, managed_document
from tests.cloud.aws_world import state as aws_state
from tests.cloud.azure_fixtures import AzureClients
from tests.cloud.azure_world import SUPPORT_GROUP as AZURE_SUPPORT_GROUP
from tests.cloud.azure_world import TRIAGE as AZURE_TRIAGE
from tests.cloud.azure_world import World as AzureSandbox
from tests.cloud.conftest import FAST_LOOKUPS
from tests.cloud.gcp_world import TRIAGE
from tests.cloud.gcp_world import World as GcpSandbox

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


class ContractWorld(Protocol):
    """What the contract tests need of one cloud; every check reads the cloud directly."""

    provider: CloudProvider
    identity: IdentityRef
    attached: tuple[str, ...]  # what discovery must list as the identity's attached policies
    grantable: tuple[str, ...]  # what a grant gives that the identity does not hold yet
    deny_actions: tuple[str, ...]  # the persistence actions a grant withholds
    guarded: tuple[str, ...]  # the guardrail's catalogue, in this cloud's terms
    unused: str  # what `usage` reports as not used once `set_usage` ran
    restricted: str  # how a restriction plan of `unused` names what it takes away
    unused_grant: str  # what the identity holds that restricting `unused` must take away
    kept: str  # what the identity holds and uses, which no restriction here may touch

    async def set_usage(self) -> None:
        """Record the identity's use so that `unused` is the one thing it never used."""
        ...

    async def holds_grant(self, grant_id: str) -> bool:
        """Say whether the cloud holds any part of the grant's artefact."""
        ...

    async def grant_copies(self, grant_id: str) -> int:
        """Count the copies of the grant the cloud holds (per granted role or policy)."""
        ...

    async def allows(self, action: str, at: datetime | None = None) -> bool:
        """Say whether the cloud lets the identity use `action` at `at` (default now)."""
        ...

    async def denies(self, action: str) -> bool:
        """Say whether the cloud explicitly denies `action` to the identity now."""
        ...

    async def is_quarantined(self) -> bool:
        """Say whether the identity can do nothing at all."""
        ...

    async def state(self) -> Any:
        """Return everything an undo (unrestrict, release) must give back exactly."""
        ...


# AWS


AWS_AGENT = "data-pipeline-agent"  # ml-prod: glue:StartJobRun, iam:PassRole, managed s3:*


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, str | dict) else list(value)


def _aws_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _condition_holds(condition: Mapping[str, Any], at: datetime) -> bool:
    """Evaluate the few condition operators Leash writes, for a session issued at `at`."""
    for operator, tests in condition.items():
        for key, value in tests.items():
            if operator in ("DateLessThan", "DateGreaterThan") and key in (
                "aws:CurrentTime",
                "aws:TokenIssueTime",
            ):
                moment = _aws_time(str(value))
                holds = at < moment if operator == "DateLessThan" else at > moment
            elif operator == "ForAnyValue:StringLike" and key == "aws:TagKeys":
                holds = False  # the request carries no tag keys
            else:
                raise AssertionError(f"the contract world cannot evaluate {operator} {key}")
            if not holds:
                return False
    return True


def _matches(statement: Mapping[str, Any], action: str, at: datetime) -> bool:
    if "NotAction" in statement:
        raise AssertionError(f"the contract world cannot evaluate NotAction: {statement}")
    patterns = _listed(statement.get("Action", []))
    if not any(fnmatchcase(action.lower(), str(p).lower()) for p in patterns):
        return False
    return _condition_holds(statement.get("Condition", {}), at)


@dataclass
class AwsWorld:
    """A seeded agent of the sandbox's member account ml-prod, judged by its IAM policies."""

    sandbox: Sandbox
    provider: CloudProvider = field(init=False)
    identity: IdentityRef = field(init=False)
    attached: tuple[str, ...] = field(init=False)
    grantable: tuple[str, ...] = ("dynamodb:GetItem",)
    deny_actions: tuple[str, ...] = ("iam:CreateAccessKey",)
    guarded: tuple[str, ...] = ("iam:CreateAccessKey", "iam:PassRole", "iam:PutRolePolicy")
    unused: str = "glue:*"  # Access Advisor tracks glue per service
    restricted: str = "glue:*"
    unused_grant: str = "glue:StartJobRun"
    kept: str = "s3:GetObject"
    # Every action the agent holds: quarantined, it may use none of them.
    probes: tuple[str, ...] = ("glue:StartJobRun", "iam:PassRole", "s3:GetObject", "s3:PutObject")
    _iam: IAMClient = field(init=False)

    def __post_init__(self) -> None:
        seeded = self.sandbox.identity(AWS_AGENT)
        self.provider = AwsProvider(
            session_factory=self.sandbox.session,
            endpoint_url=self.sandbox.endpoint_url,
            max_attempts=1,
            lookup_rate=FAST_LOOKUPS,
            usage_poll_interval=0.01,
            usage_max_wait=10.0,
        )
        self.identity = IdentityRef(
            "aws", seeded.account.id, seeded.arn, seeded.name, IdentityKind.ROLE
        )
        self.attached = (f"arn:aws:iam::{seeded.account.id}:policy/{AWS_AGENT}-full-access",)
        self._iam = AwsSandbox(self.sandbox).iam(seeded.account.id)

    async def set_usage(self) -> None:
        """The agent used s3 yesterday (three tracked actions) and glue never."""
        when = datetime.now(UTC) - timedelta(days=1)
        actions = ("s3:GetObject", "s3:PutObject", "s3:GetBucketLocation")
        use = ServiceUse("s3", when, dict.fromkeys(actions, when))
        self.sandbox.activity.record_use(self.identity.native_id, use)

    async def holds_grant(self, grant_id: str) -> bool:
        return grant_artefact_name(grant_id) in await self._policy_names()

    async def grant_copies(self, grant_id: str) -> int:
        return (await self._policy_names()).count(grant_artefact_name(grant_id))

    async def allows(self, action: str, at: datetime | None = None) -> bool:
        moment = at or datetime.now(UTC)
        statements = await self._statements()
        denied = any(s["Effect"] == "Deny" and _matches(s, action, moment) for s in statements)
        allowed = any(s["Effect"] == "Allow" and _matches(s, action, moment) for s in statements)
        return allowed and not denied

    async def denies(self, action: str) -> bool:
        now = datetime.now(UTC)
        return any(
            s["Effect"] == "Deny" and _matches(s, action, now) for s in await self._statements()
        )

    async def is_quarantined(self) -> bool:
        return all([await self.denies(action) for action in (*self.probes, "ec2:RunInstances")])

    async def state(self) -> Any:
        def read() -> Any:
            return {
                **aws_state(self._iam, self.identity),
                "leash_managed": leash_policies(self._iam, self.identity),
            }

        return await asyncio.to_thread(read)

    async def _policy_names(self) -> list[str]:
        name = self.identity.name
        found = await asyncio.to_thread(lambda: self._iam.list_role_policies(RoleName=name))
        return list(found["PolicyNames"])

    async def _statements(self) -> list[dict[str, Any]]:
        def read() -> list[Any]:
            documents = list(inline_policies(self._iam, self.identity).values())
            documents += [
                managed_document(self._iam, arn) for arn in attached(self._iam, self.identity)
            ]
            return documents

        documents = await asyncio.to_thread(read)
        return [
            statement
            for document in documents
            for statement in _listed(
                (json.loads(document) if isinstance(document, str) else document)["Statement"]
            )
        ]


# GCP

STORAGE_ADMIN = "roles/storage.admin"
OBJECT_VIEWER = "roles/storage.objectViewer"
LOG_WRITER = "roles/logging.logWriter"
VERTEX_USER = "roles/aiplatform.user"
# What the provider is told these roles hold (the emulator serves no roles.get).
ROLE_PERMISSIONS = {
    STORAGE_ADMIN: (
        "storage.buckets.create",
        "storage.buckets.delete",
        "storage.objects.create",
        "storage.objects.delete",
        "storage.objects.get",
        "storage.objects.list",
    ),
    OBJECT_VIEWER: ("storage.objects.get", "storage.objects.list"),
}
# Permissions as IAM deny rules spell them.
DENY_SPELLING = {
    "iam.serviceAccountKeys.create": "iam.googleapis.com/serviceAccountKeys.create",
    "iam.serviceAccounts.actAs": "iam.googleapis.com/serviceAccounts.actAs",
    "iam.serviceAccounts.getAccessToken": "iam.googleapis.com/serviceAccounts.getAccessToken",
}


@dataclass
class GcpWorld:
    """The seeded support-triage-gcp-agent (leash-demo-agents, in a folder) on the emulator."""

    emulator: GcpEmulator
    provider: CloudProvider = field(init=False)
    identity: IdentityRef = field(init=False)
    attached: tuple[str, ...] = (VERTEX_USER, LOG_WRITER, STORAGE_ADMIN)
    grantable: tuple[str, ...] = (OBJECT_VIEWER,)
    deny_actions: tuple[str, ...] = ("iam.serviceAccountKeys.create",)
    guarded: tuple[str, ...] = (
        "iam.serviceAccountKeys.create",
        "iam.serviceAccounts.actAs",
        "iam.serviceAccounts.getAccessToken",
    )
    unused: str = LOG_WRITER  # the recommender will say: remove it
    restricted: str = LOG_WRITER
    unused_grant: str = LOG_WRITER
    kept: str = VERTEX_USER
    _world: GcpSandbox = field(init=False)

    def __post_init__(self) -> None:
        self._world = GcpSandbox(self.emulator)
        self.provider = GcpProvider(
            organization=self.emulator.organization,
            rest_endpoint=self.emulator.rest_endpoint,
            grpc_target=self.emulator.grpc_target,
            backoff=0.01,
            role_permissions=ROLE_PERMISSIONS,
        )
        self.identity = self._world.ref(TRIAGE)

    @property
    def _member(self) -> str:
        return f"serviceAccount:{self.identity.native_id}"

    @property
    def _principal(self) -> str:
        return (
            f"principal://iam.googleapis.com/projects/-/serviceAccounts/{self.identity.native_id}"
        )

    async def set_usage(self) -> None:
        """The recommender says the agent never wrote a log: remove roles/logging.logWriter."""
        self.emulator.set_recommendation(self.identity.account, self._member, LOG_WRITER)

    async def holds_grant(self, grant_id: str) -> bool:
        title = grant_artefact_name(grant_id)
        return bool(self._world.titled(self.identity, title)) or title in self._rules()

    async def grant_copies(self, grant_id: str) -> int:
        titled = self._world.titled(self.identity, grant_artefact_name(grant_id))
        roles = [binding["role"] for binding in titled]
        return max((roles.count(role) for role in roles), default=0)

    async def allows(self, action: str, at: datetime | None = None) -> bool:
        if self.emulator.service_account(self.identity.native_id)["disabled"]:
            return False  # a disabled account cannot authenticate: it can do nothing
        return action in self._world.roles(self.identity, at)

    async def denies(self, action: str) -> bool:
        spelled = DENY_SPELLING[action]
        return any(spelled in permissions for permissions in self._rules().values())

    async def is_quarantined(self) -> bool:
        return bool(self.emulator.service_account(self.identity.native_id)["disabled"])

    async def state(self) -> Any:
        return {
            "account": self.emulator.service_account(self.identity.native_id),
            "bindings": sorted(
                json.dumps(binding, sort_keys=True)
                for binding in self._world.bindings(self.identity)
            ),
            "deny": {name: sorted(permissions) for name, permissions in self._rules().items()},
        }

    def _rules(self) -> dict[str, set[str]]:
        """Return, per deny policy of the project naming the account, what it denies it."""
        found: dict[str, set[str]] = {}
        for policy in self.emulator.deny_policies(self.identity.account):
            for rule in policy.get("rules", []):
                deny = rule.get("denyRule", {})
                if (
                    self._principal in deny.get("deniedPrincipals", [])
                    and self._principal not in deny.get("exceptionPrincipals", [])
                    and not deny.get("denialCondition")
                ):
                    name = str(policy["name"]).rsplit("/", 1)[-1]
                    found.setdefault(name, set()).update(deny.get("deniedPermissions", []))
        return found


# Azure

BLOB_READER = "Storage Blob Data Reader"
RBAC_ADMIN = "Role Based Access Control Administrator"  # roleAssignments write and delete
ACCESS_ADMIN = "User Access Administrator"  # Microsoft.Authorization/*
ASSIGN_ROLES = "Microsoft.Authorization/roleAssignments/write"
DEFINE_ROLES = "Microsoft.Authorization/roleDefinitions/write"
DEPLOY = "Microsoft.Resources/deployments/write"
AZURE_FORECAST_GROUP = AZURE_SUPPORT_GROUP.replace("rg-support-bots", "rg-forecast")
# The emulator's role definitions (it serves the built-in roles), by GUID and by name.
AZURE_ROLES = {role.guid: role for role in BUILT_IN_ROLES}
AZURE_ROLE_NAMES = {role.role_name.lower() for role in BUILT_IN_ROLES}
# The assignment a role assignment written in the activity log stands for (any GUID will do).
LOGGED_ASSIGNMENT = "0f1e2d3c-4b5a-4697-8877-665544332211"


def _azure_matches(patterns: tuple[str, ...], action: str) -> bool:
    """Match an action against Azure's (case-insensitive, `*` wildcard) action patterns."""
    return any(fnmatchcase(action.lower(), pattern.lower()) for pattern in patterns)


def _azure_permits(role: RoleDefinition, action: str) -> bool:
    """Say whether a role definition allows an action or data action (`not*` subtracted)."""
    return (
        _azure_matches(role.actions, action) and not _azure_matches(role.not_actions, action)
    ) or (
        _azure_matches(role.data_actions, action)
        and not _azure_matches(role.not_data_actions, action)
    )


def _marks(text: str | None, artefact: str) -> bool:
    """Say whether a description or justification carries the grant's artefact name."""
    return artefact in (text or "").split()


def _role_guid(role_definition_id: str | None) -> str:
    return str(role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower()


@dataclass
class AzureWorld:
    """The seeded support-triage-az-agent in leash-demo-agents (PIM on), on the Azure emulator.

    Besides its seeded Contributor on rg-support-bots the world gives it Role Based Access
    Control Administrator there too (it assigns roles, as `set_usage` logs) and User Access
    Administrator on rg-forecast (never used): both confer guarded role-assignment writes, only
    the latter role-definition writes. Azure has no deny a customer can write, so nothing here is
    ever denied: a grant's deny actions are not enforced (`deny_actions` is empty) and the
    guardrail takes privileged role assignments away instead.
    """

    emulator: AzureEmulator
    provider: CloudProvider = field(init=False)
    identity: IdentityRef = field(init=False)
    attached: tuple[str, ...] = (
        f"Contributor @ {AZURE_SUPPORT_GROUP}",
        f"{RBAC_ADMIN} @ {AZURE_SUPPORT_GROUP}",
        f"{ACCESS_ADMIN} @ {AZURE_FORECAST_GROUP}",
    )
    grantable: tuple[str, ...] = (BLOB_READER,)  # Azure grants roles
    deny_actions: tuple[str, ...] = ()
    guarded: tuple[str, ...] = (ASSIGN_ROLES, DEFINE_ROLES)
    unused: str = ACCESS_ADMIN  # usage names roles
    restricted: str = f"{ACCESS_ADMIN} @ {AZURE_FORECAST_GROUP}"  # a plan names assignments
    unused_grant: str = ACCESS_ADMIN
    kept: str = DEPLOY  # through its Contributor
    _world: AzureSandbox = field(init=False)
    _clients: AzureClients = field(init=False)

    def __post_init__(self) -> None:
        self._world = AzureSandbox(self.emulator)
        self.provider = self._world.provider()
        self.identity = self._world.ref(AZURE_TRIAGE)
        self._world.assign(self.identity, RBAC_ADMIN, AZURE_SUPPORT_GROUP)
        self._world.assign(self.identity, ACCESS_ADMIN, AZURE_FORECAST_GROUP)
        self._clients = AzureClients.connect(self.emulator)

    @property
    def _scope(self) -> str:
        return f"/subscriptions/{self.identity.account}"

    @property
    def _who(self) -> str:
        return f"principalId eq '{self.identity.native_id}'"

    async def set_usage(self) -> None:
        """Yesterday it deployed and assigned a role in rg-support-bots; rg-forecast: never."""
        when = datetime.now(UTC) - timedelta(days=1)
        for operation, resource in (
            (DEPLOY, "Microsoft.Resources/deployments/triage-contract"),
            (ASSIGN_ROLES, f"Microsoft.Authorization/roleAssignments/{LOGGED_ASSIGNMENT}"),
        ):
            self.emulator.add_activity(
                self.identity.account,
                self.identity.native_id,
                operation,
                when,
                resource_id=f"{AZURE_SUPPORT_GROUP}/providers/{resource}",
            )

    async def holds_grant(self, grant_id: str) -> bool:
        return bool(await asyncio.to_thread(self._grant_keys, grant_id))

    async def grant_copies(self, grant_id: str) -> int:
        keys = set(await asyncio.to_thread(self._grant_keys, grant_id))
        held = [(_role_guid(a["roleDefinitionId"]), a["scope"].lower()) for a in self._held()]
        return max((held.count(key) for key in keys), default=0)

    async def allows(self, action: str, at: datetime | None = None) -> bool:
        """A role is allowed when it is assigned at `at`; an action when an assigned role allows it.

        Scopes are not judged: an action is allowed when the identity may use it anywhere.
        """
        held = self._held(at)
        if action.lower() in AZURE_ROLE_NAMES:
            return any(a["roleName"].lower() == action.lower() for a in held)
        return any(
            _azure_permits(AZURE_ROLES[_role_guid(a["roleDefinitionId"])], action) for a in held
        )

    async def denies(self, action: str) -> bool:
        """Azure has no deny a customer can write: nothing is ever explicitly denied."""
        return False

    async def is_quarantined(self) -> bool:
        return not self._held()

    async def state(self) -> Any:
        """Every assignment in force (PIM's with their end), with description and condition."""
        written = {
            str(a.name).lower(): {"description": a.description, "condition": a.condition}
            for a in await asyncio.to_thread(self._arm_assignments)
        }
        return sorted(
            json.dumps({**a, **written.get(a["name"].lower(), {})}, sort_keys=True)
            for a in self._held()
        )

    def _held(self, at: datetime | None = None) -> list[dict[str, Any]]:
        """Return the identity's assignments in force at `at` in, or above, its subscription."""
        if at is not None:
            self.emulator.set_now(at)
        try:
            found = self.emulator.role_assignments()
        finally:
            if at is not None:
                self.emulator.set_now(None)
        root = self._scope.lower()
        return [
            a
            for a in found
            if a["principalId"].lower() == self.identity.native_id.lower()
            and (
                (scope := a["scope"].lower().rstrip("/")) in ("", root)
                or root.startswith(f"{scope}/")
                or scope.startswith(f"{root}/")
            )
        ]

    def _arm_assignments(self) -> list[Any]:
        client = self._clients.authorization(self.identity.account)
        return list(client.role_assignments.list_for_scope(self._scope, filter=self._who))

    def _grant_keys(self, grant_id: str) -> list[tuple[str, str]]:
        """Return the (role GUID, scope) of each live assignment or PIM schedule of the grant."""
        artefact = grant_artefact_name(grant_id)
        client = self._clients.authorization(self.identity.account)
        keys = [
            (_role_guid(a.role_definition_id), str(a.scope).lower())
            for a in self._arm_assignments()
            if _marks(a.description, artefact)
        ]
        requests = {
            str(request.name).lower()
            for request in client.role_assignment_schedule_requests.list_for_scope(
                self._scope, filter=self._who
            )
            if str(request.request_type).lower() == "adminassign"
            and _marks(request.justification, artefact)
        }
        keys += [
            (_role_guid(schedule.role_definition_id), str(schedule.scope).lower())
            for schedule in client.role_assignment_schedules.list_for_scope(
                self._scope, filter=self._who
            )  # only schedules that have not ended are listed
            if _role_guid(schedule.role_assignment_schedule_request_id) in requests
        ]
        return keys
