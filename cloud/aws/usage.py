"""Granted versus used permissions of one role or user, from IAM Access Advisor (blocking calls).

`read_usage` reads the identity's Allow statements (inline policies other than Leash's own,
attached managed policies' default versions, and a user's groups' policies), runs an
action-level Access Advisor job, and hands both to `assess`, which is pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar

from cloud.aws.account_policies import AccountPolicies, RolePolicies
from cloud.aws.discovery import PROVIDER
from cloud.aws.errors import is_not_found, translate
from cloud.aws.policy_document import decode
from cloud.aws.tracked_actions import assess
from cloud.base import (
    GRANT_ARTEFACT_PREFIX,
    GUARDRAIL_ARTEFACT,
    QUARANTINE_ARTEFACT,
    RESTRICT_ARTEFACT,
    CloudConfigurationError,
    IdentityKind,
    IdentityRef,
    UsageReport,
    UsageStatus,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import (
        GetServiceLastAccessedDetailsResponseTypeDef,
        ServiceLastAccessedTypeDef,
    )

USAGE_PERMISSIONS = (
    "iam:GenerateServiceLastAccessedDetails",
    "iam:GetServiceLastAccessedDetails",
    "iam:GetRole",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:GetUser",
    "iam:ListUserPolicies",
    "iam:GetUserPolicy",
    "iam:ListAttachedUserPolicies",
    "iam:ListGroupsForUser",
    "iam:ListGroupPolicies",
    "iam:GetGroupPolicy",
    "iam:ListAttachedGroupPolicies",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
)
GRANULARITY: Final = "ACTION_LEVEL"
_T = TypeVar("_T")
# Leash's own artefacts say nothing about what the identity was given to do.
_LEASH_POLICIES = (RESTRICT_ARTEFACT, QUARANTINE_ARTEFACT, GUARDRAIL_ARTEFACT)


def is_leash_policy(name: str) -> bool:
    """Say whether a policy name is one of Leash's own (`leash-grant-*`, `leash-restrict`, ...)."""
    if name.startswith(GRANT_ARTEFACT_PREFIX):
        return True
    return any(name == own or name.startswith(f"{own}-") for own in _LEASH_POLICIES)


def read_usage(
    client: Callable[[], IAMClient],
    identity: IdentityRef,
    since: datetime,
    *,
    poll_interval: float,
    max_wait: float,
    snapshot: AccountPolicies | None = None,
) -> UsageReport:
    """Compare an identity's granted actions with Access Advisor's record since `since`.

    With a `snapshot` of the account (a scan's), a role's policies come from it, not from
    per-role reads; a role the snapshot does not hold is read as usual.
    """
    if since.tzinfo is None:
        raise CloudConfigurationError("usage needs a timezone-aware `since`")
    if identity.provider != PROVIDER:
        raise CloudConfigurationError(
            f"the aws provider cannot read {identity.provider} identity {identity.name}"
        )
    if identity.kind not in (IdentityKind.ROLE, IdentityKind.USER):
        raise CloudConfigurationError(
            f"the aws provider cannot read the usage of a {identity.kind} ({identity.name})"
        )
    iam = client()
    target = f"{identity.kind} {identity.name} in account {identity.account}"
    reader = _Reader(iam, target)
    known = snapshot.roles.get(identity.name) if snapshot is not None else None
    if known is not None and snapshot is not None and identity.kind is IdentityKind.ROLE:
        arn, last_used = known.arn, list(known.last_used)
        documents = reader.snapshot_documents(known, snapshot.managed)
    elif identity.kind is IdentityKind.ROLE:
        arn, last_used = reader.role(identity.name)
        documents = reader.role_documents(identity.name)
    else:
        arn, last_used = reader.user(identity.name)
        documents = reader.user_documents(identity.name)
    granted, not_actions = granted_actions(documents)
    notes = [f"{not_actions} NotAction statement(s) not counted as granted"] if not_actions else []
    services, failure = reader.last_accessed(arn, poll_interval=poll_interval, max_wait=max_wait)
    if services is None:
        return UsageReport(
            identity=identity,
            status=UsageStatus.UNKNOWN,
            since=since,
            granted=granted,
            last_activity_at=max(last_used, default=None),
            note="; ".join([failure, *notes]),
        )
    return assess(
        identity, since=since, granted=granted, services=services, last_used=last_used, notes=notes
    )


def granted_actions(documents: Iterable[Mapping[str, Any] | str]) -> tuple[tuple[str, ...], int]:
    """Return the distinct Allow action patterns, sorted, and how many NotAction statements."""
    found: set[str] = set()
    not_actions = 0
    for document in documents:
        statements = decode(document).get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement:
                not_actions += 1
            actions = statement.get("Action", [])
            found.update(str(a) for a in ([actions] if isinstance(actions, str) else actions))
    return tuple(sorted(found)), not_actions


