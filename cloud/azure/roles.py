"""Azure role definitions: what each confers, wildcard matching of actions, and a small cache.

Azure actions are `Provider.Namespace/resourceType/.../verb`, matched case-insensitively, where
`*` stands for any run of characters (`/` included): `*/read`, `Microsoft.Authorization/*`,
`Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action`. A role allows an action
when one of its `actions` matches it and none of its `notActions` does.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from cloud.azure.clients import AzureClients
from cloud.azure.errors import is_not_found
from cloud.base import CloudError

ROLE_DEFINITION_SEGMENT = "/providers/microsoft.authorization/roledefinitions/"
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# `Microsoft.Storage/storageAccounts/read`, `*/read`, `*`: a namespace and a path, or a wildcard.
_ACTION = re.compile(r"\*|(?:\*|[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9*]+)+)(?:/[A-Za-z0-9_.*-]+)+")
CACHE_SECONDS = 300.0


def is_action(text: str) -> bool:
    """Say whether the text is shaped like an Azure action (not `iam:PassRole`, `iam.x.y`)."""
    return _ACTION.fullmatch(text) is not None


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    parts = (re.escape(part) for part in pattern.split("*"))
    return re.compile(".*".join(parts), re.IGNORECASE | re.DOTALL)


def matches(pattern: str, action: str) -> bool:
    """Say whether an action pattern covers `action` (whose own `*` are taken literally)."""
    return _pattern(pattern).fullmatch(action) is not None


def intersects(first: str, second: str) -> bool:
    """Say whether some action matches both patterns."""
    a, b = first.lower(), second.lower()

    @cache
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return meet(i + 1, j) or (j < len(b) and meet(i, j + 1))
        if j < len(b) and b[j] == "*":
            return meet(i, j + 1) or (i < len(a) and meet(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and meet(i + 1, j + 1)

    return meet(0, 0)


def is_read(pattern: str) -> bool:
    """Say whether a pattern names only reads, which the activity log never records."""
    return pattern.lower().endswith("/read")


def role_guid(role_definition_id: str) -> str:
    """Return the GUID at the end of a role definition id, lower-cased."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def is_role_definition_id(text: str) -> bool:
    """Say whether the text is a role definition id (`.../roleDefinitions/<guid>` or a GUID)."""
    if _GUID.fullmatch(text):
        return True
    lowered = text.lower()
    return ROLE_DEFINITION_SEGMENT in lowered and _GUID.fullmatch(role_guid(text)) is not None


@dataclass(frozen=True, slots=True)
class RoleDefinition:
    """One role: its id, name and the control- and data-plane actions it confers."""

    id: str
    name: str
    role_type: str = "BuiltInRole"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    @property
    def guid(self) -> str:
        return role_guid(self.id)

    def allows(self, action: str) -> bool:
        """Say whether the role allows one control-plane action."""
        return any(matches(p, action) for p in self.actions) and not any(
            matches(p, action) for p in self.not_actions
        )

    def confers(self, pattern: str) -> bool:
        """Say whether the role allows some action the pattern names (not all excluded)."""
        return any(intersects(p, pattern) for p in self.actions) and not any(
            matches(p, pattern) for p in self.not_actions
        )

    @classmethod
    def from_sdk(cls, message: Any) -> RoleDefinition:
        """Read an SDK RoleDefinition, folding its permission blocks together."""
        fields: dict[str, list[str]] = {
            "actions": [],
            "not_actions": [],
            "data_actions": [],
            "not_data_actions": [],
        }
        for permission in getattr(message, "permissions", None) or []:
            for key, values in fields.items():
                values += [str(v) for v in getattr(permission, key, None) or []]
        return cls(
            id=str(message.id),
            name=str(message.role_name or message.name),
            role_type=str(getattr(message, "role_type", None) or ""),
            **{key: tuple(dict.fromkeys(values)) for key, values in fields.items()},
        )


class RoleCatalog:
    """The role definitions visible in each subscription, read once per few minutes."""

    def __init__(self, clients: AzureClients, *, ttl: float = CACHE_SECONDS) -> None:
        self._clients = clients
        self._ttl = ttl
        self._lock = threading.Lock()
        self._listed: dict[str, tuple[float, dict[str, RoleDefinition]]] = {}
        self._extra: dict[str, RoleDefinition | None] = {}

    def roles(self, subscription_id: str) -> dict[str, RoleDefinition]:
        """Return the subscription's assignable roles by lower-cased GUID."""
        with self._lock:
            cached = self._listed.get(subscription_id)
            if cached is not None and time.monotonic() - cached[0] < self._ttl:
                return cached[1]
        scope = f"/subscriptions/{subscription_id}"
        client = self._clients.authorization(subscription_id)
        listed = self._clients.call(
            "roleDefinitions.list",
            f"subscription {subscription_id}",
            lambda: [RoleDefinition.from_sdk(m) for m in client.role_definitions.list(scope)],
        )
        found = {role.guid: role for role in listed}
        with self._lock:
            self._listed[subscription_id] = (time.monotonic(), found)
        return found

    def get(self, subscription_id: str, role_definition_id: str) -> RoleDefinition | None:
        """Return one role by id, asking Azure for roles defined elsewhere; None when gone."""
        found = self.roles(subscription_id).get(role_guid(role_definition_id))
        if found is not None:
            return found
        with self._lock:
            if role_definition_id in self._extra:
                return self._extra[role_definition_id]
        client = self._clients.authorization(subscription_id)
        try:
            message = self._clients.call(
                "roleDefinitions.getById",
                role_definition_id,
                lambda: client.role_definitions.get_by_id(role_definition_id),
            )
        except CloudError as error:
            if not is_not_found(error):
                raise
            message = None
        role = RoleDefinition.from_sdk(message) if message is not None else None
        with self._lock:
            self._extra[role_definition_id] = role
        return role

    def resolve(self, subscription_id: str, text: str) -> RoleDefinition | None:
        """Find a role by name (`Storage Blob Data Reader`) or id, case-insensitively."""
        roles = self.roles(subscription_id)
        if is_role_definition_id(text.strip()):
            text = text.strip()
            if _GUID.fullmatch(text):  # a bare GUID: look it up in this subscription
                text = f"/subscriptions/{subscription_id}{ROLE_DEFINITION_SEGMENT}{text}"
            return roles.get(role_guid(text)) or self.get(subscription_id, text)
        wanted = " ".join(text.split()).lower()  # any case, any run of spaces
        return next(
            (role for role in roles.values() if " ".join(role.name.split()).lower() == wanted),
            None,
        )

    def name_of(self, subscription_id: str, role_definition_id: str) -> str:
        """Return a role's name, or its GUID when it cannot be read."""
        role = self.get(subscription_id, role_definition_id)
        return role.name if role is not None else role_guid(role_definition_id)


def conferred(role: RoleDefinition, patterns: Iterable[str]) -> tuple[str, ...]:
    """Return which of the patterns the role confers, in their order."""
    return tuple(pattern for pattern in patterns if role.confers(pattern))
