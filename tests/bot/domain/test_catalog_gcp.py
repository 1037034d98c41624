"""Google Cloud in the privileged catalogue and the policy file: roles, tiers, withheld minting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bot.domain import catalog
from bot.domain.catalog import ActionCategory
from bot.domain.findings import exemptions_for, guardrail_actions
from bot.domain.models import Grant
from bot.domain.rules import LeastPrivilegeRules, PermissionSet
from tests.conftest import make_rules


@pytest.mark.parametrize(
    ("role", "category"),
    [
        ("roles/owner", ActionCategory.ESCALATION),
        ("roles/iam.serviceAccountTokenCreator", ActionCategory.CREDENTIAL),
        ("roles/storage.admin", ActionCategory.PRIVILEGED),
    ],
)
def test_catalogued_roles_are_matched_in_their_category(
    role: str, category: ActionCategory
) -> None:
    (match,) = catalog.matches([role])
    assert match.entry.category is category


def test_an_everyday_role_is_not_privileged() -> None:
    assert catalog.matches(["roles/storage.objectViewer"]) == ()


def test_credential_minting_is_withheld_unless_a_role_that_carries_it_is_approved() -> None:
    withheld = catalog.persistence_denies(["roles/storage.objectViewer"], provider="gcp")
    assert "iam.serviceAccountKeys.create" in withheld
    assert "iam.serviceAccounts.getAccessToken" in withheld
    opened = catalog.persistence_denies(["roles/iam.serviceAccountTokenCreator"], provider="gcp")
    assert "iam.serviceAccounts.getAccessToken" not in opened
    assert "iam.serviceAccountKeys.create" in opened
    assert all(":" not in action for action in withheld)  # never AWS actions on GCP


def test_the_gcp_guardrail_denies_permissions_and_grants_open_exemptions() -> None:
    rules = LeastPrivilegeRules(guardrail_extra_actions=("storage.buckets.delete",))
    guarded = guardrail_actions(rules, provider="gcp")
    assert "iam.serviceAccounts.actAs" in guarded
    assert "storage.buckets.delete" in guarded
    assert not any(":" in action for action in guarded)
    assert "storage.buckets.delete" not in guardrail_actions(rules)  # AWS's list stays AWS
    grant = Grant(
        id="g-12345678",
        request_id="r-12345678",
        identity_id="i",
        requester="dev",
        actions=["roles/iam.serviceAccountUser"],
        resources=[],
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        expires_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    (exemption,) = exemptions_for([grant], guarded)
    assert exemption.action == "iam.serviceAccounts.actAs"


def test_a_permission_set_may_name_gcp_roles_and_must_name_something() -> None:
    both = PermissionSet(actions=("s3:GetObject",), gcp_roles=("roles/storage.objectViewer",))
    assert both.for_provider("gcp") == ("roles/storage.objectViewer",)
    assert both.for_provider("aws") == ("s3:GetObject",)
    with pytest.raises(ValidationError, match="name actions"):
        PermissionSet()
    with pytest.raises(ValidationError, match="not GCP role names"):
        PermissionSet(gcp_roles=("storage.objectViewer",))
    assert make_rules().permission_sets  # the bundled policy still loads


def test_azure_roles_decide_tiers_and_the_azure_guardrail_keeps_control_plane_writes() -> None:
    (owner,) = catalog.matches(["Owner"])
    assert owner.entry.category is ActionCategory.ESCALATION
    assert catalog.matches(["Storage Blob Data Reader"]) == ()
    assert catalog.persistence_denies(["Reader"], provider="azure") == ()
    guarded = guardrail_actions(LeastPrivilegeRules(), provider="azure")
    assert "Microsoft.Authorization/roleAssignments/write" in guarded
    assert catalog.allows(["User Access Administrator"], guarded[0])
    azure_set = PermissionSet(azure_roles=("Storage Blob Data Reader",))
    assert azure_set.for_provider("azure") == ("Storage Blob Data Reader",)
    assert azure_set.for_provider("aws") == ()
