"""Role assignments of one principal: typed values, Leash's markers, list, create and delete.

Azure names a role assignment by a GUID, so Leash marks its own in the `description`:
`leash-grant-<grant id> expires <UTC time>`. The GUID of a grant's assignment is derived from
the grant id, role and scope (uuid5), so applying a grant twice writes the same assignment.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

from cloud.azure.clients import AzureClients
from cloud.azure.errors import is_not_found
from cloud.azure.roles import role_guid
from cloud.base import GRANT_ARTEFACT_PREFIX, CloudError, grant_artefact_name

# Fixed namespace: the same grant, role and scope always give the same assignment GUID.
LEASH_NAMESPACE = uuid.UUID("6c2f1a9e-3b7d-5e41-9a0c-4c65617368a1")
_MARKER = re.compile(rf"(?<![\w-]){re.escape(GRANT_ARTEFACT_PREFIX)}([A-Za-z0-9][\w.:-]*)")
SERVICE_PRINCIPAL = "ServicePrincipal"


def timestamp(moment: datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 with seconds precision."""
    if moment.tzinfo is None:
        raise CloudError("Azure times must be timezone-aware", code="BadInput")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def marker(grant_id: str, expires_at: datetime) -> str:
    """Write the description that marks a grant's assignment or PIM request."""
    return f"{grant_artefact_name(grant_id)} expires {timestamp(expires_at)}"


def grant_of(text: str | None) -> str | None:
    """Return the grant id a description or justification carries, else None."""
    found = _MARKER.search(text or "")
    return found.group(1) if found else None


def grant_guid(*parts: str) -> str:
    """Derive a stable GUID for a grant's assignment or request from its parts."""
    return str(uuid.uuid5(LEASH_NAMESPACE, "\n".join(part.lower() for part in parts)))


def subscription_scope(subscription_id: str) -> str:
    """Return the scope of a whole subscription."""
    return f"/subscriptions/{subscription_id}"


def within(subscription_id: str, scope: str) -> bool:
    """Say whether a scope is the subscription or below it."""
    root = subscription_scope(subscription_id).lower()
    lowered = scope.rstrip("/").lower()
    return lowered == root or lowered.startswith(f"{root}/")


@dataclass(frozen=True, slots=True)
class Assignment:
    """One role assignment as Azure holds it, enough to recreate it exactly."""

    id: str
    name: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str = SERVICE_PRINCIPAL
    description: str = ""
    condition: str | None = None
    condition_version: str | None = None
    created_by: str | None = None
    created_on: datetime | None = None

    @property
    def grant_id(self) -> str | None:
        """Return the Leash grant this assignment carries, else None."""
        return grant_of(self.description)

    @property
    def role_guid(self) -> str:
        return role_guid(self.role_definition_id)

    def key(self) -> tuple[str, str]:
        """Return what makes two assignments of one principal the same: role and scope."""
        return self.role_guid, self.scope.rstrip("/").lower()

    def as_json(self) -> dict[str, Any]:
        """Return the assignment as plain JSON (what snapshots store)."""
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "role_definition_id": self.role_definition_id,
            "principal_id": self.principal_id,
            "principal_type": self.principal_type,
            "description": self.description,
            "condition": self.condition,
            "condition_version": self.condition_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Assignment:
        """Read an assignment back from `as_json`; CloudError when malformed."""
        text = ("id", "name", "scope", "role_definition_id", "principal_id", "principal_type")
        if not all(isinstance(data.get(key), str) and data.get(key) for key in text):
            raise CloudError(f"not an Azure role assignment: {dict(data)!r}", code="BadSnapshot")
        optional = ("condition", "condition_version")
        if not all(data.get(key) is None or isinstance(data.get(key), str) for key in optional):
            raise CloudError(f"not an Azure role assignment: {dict(data)!r}", code="BadSnapshot")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            scope=str(data["scope"]),
            role_definition_id=str(data["role_definition_id"]),
            principal_id=str(data["principal_id"]),
            principal_type=str(data["principal_type"]),
            description=str(data.get("description") or ""),
            condition=data.get("condition"),
            condition_version=data.get("condition_version"),
        )

    @classmethod
    def from_sdk(cls, message: Any) -> Assignment:
        """Read an SDK RoleAssignment."""
        created = getattr(message, "created_on", None)
        return cls(
            id=str(message.id),
            name=str(message.name),
            scope=str(message.scope or ""),
            role_definition_id=str(message.role_definition_id),
            principal_id=str(message.principal_id),
            principal_type=str(message.principal_type or SERVICE_PRINCIPAL),
            description=str(message.description or ""),
            condition=message.condition or None,
            condition_version=message.condition_version or None,
            created_by=getattr(message, "created_by", None) or None,
            created_on=created if isinstance(created, datetime) else None,
        )


def list_assignments(
    clients: AzureClients, subscription_id: str, *, principal_id: str | None = None
) -> list[Assignment]:
    """List the subscription's role assignments (at, above and below it), of one principal."""
    client = clients.authorization(subscription_id)
    query = f"principalId eq '{principal_id}'" if principal_id else None
    listed = clients.call(
        "roleAssignments.listForSubscription",
        f"subscription {subscription_id}",
        lambda: [
            Assignment.from_sdk(m)
            for m in client.role_assignments.list_for_subscription(filter=query)
        ],
    )
    if principal_id is None:
        return listed
    return [a for a in listed if a.principal_id.lower() == principal_id.lower()]


def create(clients: AzureClients, subscription_id: str, assignment: Assignment) -> Assignment:
    """Write a role assignment under its own GUID at its scope; return what Azure holds."""
    client = clients.authorization(subscription_id)
    parameters = RoleAssignmentCreateParameters(
        role_definition_id=assignment.role_definition_id,
        principal_id=assignment.principal_id,
        principal_type=assignment.principal_type,
        description=assignment.description or None,
        condition=assignment.condition,
        condition_version=assignment.condition_version,
    )
    message = clients.call(
        "roleAssignments.create",
        f"{assignment.scope} (assignment {assignment.name})",
        lambda: client.role_assignments.create(assignment.scope, assignment.name, parameters),
    )
    return Assignment.from_sdk(message)


def delete(clients: AzureClients, subscription_id: str, assignment: Assignment) -> bool:
    """Delete a role assignment; False when it was already gone (404, or 204 without a body)."""
    client = clients.authorization(subscription_id)
    try:
        deleted = clients.call(
            "roleAssignments.delete",
            f"{assignment.scope} (assignment {assignment.name})",
            lambda: client.role_assignments.delete(assignment.scope, assignment.name),
        )
    except CloudError as error:
        if is_not_found(error):
            return False
        raise
    return deleted is not None


def planned(
    *,
    principal_id: str,
    role_definition_id: str,
    scope: str,
    name: str,
    description: str = "",
    principal_type: str = SERVICE_PRINCIPAL,
) -> Assignment:
    """Build an assignment to write (its id follows from scope and name)."""
    return Assignment(
        id=f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}",
        name=name,
        scope=scope.rstrip("/"),
        role_definition_id=role_definition_id,
        principal_id=principal_id,
        principal_type=principal_type,
        description=description,
    )
