"""Azure's part of the privileged catalogue: built-in roles by category, and the control-plane
actions the guardrail keeps away from agents.

Role and action names are Azure's own (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles,
.../resource-provider-operations).
"""

from __future__ import annotations

import re

SOURCE = "azure-built-in-roles"
# A role definition id, or a built-in role's display name.
ROLE_ID_PATTERN = re.compile(
    r"(?:/subscriptions/[0-9a-fA-F-]{36})?/providers/Microsoft\.Authorization/roleDefinitions/"
    r"[0-9a-fA-F-]{36}"
)
ROLE_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9 ().-]{1,80}")
ACTION_PATTERN = re.compile(r"Microsoft\.[A-Za-z]+(?:/[A-Za-z0-9*]+)+")
SCOPE_PATTERN = re.compile(r"/subscriptions/[0-9a-fA-F-]{36}(?:/[A-Za-z0-9._()-]+)*")

ESCALATION_ROLES: tuple[str, ...] = (
    "Owner",
    "User Access Administrator",
    "Role Based Access Control Administrator",
    "Managed Identity Operator",
)
PRIVILEGED_ROLES: tuple[str, ...] = (
    "Contributor",
    "Storage Blob Data Owner",
    "Key Vault Administrator",
    "Key Vault Secrets Officer",
    "Cognitive Services Contributor",
    "Azure AI Developer",
)
# What every agent's guardrail keeps from it on Azure (assignments conferring these go).
GUARDRAIL_ACTIONS: tuple[str, ...] = (
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleDefinitions/write",
    "Microsoft.Authorization/elevateAccess/action",
    "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
)
# Which catalogued actions the catalogued roles carry (enough to open exemptions).
ROLE_ACTIONS: dict[str, tuple[str, ...]] = {
    "Owner": GUARDRAIL_ACTIONS,
    "User Access Administrator": (
        "Microsoft.Authorization/roleAssignments/write",
        "Microsoft.Authorization/roleDefinitions/write",
    ),
    "Role Based Access Control Administrator": ("Microsoft.Authorization/roleAssignments/write",),
    "Managed Identity Operator": (
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
    ),
    "Contributor": (
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
    ),
}


def is_role(text: str) -> bool:
    """Say whether the text names an Azure role (display name or role definition id)."""
    return bool(ROLE_ID_PATTERN.fullmatch(text) or ROLE_NAME_PATTERN.fullmatch(text))


def is_action(text: str) -> bool:
    """Say whether the text is an Azure resource provider operation."""
    return ACTION_PATTERN.fullmatch(text) is not None


def is_scope(text: str) -> bool:
    """Say whether the text is an ARM scope under a subscription."""
    return SCOPE_PATTERN.fullmatch(text) is not None


def grants_action(approved: list[str], action: str) -> bool:
    """Say whether an approved role carries the catalogued action."""
    return any(item == action or action in ROLE_ACTIONS.get(item, ()) for item in approved)
