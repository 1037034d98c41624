"""The emulator's world (tenant, subscriptions, directory, RBAC, PIM, activity) and its lock."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from cloud.sandbox.emulator_state import EmulatorState

JsonObject = dict[str, Any]

AUTHORIZATION = "/providers/Microsoft.Authorization"
_SUBSCRIPTION = re.compile(r"/subscriptions/(?P<id>[^/]+)", re.IGNORECASE)
_RESOURCE_GROUP = re.compile(
    r"/subscriptions/(?P<id>[^/]+)/resourceGroups/(?P<name>[^/]+)", re.IGNORECASE
)


class ArmError(Exception):
    """An error Azure Resource Manager would answer with: HTTP status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> JsonObject:
        """Return the JSON error body ARM sends."""
        return {"error": {"code": self.code, "message": self.message}}


class GraphError(ArmError):
    """An error Microsoft Graph would answer with (its body adds an innerError)."""

    def body(self) -> JsonObject:
        """Return the JSON error body Graph sends."""
        inner = {"date": timestamp(datetime.now(UTC)), "request-id": str(uuid.uuid4())}
        return {"error": {"code": self.code, "message": self.message, "innerError": inner}}


class ApiCall(NamedTuple):
    """One request the emulator received: method, path without the query, api-version."""

    method: str
    path: str
    api_version: str


@dataclass(slots=True)
class Subscription:
    subscription_id: str
    display_name: str
    pim_enabled: bool = True

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.subscription_id}"


@dataclass(slots=True)
class ResourceGroup:
    subscription_id: str
    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.name}"


@dataclass(frozen=True, slots=True)
class RoleDefinition:
    guid: str
    role_name: str
    description: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    role_type: str = "BuiltInRole"  # or "CustomRole"
    assignable_scopes: tuple[str, ...] = ("/",)


@dataclass(slots=True)
class RoleAssignment:
    name: str
    scope: str
    role_guid: str
    principal_id: str
    principal_type: str
    created_on: datetime
    description: str | None = None
    condition: str | None = None

    @property
    def id(self) -> str:
        return f"{self.scope}{AUTHORIZATION}/roleAssignments/{self.name}"


@dataclass(slots=True)
class ServicePrincipal:
    object_id: str
    app_id: str
    display_name: str
    tags: tuple[str, ...] = ()
    notes: str = ""
    kind: str = "Application"  # Graph's servicePrincipalType
    alternative_names: tuple[str, ...] = ()


@dataclass(slots=True)
class User:
    object_id: str
    display_name: str
    user_principal_name: str


@dataclass(slots=True)
class ManagedIdentity:
    subscription_id: str
    resource_group: str
    name: str
    location: str
    principal_id: str
    client_id: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{self.name}"
        )


@dataclass(slots=True)
class PimSchedule:
    """A time-bound active assignment made through PIM; an instance exists while it runs."""

    name: str  # the schedule's name is its request's name, as in PIM
    instance_name: str
    assignment_name: str  # the role assignment PIM keeps while the instance is active
    scope: str
    role_guid: str
    principal_id: str
    principal_type: str
    start: datetime
    end: datetime
    created_on: datetime

    def active(self, at: datetime) -> bool:
        """Say whether the schedule's window contains `at`."""
        return self.start <= at < self.end

    def assignment(self) -> RoleAssignment:
        """Return the role assignment PIM keeps in place while the instance is active."""
        return RoleAssignment(
            name=self.assignment_name,
            scope=self.scope,
            role_guid=self.role_guid,
            principal_id=self.principal_id,
            principal_type=self.principal_type,
            created_on=self.start,
        )


@dataclass(slots=True)
class PimRequest:
    name: str
    scope: str
    role_guid: str
    principal_id: str
    principal_type: str
    request_type: str
    status: str
    schedule_info: JsonObject
    justification: str | None
    created_on: datetime
    schedule_name: str | None
    instance_name: str | None


@dataclass(slots=True)
class ActivityEntry:
    subscription_id: str
    caller_id: str
    operation_name: str
    at: datetime
    resource_id: str
    event_data_id: str
    correlation_id: str


