"""Read one account's IAM roles and users as `DiscoveredIdentity` values (blocking calls)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cloud.aws.clients import AccountClients
from cloud.aws.errors import is_not_found, translate
from cloud.aws.policy_document import trust_principals
from cloud.aws.provenance import LookupThrottle, OwnPrincipals, iam_trail_region, trace_account
from cloud.base import CloudError, DiscoveredIdentity, IdentityKind, IdentityRef, Provenance

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import (
        AttachedPolicyTypeDef,
        RoleDetailTypeDef,
        TagTypeDef,
        UserDetailTypeDef,
        UserTypeDef,
    )

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

    def skips(self, role: RoleDetailTypeDef) -> bool:
        """Say whether a role is left out of discovery."""
        if role["RoleName"] in self.own_roles:
            return True
        if not self.include_sso and role["RoleName"].startswith(SSO_ROLE_PREFIX):
            return True
        return not self.include_service_linked and role.get("Path", "/").startswith(
            SERVICE_LINKED_PATH
        )


def scan_account(iam: IAMClient, account: str, options: ScanOptions) -> list[DiscoveredIdentity]:
    """List the roles and users of one account, with tags, trust, last use and policies.

    One paginated GetAccountAuthorizationDetails returns every role and user with its tags,
    trust policy, last use and policies (a few calls per account instead of four per role);
    ListUsers adds the users' password use, and each user's access keys their last use.
    """
    try:
        pages = list(
            iam.get_paginator("get_account_authorization_details").paginate(Filter=["Role", "User"])
        )
    except Exception as error:
        raise translate(
            error,
            operation="GetAccountAuthorizationDetails",
            target=f"roles and users in account {account}",
        ) from error
    roles = [role for page in pages for role in page.get("RoleDetailList", [])]
    users = [user for page in pages for user in page.get("UserDetailList", [])]
    return [
        *(_role(role, account) for role in roles if not options.skips(role)),
        *_users(iam, account, users),
    ]


def _role(role: RoleDetailTypeDef, account: str) -> DiscoveredIdentity:
    return DiscoveredIdentity(
        ref=IdentityRef(
            provider=PROVIDER,
            account=account,
            native_id=role["Arn"],
            name=role["RoleName"],
            kind=IdentityKind.ROLE,
        ),
        tags=_tags(role.get("Tags", [])),
        trust_principals=trust_principals(role.get("AssumeRolePolicyDocument", "{}")),
        created_at=role["CreateDate"],
        last_used_at=role.get("RoleLastUsed", {}).get("LastUsedDate"),
        attached_policies=_attached(role.get("AttachedManagedPolicies", [])),
        inline_policies=tuple(sorted(p["PolicyName"] for p in role.get("RolePolicyList", []))),
    )


def _users(
    iam: IAMClient, account: str, details: list[UserDetailTypeDef]
) -> list[DiscoveredIdentity]:
    found: list[DiscoveredIdentity] = []
    try:
        # Only ListUsers says when a user's password was last used.
        listed = {
            user["UserName"]: user
            for page in iam.get_paginator("list_users").paginate()
            for user in page["Users"]
        }
    except Exception as error:
        raise translate(
            error, operation="ListUsers", target=f"users in account {account}"
        ) from error
    for detail in details:
        name = detail["UserName"]
        try:
            last_used = _user_last_used(iam, name, listed.get(name))
        except Exception as error:
            if is_not_found(error):  # deleted since the details were read
                continue
            raise translate(
                error,
                operation="ListAccessKeys/GetAccessKeyLastUsed",
                target=f"user {name} in account {account}",
            ) from error
        found.append(
            DiscoveredIdentity(
                ref=IdentityRef(
                    provider=PROVIDER,
                    account=account,
                    native_id=detail["Arn"],
                    name=name,
                    kind=IdentityKind.USER,
                ),
                tags=_tags(detail.get("Tags", [])),
                created_at=detail["CreateDate"],
                last_used_at=last_used,
                attached_policies=_attached(detail.get("AttachedManagedPolicies", [])),
                inline_policies=tuple(
                    sorted(p["PolicyName"] for p in detail.get("UserPolicyList", []))
                ),
            )
        )
    return found


def _user_last_used(iam: IAMClient, name: str, user: UserTypeDef | None) -> datetime | None:
    """Return the latest use of the user's password or any of its access keys."""
    moments: list[datetime] = []
    if user is not None and "PasswordLastUsed" in user:
        moments.append(user["PasswordLastUsed"])
    for page in iam.get_paginator("list_access_keys").paginate(UserName=name):
        for key in page["AccessKeyMetadata"]:
            used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
            last = used["AccessKeyLastUsed"].get("LastUsedDate")
            if last is not None:
                moments.append(last)
    return max(moments, default=None)


