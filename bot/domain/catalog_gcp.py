"""Google Cloud's part of the privileged catalogue: roles by category, and the permissions the
guardrail denies and every elevation withholds.

Role and permission names are facts from Google's IAM reference
(https://cloud.google.com/iam/docs/understanding-roles, .../permissions-reference) and the
privilege-escalation research collected at https://github.com/RhinoSecurityLabs/GCP-IAM-Privilege-Escalation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

ROLE_PATTERN = re.compile(
    r"(?:roles|(?:projects|organizations)/[a-z0-9][a-z0-9.:-]{0,62}/roles)/[A-Za-z0-9_.]{1,128}"
)
PERMISSION_PATTERN = re.compile(r"[a-z][a-zA-Z0-9]*(?:\.[a-zA-Z0-9]+){2,3}")

SOURCE = "gcp-iam-privilege-escalation"

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
)
# Roles that mint credentials for a service account (keys, tokens, signed JWTs).
CREDENTIAL_ROLES: tuple[str, ...] = (
    "roles/iam.serviceAccountKeyAdmin",
    "roles/iam.serviceAccountTokenCreator",
    "roles/iam.serviceAccountOpenIdTokenCreator",
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
)
# What every agent's guardrail denies on Google Cloud (IAM deny policy).
GUARDRAIL_PERMISSIONS: tuple[str, ...] = (
    *PERSISTENCE_PERMISSIONS,
    "iam.serviceAccounts.actAs",
    "iam.serviceAccounts.setIamPolicy",
    "iam.roles.create",
    "iam.roles.update",
    "resourcemanager.projects.setIamPolicy",
    "resourcemanager.folders.setIamPolicy",
    "resourcemanager.organizations.setIamPolicy",
)
# Which catalogued permissions the catalogued roles carry (enough to open exemptions).
ROLE_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    "roles/owner": GUARDRAIL_PERMISSIONS,
    "roles/editor": ("iam.serviceAccounts.actAs",),
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
    "roles/iam.serviceAccountAdmin": ("iam.serviceAccounts.setIamPolicy",),
    "roles/iam.roleAdmin": ("iam.roles.create", "iam.roles.update"),
    "roles/iam.securityAdmin": (
        "resourcemanager.projects.setIamPolicy",
        "iam.serviceAccounts.setIamPolicy",
    ),
    "roles/resourcemanager.projectIamAdmin": ("resourcemanager.projects.setIamPolicy",),
    "roles/resourcemanager.folderAdmin": ("resourcemanager.folders.setIamPolicy",),
    "roles/resourcemanager.organizationAdmin": ("resourcemanager.organizations.setIamPolicy",),
}


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