@dataclass(slots=True)
class World:
    """Everything the emulated services hold; replaced wholesale on reset."""

    tenant_id: str
    subscriptions: dict[str, Subscription] = field(default_factory=dict)  # by lower-case id
    resource_groups: dict[tuple[str, str], ResourceGroup] = field(default_factory=dict)
    role_definitions: dict[str, RoleDefinition] = field(default_factory=dict)  # by GUID
    role_assignments: dict[str, RoleAssignment] = field(default_factory=dict)  # by lower name
    service_principals: dict[str, ServicePrincipal] = field(default_factory=dict)  # lower oid
    users: dict[str, User] = field(default_factory=dict)  # by lower object id
    identities: dict[str, ManagedIdentity] = field(default_factory=dict)  # by lower ARM id
    pim_schedules: dict[str, PimSchedule] = field(default_factory=dict)  # by lower name
    pim_requests: dict[str, PimRequest] = field(default_factory=dict)  # by lower name
    activity: list[ActivityEntry] = field(default_factory=list)

    def subscription(self, subscription_id: str) -> Subscription | None:
        """Return the subscription with this id (any case)."""
        return self.subscriptions.get(subscription_id.lower())

    def resource_group(self, subscription_id: str, name: str) -> ResourceGroup | None:
        """Return a resource group by subscription id and name (any case)."""
        return self.resource_groups.get((subscription_id.lower(), name.lower()))

    def principal_type(self, object_id: str) -> str | None:
        """Return the ARM principalType of a directory object, or None if there is none."""
        if object_id.lower() in self.service_principals:
            return "ServicePrincipal"
        if object_id.lower() in self.users:
            return "User"
        return None

    def display_name(self, object_id: str) -> str:
        """Return a directory object's display name (empty when unknown)."""
        principal = self.service_principals.get(object_id.lower())
        if principal is not None:
            return principal.display_name
        user = self.users.get(object_id.lower())
        return user.display_name if user is not None else ""

    def effective_assignments(
        self, at: datetime
    ) -> list[tuple[RoleAssignment, PimSchedule | None]]:
        """Return the role assignments in force at `at`, each with the PIM schedule behind it."""
        plain: list[tuple[RoleAssignment, PimSchedule | None]] = [
            (assignment, None) for assignment in self.role_assignments.values()
        ]
        return plain + [
            (schedule.assignment(), schedule)
            for schedule in self.pim_schedules.values()
            if schedule.active(at)
        ]

    def role(self, role_definition_id: str) -> RoleDefinition | None:
        """Return the role definition a GUID or a full roleDefinitions id names."""
        return self.role_definitions.get(role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower())


WorldFactory = Callable[["AzureState"], World]


class AzureState(EmulatorState[World, ApiCall]):
    """The world, the clock and the call log, shared by the server thread and the test thread."""


def new_guid() -> str:
    """Return a fresh lower-case GUID, as Azure names its objects."""
    return str(uuid.uuid4())


def is_guid(text: str) -> bool:
    """Say whether `text` is a GUID."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def timestamp(at: datetime) -> str:
    """Format `at` as ISO 8601 in UTC with a Z, as ARM and Graph do."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (naive means UTC); ValueError when it is not one."""
    parsed = datetime.fromisoformat(text.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def clean_scope(scope: str) -> str:
    """Return a scope with single slashes, a leading one and no trailing one ("" is the root)."""
    parts = [part for part in scope.split("/") if part]
    return "/" + "/".join(parts) if parts else ""


def covers(outer: str, inner: str) -> bool:
    """Say whether scope `outer` is `inner` or one of its ancestors (case-insensitive)."""
    outer_key, inner_key = clean_scope(outer).lower(), clean_scope(inner).lower()
    return outer_key in ("", inner_key) or inner_key.startswith(outer_key + "/")


def same_scope(left: str, right: str) -> bool:
    """Say whether two scopes name the same thing (ARM ids are case-insensitive)."""
    return clean_scope(left).lower() == clean_scope(right).lower()


def subscription_of(scope: str) -> str | None:
    """Return the subscription id a scope lies in, or None at tenant level."""
    match = _SUBSCRIPTION.match(clean_scope(scope))
    return match["id"] if match else None


def check_scope(world: World, scope: str) -> None:
    """Raise the ARM error for a scope whose subscription or resource group does not exist."""
    subscription_id = subscription_of(scope)
    if subscription_id is None:
        return
    if world.subscription(subscription_id) is None:
        raise ArmError(
            404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found."
        )
    group = _RESOURCE_GROUP.match(clean_scope(scope))
    if group and world.resource_group(subscription_id, group["name"]) is None:
        raise ArmError(
            404, "ResourceGroupNotFound", f"Resource group '{group['name']}' could not be found."
        )


def role_definition_id(scope: str, guid: str) -> str:
    """Return a role definition's id as ARM shows it under `scope` (subscription-qualified)."""
    subscription_id = subscription_of(scope)
    prefix = f"/subscriptions/{subscription_id}" if subscription_id else ""
    return f"{prefix}{AUTHORIZATION}/roleDefinitions/{guid}"
