"""Google Cloud in the privileged catalogue and the policy file: roles, tiers, withheld minting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bot.domain import catalog
from bot.domain.catalog import ActionCategory
from bot.domain.catalog import gcp as catalog_gcp
from bot.domain.catalog import gcp_permissions as catalog_gcp_permissions
from bot.domain.findings import exemptions_for, guardrail_actions
from bot.domain.policy import tier_for
from bot.domain.rules import LeastPrivilegeRules, PermissionSet
from bot.domain.states import Tier
from bot.store.tables import Grant
from cloud.base import ResolvedItem
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


# Permission-level catalogue (issue 17): what each permission a role carries makes it.

E, C, P = ActionCategory.ESCALATION, ActionCategory.CREDENTIAL, ActionCategory.PRIVILEGED
CATALOGUED: tuple[tuple[str, ActionCategory], ...] = (
    # Allow policies, acting as an account, custom roles, org policy, deny policies.
    ("resourcemanager.organizations.setIamPolicy", E),
    ("resourcemanager.folders.setIamPolicy", E),
    ("resourcemanager.projects.setIamPolicy", E),
    ("iam.serviceAccounts.setIamPolicy", E),
    ("iam.serviceAccounts.actAs", E),
    ("iam.serviceAccounts.update", E),
    ("iam.serviceAccounts.disable", E),
    ("iam.serviceAccounts.enable", E),
    ("iam.roles.create", E),
    ("iam.roles.update", E),
    ("iam.roles.undelete", E),
    ("iam.denypolicies.create", E),
    ("iam.denypolicies.update", E),
    ("iam.denypolicies.delete", E),
    ("orgpolicy.policy.set", E),
    ("orgpolicy.policies.create", E),
    ("orgpolicy.policies.update", E),
    ("orgpolicy.policies.delete", E),
    ("iam.workloadIdentityPools.create", E),
    ("iam.workloadIdentityPools.update", E),
    ("iam.workloadIdentityPools.undelete", E),
    ("iam.workloadIdentityPoolProviders.create", E),
    ("iam.workloadIdentityPoolProviders.update", E),
    ("iam.workloadIdentityPoolProviders.undelete", E),
    ("iam.workloadIdentityPoolProviderKeys.create", E),
    # Code execution as a service account.
    ("cloudbuild.builds.create", E),
    ("cloudbuild.builds.update", E),
    ("cloudfunctions.functions.create", E),
    ("cloudfunctions.functions.update", E),
    ("cloudfunctions.functions.sourceCodeSet", E),
    ("run.services.create", E),
    ("run.services.update", E),
    ("run.jobs.create", E),
    ("run.jobs.update", E),
    ("compute.instances.create", E),
    ("compute.instances.setServiceAccount", E),
    ("compute.instances.setMetadata", E),
    ("compute.projects.setCommonInstanceMetadata", E),
    ("container.clusters.create", E),
    ("container.clusters.update", E),
    ("composer.environments.create", E),
    ("composer.environments.update", E),
    ("deploymentmanager.deployments.create", E),
    ("deploymentmanager.deployments.update", E),
    ("dataflow.jobs.create", E),
    ("dataproc.clusters.create", E),
    ("notebooks.instances.create", E),
    ("aiplatform.customJobs.create", E),
    ("workflows.workflows.create", E),
    ("workflows.workflows.update", E),
    ("cloudscheduler.jobs.create", E),
    ("cloudscheduler.jobs.update", E),
    # Credentials that outlive the grant.
    ("iam.serviceAccountKeys.create", C),
    ("iam.serviceAccounts.getAccessToken", C),
    ("iam.serviceAccounts.signBlob", C),
    ("iam.serviceAccounts.signJwt", C),
    ("iam.serviceAccounts.implicitDelegation", C),
    ("iam.serviceAccounts.getOpenIdToken", C),
    ("storage.hmacKeys.create", C),
    ("apikeys.keys.create", C),
    ("apikeys.keys.getKeyString", C),
    ("serviceusage.apiKeys.create", C),
    # Destructive, audit-trail and secret reads.
    ("secretmanager.versions.access", P),
    ("cloudkms.cryptoKeyVersions.destroy", P),
    ("logging.sinks.delete", P),
    ("logging.sinks.update", P),
    ("logging.buckets.delete", P),
    ("logging.logs.delete", P),
    ("storage.buckets.delete", P),
    ("bigquery.datasets.delete", P),
    ("resourcemanager.projects.delete", P),
)


@pytest.mark.parametrize(("permission", "category"), CATALOGUED, ids=[p for p, _ in CATALOGUED])
def test_each_catalogued_permission_has_its_category(
    permission: str, category: ActionCategory
) -> None:
    found = catalog_gcp.permission_category(permission)

    assert catalog_gcp.is_permission(permission)
    assert found is not None
    assert found[0] is category
    assert found[1] in {
        catalog_gcp_permissions.RHINO,
        catalog_gcp_permissions.GOOGLE_IAM,
        catalog_gcp_permissions.GOOGLE_PRODUCT,
    }


def test_the_catalogue_holds_exactly_the_permissions_tested_here() -> None:
    assert set(catalog_gcp_permissions.PERMISSIONS) == {p for p, _ in CATALOGUED}
    listed = [p for _, _, group in catalog_gcp_permissions.GROUPS for p in group]
    assert len(listed) == len(set(listed))  # no permission in two groups


@pytest.mark.parametrize(
    "permission",
    [
        "cloudfunctions.functions.setIamPolicy",
        "run.services.setIamPolicy",
        "secretmanager.secrets.setIamPolicy",
        "storage.buckets.setIamPolicy",
    ],
)
def test_every_set_iam_policy_is_escalation(permission: str) -> None:
    assert catalog_gcp.permission_category(permission) == (
        ActionCategory.ESCALATION,
        catalog_gcp_permissions.RHINO,
    )


@pytest.mark.parametrize(
    "permission",
    [
        "storage.objects.get",
        "bigquery.tables.getData",
        "logging.logEntries.create",
        "iam.serviceAccounts.get",
        "resourcemanager.projects.getIamPolicy",
        "secretmanager.versions.list",
    ],
)
def test_everyday_permissions_are_harmless(permission: str) -> None:
    assert catalog_gcp.permission_category(permission) is None


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("iam.serviceAccounts.actAs", True),
        ("networkservices.route_views.get", True),  # Google's own underscore
        ("dataflow.streamingWorkItems.ImportState", True),  # Google's own upper-case verb
        ("IAM.serviceAccounts.actAs", False),  # services are lower case
        ("iam.ServiceAccounts.actAs", False),  # resources are lower camel case
        ("iam.serviceAccounts", False),
        ("iam:PassRole", False),
        ("roles/iam.serviceAccountUser", False),
        ("iam.googleapis.com/serviceAccounts.actAs", False),  # the deny-policy spelling
    ],
)
def test_permission_names_are_google_s_case_sensitive_spelling(text: str, valid: bool) -> None:
    assert catalog_gcp.is_permission(text) is valid


@pytest.mark.parametrize(
    "spelling",
    ["IAM.serviceAccounts.actAs", "iam.serviceaccounts.actas", "IAM.SERVICEACCOUNTS.ACTAS"],
)
def test_a_variant_spelling_never_reads_as_harmless(spelling: str) -> None:
    found = catalog_gcp.permission_category(spelling)

    assert found is not None
    assert found[0] is ActionCategory.ESCALATION


def test_a_role_is_reported_under_its_name_with_the_permission_that_decided() -> None:
    role = "projects/p/roles/agentRunner"
    items = [ResolvedItem(role, role, ("storage.objects.get", "iam.serviceAccounts.actAs"))]

    tier, reasons = tier_for([role], resolved=items)

    assert tier is Tier.ESCALATION
    assert f"{role} carries iam.serviceAccounts.actAs" in reasons
