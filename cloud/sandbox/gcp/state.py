"""The emulator's world (organisation, projects, accounts, policies) and the lock that guards it."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from cloud.sandbox.emulator_state import EmulatorState

JsonObject = dict[str, Any]

SA_DOMAIN = "iam.gserviceaccount.com"


class Status(StrEnum):
    """The google.rpc status codes the emulator answers with."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    ABORTED = "ABORTED"
    INTERNAL = "INTERNAL"

    @property
    def http_code(self) -> int:
        return _HTTP_CODES[self]


_HTTP_CODES = {
    Status.INVALID_ARGUMENT: 400,
    Status.FAILED_PRECONDITION: 400,
    Status.PERMISSION_DENIED: 403,
    Status.NOT_FOUND: 404,
    Status.ALREADY_EXISTS: 409,
    Status.ABORTED: 409,
    Status.INTERNAL: 500,
}


class ApiError(Exception):
    """An error a Google API would answer with (HTTP code and google.rpc status)."""

    def __init__(
        self, status: Status, message: str, *, violations: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.violations = violations  # (field, description) of a google.rpc.BadRequest

    def body(self) -> JsonObject:
        """Return the JSON error body Google's REST APIs send."""
        error: JsonObject = {
            "code": self.status.http_code,
            "message": self.message,
            "status": self.status,
        }
        if self.violations:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": field, "description": description}
                        for field, description in self.violations
                    ],
                }
            ]
        return {"error": error}


class ApiCall(NamedTuple):
    """One call the emulator received: ("iam", "projects.serviceAccounts.get", "projects/p/...")."""

    service: str
    method: str
    resource: str


@dataclass(slots=True)
class Organization:
    number: str
    domain: str
    customer_id: str
    create_time: datetime

    @property
    def name(self) -> str:
        return f"organizations/{self.number}"


@dataclass(slots=True)
class Folder:
    number: str
    parent: str
    display_name: str
    create_time: datetime

    @property
    def name(self) -> str:
        return f"folders/{self.number}"


@dataclass(slots=True)
class Project:
    project_id: str
    number: str
    parent: str
    display_name: str
    labels: dict[str, str]
    create_time: datetime

    @property
    def name(self) -> str:
        return f"projects/{self.number}"


@dataclass(slots=True)
class ServiceAccount:
    project_id: str
    account_id: str
    unique_id: str
    display_name: str = ""
    description: str = ""
    disabled: bool = False

    @property
    def email(self) -> str:
        return f"{self.account_id}@{self.project_id}.{SA_DOMAIN}"

    @property
    def name(self) -> str:
        return f"projects/{self.project_id}/serviceAccounts/{self.email}"


@dataclass(slots=True)
class ServiceAccountKey:
    key_id: str
    user_managed: bool
    valid_after: datetime
    valid_before: datetime
    disabled: bool = False


@dataclass(slots=True)
class CustomRole:
    """A project's or organization's custom role (IAM admin `CreateRole`), by its full name."""

    name: str  # "projects/{project id}/roles/{id}" or "organizations/{number}/roles/{id}"
    title: str
    description: str
    permissions: tuple[str, ...]
    etag: str
    deleted: bool = False


@dataclass(slots=True)
class RoleRecommendation:
    """What the IAM recommender concluded about one member's role on one project."""

    project_id: str
    member: str
    role: str
    replacement_role: str | None
    exercised: tuple[str, ...]
    inferred: tuple[str, ...]
    total_permissions: int
    refreshed_at: datetime


@dataclass(slots=True)
class World:
    """Everything the emulated services hold; replaced wholesale on reset."""

    organization: Organization
    folders: dict[str, Folder] = field(default_factory=dict)  # by "folders/N"
    projects: dict[str, Project] = field(default_factory=dict)  # by project id
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)  # by email
    keys: dict[str, list[ServiceAccountKey]] = field(default_factory=dict)  # by email
    # Allow policies as the REST API shows them, by "projects/{id}", "folders/N", "organizations/N".
    policies: dict[str, JsonObject] = field(default_factory=dict)
    # Deny policies by attachment resource ("projects/{id}", ...) then policy id.
    deny_policies: dict[str, dict[str, JsonObject]] = field(default_factory=dict)
    # Finished long-running operations by name (deny-policy writes), for GET operations/{id}.
    operations: dict[str, JsonObject] = field(default_factory=dict)
    recommendations: list[RoleRecommendation] = field(default_factory=list)
    custom_roles: dict[str, CustomRole] = field(default_factory=dict)  # by full name
    # email -> last authentication; None records that it has not authenticated at all.
    last_authentication: dict[str, datetime | None] = field(default_factory=dict)

    def project(self, ref: str) -> Project | None:
        """Return the project whose id or number is `ref`."""
        if ref in self.projects:
            return self.projects[ref]
        return next((p for p in self.projects.values() if p.number == ref), None)

    def ancestors(self, project: Project) -> list[str]:
        """Return the project's resource name and its folders' and organisation's, nearest first."""
        chain = [f"projects/{project.project_id}"]
        parent = project.parent
        while parent:
            chain.append(parent)
            folder = self.folders.get(parent)
            parent = folder.parent if folder else ""
        return chain

    def account_exists(self, email: str) -> bool | None:
        """Say whether a service account exists; None when its project is not emulated."""
        project_id = email.split("@", 1)[-1].removesuffix(f".{SA_DOMAIN}")
        if project_id not in self.projects:
            return None
        return email in self.service_accounts

    def service_account(self, ref: str) -> ServiceAccount | None:
        """Return the account whose email or unique id is `ref`."""
        if ref in self.service_accounts:
            return self.service_accounts[ref]
        return next((a for a in self.service_accounts.values() if a.unique_id == ref), None)


WorldFactory = Callable[["GcpState"], World]


class GcpState(EmulatorState[World, ApiCall]):
    """The world, the clock and the call log, shared by the REST and gRPC servers under one lock."""

    def __init__(self, factory: WorldFactory) -> None:
        self.sets_without_etag = 0
        self.pending_conflicts = 0
        super().__init__(factory)

    def _forget(self) -> None:
        self.sets_without_etag = 0
        self.pending_conflicts = 0

    def next_etag(self) -> str:
        """Return a fresh allow-policy etag: 8 bytes, base64, as Resource Manager's look."""
        raw = (0x0706_0000_0000_0000 + self.sequence()).to_bytes(8, "big")
        return base64.b64encode(raw).decode()


def timestamp(at: datetime) -> str:
    """Format `at` as an RFC 3339 UTC timestamp, as Google's JSON does."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def page(
    items: list[Any], *, size: int | str | None, token: str | None, default: int, maximum: int
) -> tuple[list[Any], str]:
    """Return one page of `items` and the token of the next (empty at the end)."""
    try:
        limit = int(size) if size else default
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError as error:
        raise ApiError(Status.INVALID_ARGUMENT, "Invalid page size or page token.") from error
    limit = min(max(limit, 1), maximum)
    end = start + limit
    following = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
    return items[start:end], following
