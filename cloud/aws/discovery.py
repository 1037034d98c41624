"""Read one account's IAM roles and users as `DiscoveredIdentity` values (blocking calls)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cloud.aws.errors import is_not_found, translate
from cloud.aws.policy_document import trust_principals
from cloud.base import DiscoveredIdentity, IdentityKind, IdentityRef

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import RoleTypeDef, TagTypeDef, UserTypeDef

PROVIDER = "aws"
SSO_ROLE_PREFIX = "AWSReservedSSO_"
SERVICE_LINKED_PATH = "/aws-service-role/"


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """Which identities discovery leaves out."""

    include_service_linked: bool = False
    include_sso: bool = False
    # Leash's own roles: never inventoried, so never granted to, restricted or reconciled.
    own_roles: frozenset[str] = frozenset()

    def skips(self, role: RoleTypeDef) -> bool:
        """Say whether a role is left out of discovery."""
        if role["RoleName"] in self.own_roles:
            return True
        if not self.include_sso and role["RoleName"].startswith(SSO_ROLE_PREFIX):
            return True
        return not self.include_service_linked and role["Path"].startswith(SERVICE_LINKED_PATH)


def scan_account(iam: IAMClient, account: str, options: ScanOptions) -> list[DiscoveredIdentity]:
    """List the roles and users of one account, with tags, trust, last use and policies."""
    return [*_roles(iam, account, options), *_users(iam, account)]


def _roles(iam: IAMClient, account: str, options: ScanOptions) -> list[DiscoveredIdentity]:
    target = f"roles in account {account}"
    found: list[DiscoveredIdentity] = []
    try:
        pages = list(iam.get_paginator("list_roles").paginate())
    except Exception as error:
        raise translate(error, operation="ListRoles", target=target) from error
    for listed in (role for page in pages for role in page["Roles"]):
        if options.skips(listed):
            continue
        name = listed["RoleName"]
        try:
            # GetRole is the one call that returns tags, trust and RoleLastUsed together.
            role = iam.get_role(RoleName=name)["Role"]
            attached, inline = _policies(iam, IdentityKind.ROLE, name)
        except Exception as error:
            if is_not_found(error):  # deleted while we were listing
                continue
            raise translate(
                error,
                operation="GetRole/ListAttachedRolePolicies/ListRolePolicies",
                target=f"role {name} in account {account}",
            ) from error
        found.append(
            DiscoveredIdentity(
                ref=IdentityRef(
                    provider=PROVIDER,
                    account=account,
                    native_id=role["Arn"],
                    name=name,
                    kind=IdentityKind.ROLE,
                ),
                tags=_tags(role.get("Tags", [])),
                trust_principals=trust_principals(role.get("AssumeRolePolicyDocument", "{}")),
                created_at=role["CreateDate"],
                last_used_at=role.get("RoleLastUsed", {}).get("LastUsedDate"),
                attached_policies=attached,
                inline_policies=inline,
            )
        )
    return found


def _users(iam: IAMClient, account: str) -> list[DiscoveredIdentity]:
    found: list[DiscoveredIdentity] = []
    try:
        pages = list(iam.get_paginator("list_users").paginate())
    except Exception as error:
        raise translate(
            error, operation="ListUsers", target=f"users in account {account}"
        ) from error
    for user in (user for page in pages for user in page["Users"]):
        name = user["UserName"]
        try:
            tags = [
                tag
                for page in iam.get_paginator("list_user_tags").paginate(UserName=name)
                for tag in page["Tags"]
            ]
            last_used = _user_last_used(iam, user)
            attached, inline = _policies(iam, IdentityKind.USER, name)
        except Exception as error:
            if is_not_found(error):
                continue
            raise translate(
                error,
                operation="ListUserTags/ListAccessKeys/ListAttachedUserPolicies/ListUserPolicies",
                target=f"user {name} in account {account}",
            ) from error
        found.append(
            DiscoveredIdentity(
                ref=IdentityRef(
                    provider=PROVIDER,
                    account=account,
                    native_id=user["Arn"],
                    name=name,
                    kind=IdentityKind.USER,
                ),
                tags=_tags(tags),
                created_at=user["CreateDate"],
                last_used_at=last_used,
                attached_policies=attached,
                inline_policies=inline,
            )
        )
    return found


def _user_last_used(iam: IAMClient, user: UserTypeDef) -> datetime | None:
    """Return the latest use of the user's password or any of its access keys."""
    moments: list[datetime] = []
    if "PasswordLastUsed" in user:
        moments.append(user["PasswordLastUsed"])
    for page in iam.get_paginator("list_access_keys").paginate(UserName=user["UserName"]):
        for key in page["AccessKeyMetadata"]:
            used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
            last = used["AccessKeyLastUsed"].get("LastUsedDate")
            if last is not None:
                moments.append(last)
    return max(moments, default=None)


def _policies(
    iam: IAMClient, kind: IdentityKind, name: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the managed policy ARNs attached to a role or user, and its inline policy names."""
    if kind is IdentityKind.ROLE:
        attached = [
            policy["PolicyArn"]
            for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
            for policy in page["AttachedPolicies"]
        ]
        inline = [
            policy
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
            for policy in page["PolicyNames"]
        ]
    else:
        attached = [
            policy["PolicyArn"]
            for page in iam.get_paginator("list_attached_user_policies").paginate(UserName=name)
            for policy in page["AttachedPolicies"]
        ]
        inline = [
            policy
            for page in iam.get_paginator("list_user_policies").paginate(UserName=name)
            for policy in page["PolicyNames"]
        ]
    return tuple(sorted(attached)), tuple(sorted(inline))


def _tags(tags: list[TagTypeDef]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}
