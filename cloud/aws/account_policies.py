"""One read of an account's roles and managed policies, shared by a scan's usage reads.

Reading a role's policies one call at a time costs GetRole, ListRolePolicies, a GetRolePolicy
per inline policy, ListAttachedRolePolicies and two calls per managed policy. For a scan of
every role in an account, GetAccountAuthorizationDetails returns all of it in a few pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

FILTER: Final = ("Role", "LocalManagedPolicy", "AWSManagedPolicy")


@dataclass(frozen=True, slots=True)
class RolePolicies:
    """What a scan needs of one role: its ARN, last use, and policies."""

    arn: str
    last_used: tuple[datetime, ...]
    inline: tuple[tuple[str, Any], ...]  # (policy name, document)
    attached: tuple[tuple[str, str], ...]  # (policy name, policy ARN)


@dataclass(frozen=True, slots=True)
class AccountPolicies:
    """Every role of one account, and the default document of each managed policy in use."""

    roles: Mapping[str, RolePolicies]
    managed: Mapping[str, Any]  # policy ARN -> default version's document

    @classmethod
    def read(cls, iam: IAMClient) -> AccountPolicies:
        """Page through GetAccountAuthorizationDetails (roles and managed policies)."""
        roles: dict[str, RolePolicies] = {}
        managed: dict[str, Any] = {}
        paginator = iam.get_paginator("get_account_authorization_details")
        for page in paginator.paginate(Filter=FILTER):
            for role in page.get("RoleDetailList", []):
                last = role.get("RoleLastUsed", {}).get("LastUsedDate")
                roles[role["RoleName"]] = RolePolicies(
                    arn=role["Arn"],
                    last_used=(last,) if last is not None else (),
                    inline=tuple(
                        (policy["PolicyName"], policy["PolicyDocument"])
                        for policy in role.get("RolePolicyList", [])
                    ),
                    attached=tuple(
                        (policy["PolicyName"], policy["PolicyArn"])
                        for policy in role.get("AttachedManagedPolicies", [])
                    ),
                )
            for policy in page.get("Policies", []):
                for version in policy.get("PolicyVersionList", []):
                    if version.get("IsDefaultVersion"):
                        managed[policy["Arn"]] = version["Document"]
        return cls(roles=roles, managed=managed)
