"""The IAM actions the AWS provider calls, by purpose and by the Leash role that carries them.

`manifests/aws/` allows exactly these, role by role; `tests/test_manifests.py` checks it.
"""

from __future__ import annotations

from cloud.aws.inline import ENFORCEMENT_PERMISSIONS
from cloud.aws.usage import USAGE_PERMISSIONS

# Who created and who granted to each identity (`trace_provenance`), in every account.
PROVENANCE_PERMISSIONS = ("cloudtrail:LookupEvents",)
DISCOVERY_PERMISSIONS = (
    "iam:GetAccountAuthorizationDetails",
    "iam:ListUsers",
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
    *PROVENANCE_PERMISSIONS,
)
GRANT_PERMISSIONS = (
    "iam:PutRolePolicy",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:DeleteRolePolicy",
    "iam:PutUserPolicy",
    "iam:GetUserPolicy",
    "iam:ListUserPolicies",
    "iam:DeleteUserPolicy",
)
ACCOUNT_PERMISSIONS = ("sts:GetCallerIdentity", "sts:AssumeRole")
ORGANIZATIONS_PERMISSIONS = ("organizations:ListAccounts",)


def unique(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """Concatenate action tuples, keeping the first occurrence of each action."""
    return tuple(dict.fromkeys(action for group in groups for action in group))


# The member READ role (`LeashReadOnly`): discovery, provenance and usage (Access Advisor).
READ_ROLE_PERMISSIONS = unique(DISCOVERY_PERMISSIONS, USAGE_PERMISSIONS)
# The member GRANT role (`LeashGrantManager`): grants, restrictions, quarantine, guardrails.
GRANT_ROLE_PERMISSIONS = unique(GRANT_PERMISSIONS, ENFORCEMENT_PERMISSIONS)
