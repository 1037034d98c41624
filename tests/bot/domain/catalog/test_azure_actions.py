"""Azure roles are tiered on each action and data action they carry: the action catalogue."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.domain import catalog
from bot.domain.catalog import azure as catalog_azure
from bot.domain.catalog import azure_actions as catalog_azure_actions
from bot.domain.catalog.categories import ActionCategory
from bot.domain.policy import tier_for
from bot.domain.states import Tier
from cloud.base import ResolvedItem

CATALOGUED = catalog_azure.catalogued_actions()


def _namespace_star(action: str) -> str:
    return action.split("/", 1)[0] + "/*"


def _swapcase_path(action: str) -> str:
    namespace, path = action.split("/", 1)
    return f"{namespace.lower()}/{path.swapcase()}"


SEVERITY = (ActionCategory.PRIVILEGED, ActionCategory.CREDENTIAL, ActionCategory.ESCALATION)
SPELLINGS: dict[str, Callable[[str], str]] = {
    "as-listed": lambda a: a,
    "lower": str.lower,
    "upper": str.upper,
    "swapped": _swapcase_path,
}
CASES = [
    pytest.param(action, category, spell, id=f"{action}-{how}")
    for action, category in CATALOGUED
    for how, spell in SPELLINGS.items()
]


@pytest.mark.parametrize(("action", "category", "spell"), CASES)
def test_every_catalogued_action_has_its_category_in_any_case(
    action: str, category: ActionCategory, spell: Callable[[str], str]
) -> None:
    found = catalog_azure.pattern_match(spell(action), ())
    assert found is not None
    assert (found.category, found.action) == (category, action)


@pytest.mark.parametrize(("action", "category"), [pytest.param(a, c, id=a) for a, c in CATALOGUED])
def test_every_catalogued_action_is_covered_by_its_namespace_and_star_and_taken_back(
    action: str, category: ActionCategory
) -> None:
    for pattern in ("*", _namespace_star(action), _namespace_star(action).upper()):
        found = catalog_azure.pattern_match(pattern, ())
        assert found is not None
        assert SEVERITY.index(found.category) >= SEVERITY.index(category), pattern
    # notActions take it back, in any case: the exact action then confers nothing.
    assert catalog_azure.pattern_category(action, (action.upper(),)) is None
    assert catalog_azure.pattern_category(action.lower(), (_namespace_star(action),)) is None


@pytest.mark.parametrize("action", catalog_azure.GUARDRAIL_ACTIONS)
def test_everything_the_guardrail_removes_is_escalation(action: str) -> None:
    found = catalog_azure.pattern_match(action, ())
    assert found is not None
    assert (found.category, found.action) == (ActionCategory.ESCALATION, action)


def test_each_action_is_catalogued_once() -> None:
    names = [action.lower() for action, _ in CATALOGUED]
    assert len(names) == len(set(names))
    assert all(catalog_azure.is_action_pattern(action) for action, _ in CATALOGUED)


@pytest.mark.parametrize(
    ("pattern", "excluded", "expected"),
    [
        ("*", (), (ActionCategory.ESCALATION, "Microsoft.Authorization/roleAssignments/write")),
        ("*/read", (), None),
        ("*/delete", (), (ActionCategory.PRIVILEGED, "Microsoft.Authorization/locks/delete")),
        (
            "Microsoft.Storage/*/delete",
            (),
            (ActionCategory.PRIVILEGED, "Microsoft.Storage/*/delete"),
        ),
        ("Microsoft.Storage/storageAccounts/blobServices/containers/delete", (), None),
        ("Microsoft.Support/*", (), None),
        ("Microsoft.Insights/alertRules/*", (), None),
        (
            "Microsoft.Compute/*",
            ("Microsoft.Compute/*/runCommand/action",),
            (ActionCategory.ESCALATION, "Microsoft.Compute/virtualMachines/runCommands/write"),
        ),
        (
            "Microsoft.Compute/*",
            ("Microsoft.Compute/*/write", "Microsoft.Compute/*/action"),
            (ActionCategory.PRIVILEGED, "Microsoft.Compute/*/delete"),
        ),
        ("Microsoft.Compute/*", ("Microsoft.Compute/*",), None),
        (
            "Microsoft.KeyVault/vaults/secrets/*",
            (),
            (ActionCategory.CREDENTIAL, "Microsoft.KeyVault/vaults/secrets/getSecret/action"),
        ),
        ("Microsoft.KeyVault/vaults/secrets/readMetadata/action", (), None),
        ("Microsoft.KeyVault/vaults/keys/sign/action", (), None),
        (
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            (),
            (
                ActionCategory.ESCALATION,
                "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            ),
        ),
        (
            "Microsoft.Authorization/*",
            ("Microsoft.Authorization/*/write", "Microsoft.Authorization/elevateAccess/action"),
            (ActionCategory.PRIVILEGED, "Microsoft.Authorization/locks/delete"),
        ),
    ],
    ids=[
        "star",
        "star-read",
        "star-delete",
        "provider-deletes",
        "one-type-delete",
        "support-tickets",
        "classic-alert-rules",
        "compute-without-run-command",
        "compute-deletes-only",
        "compute-all-taken-back",
        "key-vault-secrets",
        "secret-metadata",
        "key-sign",
        "assign-identity",
        "authorization-without-writes",
    ],
)
def test_patterns_and_not_actions(
    pattern: str,
    excluded: tuple[str, ...],
    expected: tuple[ActionCategory, str] | None,
) -> None:
    found = catalog_azure.pattern_match(pattern, excluded)
    assert (None if found is None else (found.category, found.action)) == expected


def _tier(name: str, actions: tuple[str, ...], excluded: tuple[str, ...] = ()) -> Tier:
    item = ResolvedItem(name, name, actions, excluded)
    return tier_for([name], resolved=[item])[0]


def test_owner_and_contributor_are_escalation_not_break_glass() -> None:
    contributor_not = (
        "Microsoft.Authorization/*/Delete",
        "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action",
    )
    assert _tier("Owner", ("*",)) is Tier.ESCALATION
    assert _tier("Contributor", ("*",), contributor_not) is Tier.ESCALATION
    assert _tier("Custom Everything", ("*",)) is Tier.ESCALATION


def test_a_resolved_role_is_reported_with_the_action_that_decided() -> None:
    item = ResolvedItem("vm ops", "VM Ops", ("*/read", "Microsoft.Compute/*"))
    tier, reasons = tier_for(["VM Ops"], resolved=[item])
    (match,) = catalog.resolved_matches([item])
    assert tier is Tier.ESCALATION
    assert match.entry.action == (
        "Microsoft.Compute/* (covers Microsoft.Compute/virtualMachines/runCommand/action)"
    )
    assert f"VM Ops carries {match.entry.action}" in reasons


def test_sources_are_named() -> None:
    sources = {
        *catalog_azure_actions.ESCALATION,
        *catalog_azure_actions.CREDENTIAL,
        *catalog_azure_actions.PRIVILEGED,
    }
    assert sources <= {
        catalog_azure_actions.MICROSOFT_RBAC,
        catalog_azure_actions.MICROSOFT_KEY_VAULT,
        catalog_azure_actions.ATTACK_PATHS,
        catalog_azure_actions.GET_AZPASSWORDS,
        catalog_azure_actions.DEFENSE_EVASION,
        catalog_azure_actions.LEASH,
    }
