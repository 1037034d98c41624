"""Google Cloud's part of the privileged catalogue: roles by category, and the permissions the
guardrail denies and every elevation withholds.

Role and permission names are facts from Google's IAM reference
(https://cloud.google.com/iam/docs/understanding-roles, .../permissions-reference) and the
privilege-escalation research collected at https://github.com/RhinoSecurityLabs/GCP-IAM-Privilege-Escalation.
Each addition made for issue 17 names its source in a comment beside it.

A custom role (`projects/…/roles/…`, `organizations/…/roles/…`) can hold any permission, so
until its permissions are resolved through the IAM API it is treated as escalation. Resolved
permissions are tiered by `permission_category` over `catalog_gcp_permissions`.

Permission names are case-sensitive: Google spells every one `service.resource.verb`, the
service in lower case and the resource in lower camel case, and IAM refuses other spellings
in a role, so `IAM.serviceAccounts.actAs` is not a permission (`is_permission` says False).
The catalogue still looks names up in any case, so a variant spelling that reaches it never
reads as harmless.

Deny policies take only the permissions Google lists in "Permissions supported in deny
policies" (https://cloud.google.com/iam/docs/deny-permissions-support). The guardrail and the
grant denies keep to that list; what it lacks stays in the tier catalogue only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.domain.catalog import gcp_permissions as catalog_gcp_permissions
from bot.domain.catalog.categories import ActionCategory

ROLE_PATTERN = re.compile(
    r"(?:roles|(?:projects|organizations)/[a-z0-9][a-z0-9.:-]{0,62}/roles)/[A-Za-z0-9_.]{1,128}"
)
# Google's spelling: a lower-case service, a lower-camel resource (a few have an underscore,
# `networkservices.route_views.get`), a verb (one starts in upper case,
# `dataflow.streamingWorkItems.ImportState`). Checked against Google's permission index.
PERMISSION_PATTERN = re.compile(
    r"[a-z][a-z0-9]*(?:\.[a-z][a-zA-Z0-9_]*){1,2}\.[a-zA-Z][a-zA-Z0-9]*"
)

SOURCE = catalog_gcp_permissions.RHINO

# Roles that let the holder raise their own privileges (change IAM, act as another account).
ESCALATION_ROLES: tuple[str, ...] = (
    "roles/owner",
    "roles/editor",
    "roles/resourcemanager.projectIamAdmin",
    "roles/resourcemanager.organizationAdmin",
    "roles/resourcemanager.folderAdmin",
    "roles/iam.securityAdmin",
    "roles/iam.roleAdmin",
    "roles/iam.organizationRoleAdmin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountUser",
    "roles/iam.workloadIdentityUser",
    "roles/iam.workloadIdentityPoolAdmin",
    "roles/cloudfunctions.admin",
    "roles/run.admin",
    "roles/compute.admin",
    "roles/deploymentmanager.editor",
    # Code execution as a service account: builds, clusters and Airflow environments run as
    # one the holder picks (Rhino's cloudbuild.builds.create method; GKE and Composer
    # workloads run as node / environment service accounts, see Google's "Roles for service
    # account authentication" and each product's access-control page).
    "roles/cloudbuild.builds.editor",
    "roles/container.admin",
    "roles/composer.admin",
    # Uploads DAGs that Airflow runs as the environment's service account (Composer's
    # access-control page: "environment and storage object administrator").
    "roles/composer.environmentAndStorageObjectAdmin",
    # Holds iam.serviceAccounts.actAs (Google's role reference: the non-v1 instance admin
    # role includes it, unlike roles/compute.instanceAdmin.v1), so it starts VMs as any account.
    "roles/compute.instanceAdmin",
    # Deletes or rewrites deny policies, Leash's guardrail among them (iam.denypolicies.*).
    "roles/iam.denyAdmin",
    # Sets organization policies (orgpolicy.policy.set), lifting constraints such as
    # iam.disableServiceAccountKeyCreation.
    "roles/orgpolicy.policyAdmin",
)
# Roles that mint credentials for a service account (keys, tokens, signed JWTs).
CREDENTIAL_ROLES: tuple[str, ...] = (
    "roles/iam.serviceAccountKeyAdmin",
    "roles/iam.serviceAccountTokenCreator",
    "roles/iam.serviceAccountOpenIdTokenCreator",
    # Creates HMAC keys for any service account (storage.hmacKeys.create): long-lived
    # credentials outside IAM's key list (Cloud Storage "HMAC keys" documentation).
    "roles/storage.hmacKeyAdmin",
    # Creates API keys (apikeys.keys.create, formerly serviceusage.apiKeys.create).
    "roles/serviceusage.apiKeysAdmin",
)
# Destructive or data-control roles on the services agents use.
PRIVILEGED_ROLES: tuple[str, ...] = (
    "roles/aiplatform.admin",
    "roles/storage.admin",
    "roles/bigquery.admin",
    "roles/secretmanager.admin",
    "roles/cloudkms.admin",
    "roles/logging.admin",
    "roles/pubsub.admin",
    "roles/spanner.admin",
    "roles/cloudsql.admin",
)

# Credential minting: withheld during every elevation unless an approved role grants it.
PERSISTENCE_PERMISSIONS: tuple[str, ...] = (
    "iam.serviceAccountKeys.create",
    "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.signBlob",
    "iam.serviceAccounts.signJwt",
    "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.getOpenIdToken",
    # HMAC keys and API keys stay valid until someone deletes them.
    "storage.hmacKeys.create",
    "apikeys.keys.create",
    # Not serviceusage.apiKeys.create: deny policies do not support it (Google's "Permissions
    # supported in deny policies" lists no serviceusage.googleapis.com/apiKeys.* permission, and
    # a deny policy naming it is refused). The API Keys API checks apikeys.keys.create, denied
    # above; the old permission stays in the tier catalogue as credential.
)
# What the service account's own record says about it (description holds `leash:owner`,
# display name, disabled state): changing it rewrites what Leash reads.
SELF_DESCRIPTION_PERMISSIONS: tuple[str, ...] = (
    "iam.serviceAccounts.update",  # UpdateServiceAccount and PatchServiceAccount
    "iam.serviceAccounts.disable",
    "iam.serviceAccounts.enable",
)
# Writes to deny policies: the guardrail itself is one.
DENY_POLICY_PERMISSIONS: tuple[str, ...] = (
    "iam.denypolicies.create",
    "iam.denypolicies.update",
    "iam.denypolicies.delete",
)
# What every agent's guardrail denies on Google Cloud (IAM deny policy).
# Not DENY_POLICY_PERMISSIONS: deny policies cannot deny iam.denypolicies.* (Google's
# supported list has no iam.googleapis.com/denypolicies.* entry; a deny policy naming one is
# refused). Roles carrying them tier as escalation instead, and roles/owner does not hold them.
GUARDRAIL_PERMISSIONS: tuple[str, ...] = (
    *PERSISTENCE_PERMISSIONS,
    *SELF_DESCRIPTION_PERMISSIONS,
    "iam.serviceAccounts.actAs",
    "iam.serviceAccounts.setIamPolicy",
    "iam.roles.create",
    "iam.roles.update",
    "resourcemanager.projects.setIamPolicy",
    "resourcemanager.folders.setIamPolicy",
    "resourcemanager.organizations.setIamPolicy",
    "orgpolicy.policy.set",
)
# Which catalogued permissions the catalogued roles carry (enough to open exemptions).
ROLE_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    "roles/owner": GUARDRAIL_PERMISSIONS,
    "roles/editor": (
        "iam.serviceAccounts.actAs",
        *SELF_DESCRIPTION_PERMISSIONS,
        "storage.hmacKeys.create",
        "apikeys.keys.create",
    ),
    "roles/iam.serviceAccountKeyAdmin": ("iam.serviceAccountKeys.create",),
    "roles/iam.serviceAccountTokenCreator": (
        "iam.serviceAccounts.getAccessToken",
        "iam.serviceAccounts.signBlob",
        "iam.serviceAccounts.signJwt",
        "iam.serviceAccounts.implicitDelegation",
        "iam.serviceAccounts.getOpenIdToken",
    ),
    "roles/iam.serviceAccountOpenIdTokenCreator": ("iam.serviceAccounts.getOpenIdToken",),
    "roles/iam.serviceAccountUser": ("iam.serviceAccounts.actAs",),
    "roles/iam.serviceAccountAdmin": (
        "iam.serviceAccounts.setIamPolicy",
        *SELF_DESCRIPTION_PERMISSIONS,
    ),
    "roles/storage.hmacKeyAdmin": ("storage.hmacKeys.create",),
    "roles/serviceusage.apiKeysAdmin": ("apikeys.keys.create", "serviceusage.apiKeys.create"),
    "roles/iam.denyAdmin": DENY_POLICY_PERMISSIONS,
    "roles/orgpolicy.policyAdmin": ("orgpolicy.policy.set",),
    "roles/compute.instanceAdmin": ("iam.serviceAccounts.actAs",),
    "roles/iam.roleAdmin": ("iam.roles.create", "iam.roles.update"),
    "roles/iam.securityAdmin": (
        "resourcemanager.projects.setIamPolicy",
        "iam.serviceAccounts.setIamPolicy",
    ),
    "roles/resourcemanager.projectIamAdmin": ("resourcemanager.projects.setIamPolicy",),
    "roles/resourcemanager.folderAdmin": ("resourcemanager.folders.setIamPolicy",),
    "roles/resourcemanager.organizationAdmin": ("resourcemanager.organizations.setIamPolicy",),
}


# By lower-cased name: no two of Google's permissions differ only in case.
_BY_FOLDED_NAME: Mapping[str, tuple[ActionCategory, str]] = {
    permission.lower(): found for permission, found in catalog_gcp_permissions.PERMISSIONS.items()
}


def permission_category(permission: str) -> tuple[ActionCategory, str] | None:
    """Return the category (and its source) of one IAM permission, or None when harmless.

    Exact names first (in any case), then the suffix rules: every `setIamPolicy` changes who
    may do what, so it is escalation on any resource type.
    """
    found = _BY_FOLDED_NAME.get(permission.lower())
    if found is not None:
        return found
    for suffix, category, source in catalog_gcp_permissions.SUFFIX_RULES:
        if permission.lower().endswith(suffix.lower()):
            return category, source
    return None


CUSTOM_ROLE_REASON = "custom role: its permissions are not resolved, so it is treated as escalation"


def is_custom_role(text: str) -> bool:
    """Say whether the text names a project's or organization's custom role."""
    return is_role(text) and not text.startswith("roles/")


def is_role(text: str) -> bool:
    """Say whether the text is a predefined or custom IAM role name."""
    return ROLE_PATTERN.fullmatch(text) is not None


def is_permission(text: str) -> bool:
    """Say whether the text is an IAM permission name like `storage.objects.get`."""
    return PERMISSION_PATTERN.fullmatch(text) is not None


def grants_permission(approved: tuple[str, ...] | list[str], permission: str) -> bool:
    """Say whether an approved role (or the permission itself) carries the permission."""
    return any(
        item == permission or permission in ROLE_PERMISSIONS.get(item, ()) for item in approved
    )