def _attached(policies: Sequence[AttachedPolicyTypeDef]) -> tuple[str, ...]:
    """The ARNs of attached managed policies, sorted."""
    return tuple(sorted(policy["PolicyArn"] for policy in policies))


def _tags(tags: list[TagTypeDef]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


ORGANIZATIONS_SCOPE = "organizations"
CLOUDTRAIL_SCOPE = "cloudtrail"  # failures key: "<account>:cloudtrail"


@dataclass(frozen=True, slots=True)
class AccountDiscovery:
    """Which accounts discovery reads and how (blocking calls, run in worker threads).

    Accounts are the organization's active members (only the configured ones, when some are),
    else the configured accounts, else the caller's own. With `trace_provenance`, each
    account's CloudTrail names who created its identities and who granted them permissions.
    """

    clients: AccountClients
    accounts: tuple[str, ...]
    use_organizations: bool
    read_role_name: str
    options: ScanOptions
    region: str
    trace_provenance: bool
    throttle: LookupThrottle
    max_lookup_pages: int

    def _configured_or_home(self) -> tuple[str, ...]:
        return self.accounts or (self.clients.home_account(),)

    def accounts_to_scan(self, failures: dict[str, str]) -> tuple[str, ...]:
        """Return the accounts to scan, recording why any configured one will not be."""
        if not self.use_organizations:
            return self._configured_or_home()
        try:
            pages = self.clients.organizations().get_paginator("list_accounts").paginate()
            members = [
                account["Id"]
                for page in pages
                for account in page["Accounts"]
                if account.get("Status", "ACTIVE") == "ACTIVE"
            ]
        except Exception as error:
            failures[ORGANIZATIONS_SCOPE] = str(
                translate(error, operation="ListAccounts", target="the organization")
            )
            return self._configured_or_home()
        if not members:  # AWS raises AWSOrganizationsNotInUse here; moto lists nothing
            failures[ORGANIZATIONS_SCOPE] = (
                "AWS Organizations listed no active accounts; scanning only "
                + ("the configured accounts" if self.accounts else "the current account")
            )
            return self._configured_or_home()
        if not self.accounts:
            return tuple(members)
        for account in self.accounts:
            if account not in members:
                failures[account] = f"account {account} is not an active member of the organization"
        return tuple(account for account in members if account in self.accounts)

    def scan(self, account: str, failures: dict[str, str]) -> list[DiscoveredIdentity]:
        """Scan one account through the read role, with provenance when asked for."""
        iam = self.clients.iam(account, role_name=self.read_role_name)
        found = scan_account(iam, account, self.options)
        if not self.trace_provenance or not found:
            return found
        scope = f"{account}:{CLOUDTRAIL_SCOPE}"
        try:
            cloudtrail = self.clients.cloudtrail(
                account, role_name=self.read_role_name, region=iam_trail_region(self.region)
            )
            own = OwnPrincipals.of(self.options.own_roles, self.clients.caller_arn())
            traced, note = trace_account(
                cloudtrail,
                account,
                own=own,
                throttle=self.throttle,
                now=datetime.now(UTC),
                kinds={identity.ref.kind for identity in found},
                max_pages=self.max_lookup_pages,
            )
        except CloudError as error:
            failures[scope] = str(error)
            return found
        if note:
            failures[scope] = note
        return [_with_provenance(identity, traced) for identity in found]


def _with_provenance(
    identity: DiscoveredIdentity, traced: dict[tuple[IdentityKind, str], Provenance]
) -> DiscoveredIdentity:
    found = traced.get((identity.ref.kind, identity.ref.name))
    if found is None:
        return identity
    return dataclasses.replace(identity, created_by=found.created_by, granted_by=found.granted_by)
