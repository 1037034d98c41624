"""The IAM permissions the GCP provider calls, by purpose.

Leash's own service account needs them on every scanned project (or on the folders or the
organization above them): the read set for discovery and usage, the write set for grants,
restrictions, quarantine and guardrails.
"""

from __future__ import annotations

from cloud.gcp.quarantine import QUARANTINE_PERMISSIONS
from cloud.gcp.usage import USAGE_PERMISSIONS

ORGANIZATION_PERMISSIONS = ("resourcemanager.projects.list", "resourcemanager.folders.list")
DISCOVERY_PERMISSIONS = (
    "resourcemanager.projects.get",
    "resourcemanager.projects.getIamPolicy",
    "iam.serviceAccounts.list",
    "iam.serviceAccountKeys.list",
)
GRANT_PERMISSIONS = (
    "resourcemanager.projects.getIamPolicy",
    "resourcemanager.projects.setIamPolicy",
)
DENY_POLICY_PERMISSIONS = (
    "iam.denypolicies.get",
    "iam.denypolicies.list",
    "iam.denypolicies.create",
    "iam.denypolicies.update",
    "iam.denypolicies.delete",
)


def unique(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """Concatenate permission tuples, keeping the first occurrence of each."""
    return tuple(dict.fromkeys(permission for group in groups for permission in group))


READ_PERMISSIONS = unique(ORGANIZATION_PERMISSIONS, DISCOVERY_PERMISSIONS, USAGE_PERMISSIONS)
WRITE_PERMISSIONS = unique(GRANT_PERMISSIONS, DENY_POLICY_PERMISSIONS, QUARANTINE_PERMISSIONS)