class _Reader:
    """The IAM reads `read_usage` makes, each failure translated into a CloudError."""

    def __init__(self, iam: IAMClient, target: str) -> None:
        self.iam = iam
        self.target = target

    def _call(self, operation: str, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except Exception as error:
            raise translate(error, operation=operation, target=self.target) from error

    def _pages(self, operation: str, pages: Iterable[Any], key: str) -> list[Any]:
        """Collect `key` from every page (paginators call AWS only while iterated)."""
        return [item for page in self._call(operation, lambda: list(pages)) for item in page[key]]

    def role(self, name: str) -> tuple[str, list[datetime]]:
        role = self._call("GetRole", partial(self.iam.get_role, RoleName=name))["Role"]
        last = role.get("RoleLastUsed", {}).get("LastUsedDate")
        return role["Arn"], [last] if last is not None else []

    def user(self, name: str) -> tuple[str, list[datetime]]:
        user = self._call("GetUser", partial(self.iam.get_user, UserName=name))["User"]
        moments = [user["PasswordLastUsed"]] if "PasswordLastUsed" in user else []
        keys = self.iam.get_paginator("list_access_keys").paginate(UserName=name)
        for key in self._pages("ListAccessKeys", keys, "AccessKeyMetadata"):
            used = self._call(
                "GetAccessKeyLastUsed",
                partial(self.iam.get_access_key_last_used, AccessKeyId=key["AccessKeyId"]),
            )["AccessKeyLastUsed"].get("LastUsedDate")
            if used is not None:
                moments.append(used)
        return user["Arn"], moments

    def _optional(self, operation: str, call: Callable[[], _T]) -> _T | None:
        """Like `_call`, but None when the object went away since it was listed."""
        try:
            return call()
        except Exception as error:
            if is_not_found(error):
                return None
            raise translate(error, operation=operation, target=self.target) from error

    def _inline(self, kind: str, names: Iterable[Any], read: Callable[[str], Any]) -> list[Any]:
        """Read the documents of the inline policies `names` lists, Leash's own left out."""
        documents = [
            self._optional(f"Get{kind}Policy", partial(read, policy))
            for policy in self._pages(f"List{kind}Policies", names, "PolicyNames")
            if not is_leash_policy(policy)
        ]
        return [document for document in documents if document is not None]

    def role_documents(self, name: str) -> list[Any]:
        iam = self.iam
        documents = self._inline(
            "Role",
            iam.get_paginator("list_role_policies").paginate(RoleName=name),
            lambda policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"],
        )
        attached = iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
        return documents + self._managed(
            self._pages("ListAttachedRolePolicies", attached, "AttachedPolicies")
        )

    def snapshot_documents(self, role: RolePolicies, managed: Mapping[str, Any]) -> list[Any]:
        """A role's documents from an account snapshot; a managed policy it lacks is read."""
        documents = [document for name, document in role.inline if not is_leash_policy(name)]
        missing: list[Mapping[str, str]] = []
        for name, arn in role.attached:
            if is_leash_policy(name):
                continue
            if arn in managed:
                documents.append(managed[arn])
            else:
                missing.append({"PolicyName": name, "PolicyArn": arn})
        return documents + self._managed(missing)

    def user_documents(self, name: str) -> list[Any]:
        iam = self.iam
        documents = self._inline(
            "User",
            iam.get_paginator("list_user_policies").paginate(UserName=name),
            lambda policy: iam.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"],
        )
        pages = iam.get_paginator("list_attached_user_policies").paginate(UserName=name)
        attached = self._pages("ListAttachedUserPolicies", pages, "AttachedPolicies")
        groups = iam.get_paginator("list_groups_for_user").paginate(UserName=name)

        def read_group(group: str, policy: str) -> Any:
            return iam.get_group_policy(GroupName=group, PolicyName=policy)["PolicyDocument"]

        for group in self._pages("ListGroupsForUser", groups, "Groups"):
            group_name: str = group["GroupName"]
            documents += self._inline(
                "Group",
                iam.get_paginator("list_group_policies").paginate(GroupName=group_name),
                partial(read_group, group_name),
            )
            pages = iam.get_paginator("list_attached_group_policies").paginate(GroupName=group_name)
            attached += self._pages("ListAttachedGroupPolicies", pages, "AttachedPolicies")
        return documents + self._managed(attached)

    def _managed(self, attached: Iterable[Mapping[str, str]]) -> list[Any]:
        """Return the default version's document of each attached managed policy."""
        documents: list[Any] = []
        arns = {item["PolicyArn"] for item in attached if not is_leash_policy(item["PolicyName"])}
        for arn in sorted(arns):
            policy = self._optional("GetPolicy", partial(self.iam.get_policy, PolicyArn=arn))
            if policy is None:
                continue
            version = self._optional(
                "GetPolicyVersion",
                partial(
                    self.iam.get_policy_version,
                    PolicyArn=arn,
                    VersionId=policy["Policy"]["DefaultVersionId"],
                ),
            )
            if version is not None:
                documents.append(version["PolicyVersion"]["Document"])
        return documents

    def last_accessed(
        self, arn: str, *, poll_interval: float, max_wait: float
    ) -> tuple[list[ServiceLastAccessedTypeDef] | None, str]:
        """Run an action-level job; return its services, or None and why there are none."""
        job_id = self._call(
            "GenerateServiceLastAccessedDetails",
            partial(
                self.iam.generate_service_last_accessed_details, Arn=arn, Granularity=GRANULARITY
            ),
        )["JobId"]
        deadline = time.monotonic() + max_wait
        while True:
            page = self._details(job_id)
            if page["JobStatus"] == "COMPLETED":
                break
            if page["JobStatus"] == "FAILED":
                error = page.get("Error", {})
                why = f"({error.get('Code', 'unknown')}): {error.get('Message', 'no reason given')}"
                return None, f"Access Advisor job {job_id} failed {why}"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, f"Access Advisor job {job_id} did not complete within {max_wait:g} s"
            time.sleep(min(poll_interval, remaining))
        services = list(page["ServicesLastAccessed"])
        while page.get("IsTruncated") and page.get("Marker"):
            page = self._details(job_id, page["Marker"])
            services += page["ServicesLastAccessed"]
        return services, ""

    def _details(
        self, job_id: str, marker: str | None = None
    ) -> GetServiceLastAccessedDetailsResponseTypeDef:
        operation = "GetServiceLastAccessedDetails"
        if marker is None:
            return self._call(
                operation, partial(self.iam.get_service_last_accessed_details, JobId=job_id)
            )
        return self._call(
            operation,
            partial(self.iam.get_service_last_accessed_details, JobId=job_id, Marker=marker),
        )
