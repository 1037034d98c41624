"""Azure's part of the privileged catalogue: built-in roles by category, every spelling of one
resolved to the same role, and the control-plane actions the guardrail keeps away from agents.

Role and action names are Azure's own (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles,
.../resource-provider-operations). A role is named by its display name in any case and spacing,
or by its role definition id (`/providers/Microsoft.Authorization/roleDefinitions/<guid>`, the
same under `/subscriptions/<id>` or a resource group, or the bare GUID): built-in GUIDs are the
same in every tenant, so `canonical_role` turns each spelling into one name before anything
compares or tiers it. A role it cannot resolve is not tiered at all: the request is refused.

A role the cloud resolves is also tiered on what it carries: each of its actions and data
actions, wildcards and all, less its `notActions`, against the operations catalogued in
`bot.domain.catalog.azure_actions` (`pattern_match`), so a custom role is tiered like the
built-in role it resembles, whatever it is called. Every action the guardrail removes is
catalogued as escalation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from bot.domain.catalog import azure_actions as catalog_azure_actions
from bot.domain.catalog import azure_data as catalog_azure_data
from bot.domain.catalog.categories import ActionCategory

SOURCE = "azure-built-in-roles"
UNRESOLVED = (
    "Leash cannot resolve this role definition; ask for a built-in role or have an admin add it "
    "to the policy"
)
_GUID = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
GUID_PATTERN = re.compile(_GUID)
# A role definition id at the tenant root, a subscription or a resource group.
ROLE_ID_PATTERN = re.compile(
    r"(?:/subscriptions/[0-9a-fA-F-]{36}(?:/resourceGroups/[A-Za-z0-9._()-]{1,90})?)?"
    rf"/providers/Microsoft\.Authorization/roleDefinitions/({_GUID})",
    re.IGNORECASE,
)
ROLE_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9 ().-]{1,80}")
ACTION_PATTERN = re.compile(r"Microsoft\.[A-Za-z]+(?:/[A-Za-z0-9*]+)+")
# An operation or pattern as a role definition may hold one: a namespace (or `*`) and a path.
OPERATION_PATTERN = re.compile(
    r"\*|(?:\*|[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9*]+)+)(?:/[A-Za-z0-9_.*-]+)+"
)
SCOPE_PATTERN = re.compile(r"/subscriptions/[0-9a-fA-F-]{36}(?:/[A-Za-z0-9._()-]+)*")

ESCALATION_ROLES: tuple[str, ...] = tuple(catalog_azure_data.ESCALATION.values())
PRIVILEGED_ROLES: tuple[str, ...] = tuple(catalog_azure_data.PRIVILEGED.values())
# Every built-in role Leash resolves, by lower-case GUID.
BUILT_IN_ROLES: Mapping[str, str] = {
    **catalog_azure_data.ESCALATION,
    **catalog_azure_data.PRIVILEGED,
    **catalog_azure_data.NORMAL,
}

# What every agent's guardrail keeps from it on Azure (assignments conferring these go).
GUARDRAIL_ACTIONS: tuple[str, ...] = (
    # Access management: role and deny assignments, role definitions, tenant-wide elevation.
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleDefinitions/write",
    "Microsoft.Authorization/denyAssignments/write",
    "Microsoft.Authorization/elevateAccess/action",
    # Acting as a managed identity: attach it, federate it, or rewrite the tags Leash reads.
    "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
    "Microsoft.ManagedIdentity/userAssignedIdentities/write",
    "Microsoft.Resources/tags/write",
    # Code that runs as a VM's identity.
    "Microsoft.Compute/virtualMachines/runCommand/action",
    "Microsoft.Compute/virtualMachines/runCommands/write",
    "Microsoft.Compute/virtualMachines/extensions/write",
    # Key Vault access policies (the vault's own permission model, outside RBAC).
    "Microsoft.KeyVault/vaults/accessPolicies/write",
    "Microsoft.KeyVault/vaults/write",
    # Runbooks run as the Automation account's identity.
    "Microsoft.Automation/automationAccounts/runbooks/write",
    "Microsoft.Automation/automationAccounts/jobs/write",
)
# The actions and notActions of the catalogued roles that touch guarded actions, as Microsoft
# defines them (enough to say which guarded actions an approved role opens).
_ROLE_PERMISSIONS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Owner": (("*",), ()),
    "User Access Administrator": (("Microsoft.Authorization/*",), ()),
    "Role Based Access Control Administrator": (
        ("Microsoft.Authorization/roleAssignments/write",),
        (),
    ),
    "Contributor": (
        ("*",),
        (
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
        ),
    ),
    "Managed Identity Operator": (
        ("Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",),
        (),
    ),
    "Managed Identity Contributor": (
        (
            "Microsoft.ManagedIdentity/userAssignedIdentities/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
        ),
        (),
    ),
    "Virtual Machine Contributor": (("Microsoft.Compute/virtualMachines/*",), ()),
    "Automation Contributor": (("Microsoft.Automation/automationAccounts/*",), ()),
    "Automation Operator": (("Microsoft.Automation/automationAccounts/jobs/write",), ()),
    "Automation Job Operator": (("Microsoft.Automation/automationAccounts/jobs/write",), ()),
    "Key Vault Contributor": (("Microsoft.KeyVault/*",), ()),
    "Key Vault Data Access Administrator": (
        ("Microsoft.Authorization/roleAssignments/write",),
        (),
    ),
    "Tag Contributor": (("Microsoft.Resources/tags/*",), ()),
}


@cache
def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.IGNORECASE)


def _confers(role: str, action: str) -> bool:
    allowed, excluded = _ROLE_PERMISSIONS.get(role, ((), ()))
    return any(_wildcard(p).fullmatch(action) for p in allowed) and not any(
        _wildcard(p).fullmatch(action) for p in excluded
    )


# Which guarded actions the catalogued roles carry (enough to open exemptions).
ROLE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    role: tuple(action for action in GUARDRAIL_ACTIONS if _confers(role, action))
    for role in _ROLE_PERMISSIONS
}


@cache
def _by_name() -> dict[str, str]:
    return {name.lower(): name for name in BUILT_IN_ROLES.values()}


def role_guid(text: str) -> str | None:
    """Return the lower-case GUID a role definition id (any scope) or bare GUID names."""
    stripped = text.strip()
    if GUID_PATTERN.fullmatch(stripped):
        return stripped.lower()
    found = ROLE_ID_PATTERN.fullmatch(stripped)
    return found.group(1).lower() if found else None


def canonical_role(text: str) -> str | None:
    """Return the built-in role a name (any case, any spacing) or id names, or None."""
    guid = role_guid(text)
    if guid is not None:
        return BUILT_IN_ROLES.get(guid)
    return _by_name().get(" ".join(text.split()).lower())


def role_key(text: str) -> str:
    """Return the lower-cased canonical name of the role the text names ("" when none)."""
    canonical = canonical_role(text)
    return canonical.lower() if canonical is not None else ""


def is_role(text: str) -> bool:
    """Say whether the text is shaped like an Azure role (display name or definition id)."""
    return role_guid(text) is not None or bool(ROLE_NAME_PATTERN.fullmatch(text.strip()))


def is_action_pattern(text: str) -> bool:
    """Say whether the text is an Azure action or data action, wildcards allowed (`*/read`).

    Any case, as Azure compares them: a custom role may spell `microsoft.authorization/...`.
    """
    return OPERATION_PATTERN.fullmatch(text) is not None


@cache
def _catalogue() -> tuple[tuple[str, ActionCategory, str], ...]:
    """Every catalogued operation with its category and source, escalation first."""
    by_category = (
        (ActionCategory.ESCALATION, catalog_azure_actions.ESCALATION),
        (ActionCategory.CREDENTIAL, catalog_azure_actions.CREDENTIAL),
        (ActionCategory.PRIVILEGED, catalog_azure_actions.PRIVILEGED),
    )
    return tuple(
        (action, category, source)
        for category, by_source in by_category
        for source, actions in by_source.items()
        for action in actions
    )


def catalogued_actions() -> tuple[tuple[str, ActionCategory], ...]:
    """Return every catalogued Azure operation with its category."""
    return tuple((action, category) for action, category, _ in _catalogue())


def _covers(pattern: str, action: str, excluded: tuple[str, ...]) -> bool:
    return _wildcard(pattern).fullmatch(action) is not None and not any(
        _wildcard(p).fullmatch(action) for p in excluded
    )


def _broad_delete(pattern: str, excluded: tuple[str, ...]) -> str | None:
    """Return the deletes a pattern reaches across a whole provider (or more), or None.

    The wildcard must start at the provider or above (`*`, `*/delete`, `Microsoft.Compute/*`);
    a delete confined to one resource type (`.../containers/delete`) is not broad.
    """
    prefix = pattern.split("*", 1)[0]
    if "*" not in pattern or prefix.count("/") > 1:
        return None
    provider = prefix.split("/", 1)[0].lower()
    if any(provider == p.lower() for p in catalog_azure_actions.HARMLESS_DELETE_PROVIDERS):
        return None
    probe = f"{prefix}{'' if prefix.endswith('/') or not prefix else '/'}x/delete"
    if not _covers(pattern, probe, excluded):
        return None
    return f"{prefix}*/delete" if prefix else "*/delete"


@dataclass(frozen=True, slots=True)
class PatternMatch:
    """What decided the tier of one allowed pattern: the category, its source and the action."""

    category: ActionCategory
    source: str
    action: str


@cache
def pattern_match(pattern: str, excluded: tuple[str, ...] = ()) -> PatternMatch | None:
    """Return the most severe catalogued action one allowed pattern of a role confers, or None.

    The pattern covers an operation when it matches it (case-insensitively, `*` any run of
    characters) and none of the role's `notActions`/`notDataActions` does. Leash sees a role's
    actions and data actions together, so a control-plane wildcard is also matched against the
    catalogued data actions: that can only tier a role higher, never lower.
    """
    for action, category, source in _catalogue():
        if _covers(pattern, action, excluded):
            return PatternMatch(category, source, action)
    deletes = _broad_delete(pattern, excluded)
    if deletes is not None:
        return PatternMatch(ActionCategory.PRIVILEGED, catalog_azure_actions.BROAD_DELETE, deletes)
    return None


def pattern_category(pattern: str, excluded: tuple[str, ...]) -> tuple[ActionCategory, str] | None:
    """Return the category (and its source) of what one allowed pattern of a role confers."""
    found = pattern_match(pattern, excluded)
    return None if found is None else (found.category, found.source)


def described(pattern: str, excluded: tuple[str, ...]) -> str:
    """Name a pattern with the catalogued action that decided its tier (Azure's spelling)."""
    found = pattern_match(pattern, excluded)
    if found is None:
        return pattern
    if found.action.lower() == pattern.lower():
        return found.action
    return f"{pattern} (covers {found.action})"


def is_action(text: str) -> bool:
    """Say whether the text is an Azure resource provider operation."""
    return ACTION_PATTERN.fullmatch(text) is not None


def is_scope(text: str) -> bool:
    """Say whether the text is an ARM scope under a subscription."""
    return SCOPE_PATTERN.fullmatch(text) is not None


def grants_action(approved: list[str], action: str) -> bool:
    """Say whether an approved role carries the catalogued action."""
    return any(
        item == action or action in ROLE_ACTIONS.get(canonical_role(item) or item, ())
        for item in approved
    )
