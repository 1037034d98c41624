"""Azure roles are tiered on the role they resolve to, whatever spelling names it."""

from __future__ import annotations

import pytest

from bot.domain import catalog
from bot.domain.catalog import azure as catalog_azure
from bot.domain.catalog import azure_data as catalog_azure_data
from bot.domain.policy import tier_for
from bot.domain.states import Tier

SUBSCRIPTION = "3f1c2a5e-8b4d-4c7a-9e2f-1a6b5c4d3e21"
ROOT = "/providers/Microsoft.Authorization/roleDefinitions/"
# GUIDs from Microsoft's built-in roles reference (the same in every tenant).
ESCALATION_ROLES = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "Role Based Access Control Administrator": "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
    "Virtual Machine Contributor": "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
    "Automation Contributor": "f353d9bd-d4a6-484e-a77a-8050b599b867",
}


def _spellings(name: str, guid: str) -> list[tuple[str, str]]:
    words = name.split()
    return [
        ("name", name),
        ("lower", name.lower()),
        ("upper", name.upper()),
        ("trailing-space", f"{name} "),
        ("leading-and-trailing", f"  {name}\t"),
        ("inner-spaces", "  ".join(words) if len(words) > 1 else f" {name}  "),
        ("root-id", f"{ROOT}{guid}"),
        ("subscription-id", f"/subscriptions/{SUBSCRIPTION}{ROOT}{guid}"),
        ("resource-group-id", f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-x{ROOT}{guid}"),
        ("id-upper", f"{ROOT}{guid}".upper()),
        ("id-lower", f"{ROOT}{guid}".lower()),
        ("bare-guid", guid),
        ("bare-guid-upper", guid.upper()),
        ("bare-guid-spaced", f" {guid} "),
    ]


CASES = [
    pytest.param(name, text, id=f"{name}-{how}")
    for name, guid in ESCALATION_ROLES.items()
    for how, text in _spellings(name, guid)
]


@pytest.mark.parametrize(("name", "text"), CASES)
def test_every_spelling_of_an_escalation_role_resolves_to_it_and_is_escalation(
    name: str, text: str
) -> None:
    assert catalog_azure.canonical_role(text) == name
    tier, _ = tier_for([text])
    assert tier is Tier.ESCALATION
    (match,) = catalog.matches([text])
    assert match.entry.action == name


@pytest.mark.parametrize(
    "text",
    [
        "Owner2",
        "Storage Blob Data Readers",
        f"{ROOT}00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000001",
        "iam:PassRole",
    ],
    ids=["near-name", "plural", "custom-id", "custom-guid", "aws-action"],
)
def test_what_the_catalogue_cannot_resolve_has_no_canonical_role(text: str) -> None:
    assert catalog_azure.canonical_role(text) is None
    assert catalog_azure.role_key(text) == ""


def test_every_built_in_role_is_listed_once_with_a_guid() -> None:
    groups = (
        catalog_azure_data.ESCALATION,
        catalog_azure_data.PRIVILEGED,
        catalog_azure_data.NORMAL,
    )
    guids = [guid for group in groups for guid in group]
    names = [name.lower() for group in groups for name in group.values()]
    assert len(set(guids)) == len(guids)
    assert len(set(names)) == len(names)
    assert all(catalog_azure.GUID_PATTERN.fullmatch(g) and g == g.lower() for g in guids)


@pytest.mark.parametrize(
    ("role", "tier"),
    [
        ("Contributor", Tier.ESCALATION),
        ("Managed Identity Contributor", Tier.ESCALATION),
        ("Key Vault Contributor", Tier.ESCALATION),
        ("Tag Contributor", Tier.ESCALATION),
        ("Website Contributor", Tier.ESCALATION),
        ("Logic App Contributor", Tier.ESCALATION),
        # Their definitions carry a guarded action (jobs/write) or a credential (listKeys):
        # by name they are tiered as their resolved definitions are.
        ("Automation Job Operator", Tier.ESCALATION),
        ("Storage Account Contributor", Tier.ESCALATION),
        ("Key Vault Secrets User", Tier.ESCALATION),
        ("Storage Blob Data Owner", Tier.PRIVILEGED),
        ("Storage Blob Data Reader", Tier.NORMAL),
    ],
    ids=lambda value: str(value).replace(" ", "-"),
)
def test_catalogued_roles_have_their_tier(role: str, tier: Tier) -> None:
    assert tier_for([role])[0] is tier


@pytest.mark.parametrize(
    ("role", "action"),
    [
        ("Virtual Machine Contributor", "Microsoft.Compute/virtualMachines/runCommand/action"),
        ("Virtual Machine Contributor", "Microsoft.Compute/virtualMachines/runCommands/write"),
        ("Key Vault Contributor", "Microsoft.KeyVault/vaults/accessPolicies/write"),
        ("Key Vault Contributor", "Microsoft.KeyVault/vaults/write"),
        ("Automation Contributor", "Microsoft.Automation/automationAccounts/runbooks/write"),
        ("Automation Contributor", "Microsoft.Automation/automationAccounts/jobs/write"),
        (
            "Managed Identity Contributor",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
        ),
        ("Managed Identity Contributor", "Microsoft.ManagedIdentity/userAssignedIdentities/write"),
        ("Tag Contributor", "Microsoft.Resources/tags/write"),
        ("User Access Administrator", "Microsoft.Authorization/denyAssignments/write"),
    ],
    ids=lambda value: str(value).rsplit("/", 2)[-2] if "/" in str(value) else str(value),
)
def test_guarded_actions_are_in_the_guardrail_and_open_only_through_their_roles(
    role: str, action: str
) -> None:
    assert action in catalog_azure.GUARDRAIL_ACTIONS
    assert catalog.allows([role], action)
    assert catalog.allows([f"{role.upper()} "], action)  # any spelling of the role
    assert not catalog.allows(["Reader"], action)


def test_contributor_opens_no_access_management() -> None:
    assert not catalog.allows(["Contributor"], "Microsoft.Authorization/roleAssignments/write")
    assert catalog.allows(["Contributor"], "Microsoft.Compute/virtualMachines/runCommand/action")
