"""IAM calls on one role or user: inline and managed policies, tags, and undoing a write.

Every function takes the IAM client and the identity, works alike for roles and users, and
raises only `CloudError` (translated at this edge, naming the operation and the identity).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cloud.aws.errors import is_not_found, translate
from cloud.aws.policy_document import INLINE_POLICY_BUDGET, compact
from cloud.base import CloudError, IdentityKind, IdentityRef

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import TagTypeDef

# What restrict / unrestrict, quarantine / release and the guardrail call, for Leash's own role.
ENFORCEMENT_PERMISSIONS = (
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:ListUserPolicies",
    "iam:GetUserPolicy",
    "iam:PutUserPolicy",
    "iam:DeleteUserPolicy",
    "iam:ListAttachedRolePolicies",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:ListAttachedUserPolicies",
    "iam:AttachUserPolicy",
    "iam:DetachUserPolicy",
    "iam:ListRoleTags",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:ListUserTags",
    "iam:TagUser",
    "iam:UntagUser",
    "iam:CreatePolicy",
    "iam:DeletePolicy",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:ListPolicyVersions",
)

# AWS caps the sum of an identity's inline policies (whitespace not counted): 10,240 characters
# for a role, 2,048 for a user. One managed policy document may hold 6,144.
ROLE_INLINE_BUDGET = INLINE_POLICY_BUDGET
USER_INLINE_BUDGET = 2_048
MANAGED_POLICY_BUDGET = 6_144
LEASH_POLICY_PATH = "/leash/"
MAX_POLICY_NAME = 128


def describe(identity: IdentityRef) -> str:
    """Name an identity in error messages."""
    return f"{identity.kind} {identity.name} in account {identity.account}"


def _fail(error: Exception, operation: str, identity: IdentityRef) -> CloudError:
    return translate(error, operation=operation, target=describe(identity))


def _is_role(identity: IdentityRef) -> bool:
    return identity.kind is IdentityKind.ROLE


def _op(identity: IdentityRef, template: str) -> str:
    """Spell an IAM operation for the identity's kind: `Put{}Policy` -> `PutRolePolicy`."""
    return template.format("Role" if _is_role(identity) else "User")


def inline_budget(identity: IdentityRef) -> int:
    """Return how many characters the identity's inline policies may hold together."""
    return ROLE_INLINE_BUDGET if _is_role(identity) else USER_INLINE_BUDGET


def policy_names(iam: IAMClient, identity: IdentityRef) -> list[str]:
    """List the identity's inline policy names."""
    try:
        if _is_role(identity):
            pages = iam.get_paginator("list_role_policies").paginate(RoleName=identity.name)
            return [name for page in pages for name in page["PolicyNames"]]
        user_pages = iam.get_paginator("list_user_policies").paginate(UserName=identity.name)
        return [name for page in user_pages for name in page["PolicyNames"]]
    except Exception as error:
        raise _fail(error, _op(identity, "List{}Policies"), identity) from error


def get_document(iam: IAMClient, identity: IdentityRef, name: str) -> str | None:
    """Return one inline policy as compact JSON, or None when it does not exist."""
    try:
        if _is_role(identity):
            role = iam.get_role_policy(RoleName=identity.name, PolicyName=name)
            document = role["PolicyDocument"]
        else:
            user = iam.get_user_policy(UserName=identity.name, PolicyName=name)
            document = user["PolicyDocument"]
    except Exception as error:
        if is_not_found(error):
            return None
        raise _fail(error, f"{_op(identity, 'Get{}Policy')} {name}", identity) from error
    return compact(document)


def documents(
    iam: IAMClient, identity: IdentityRef, names: Collection[str] | None = None
) -> dict[str, str]:
    """Return the identity's inline policies (or those of `names`) as compact JSON by name."""
    found: dict[str, str] = {}
    for name in policy_names(iam, identity) if names is None else names:
        document = get_document(iam, identity, name)
        if document is not None:  # None: deleted between listing and reading
            found[name] = document
    return found


def inline_size(iam: IAMClient, identity: IdentityRef, *, excluding: Collection[str] = ()) -> int:
    """Sum the compact sizes of the inline policies, leaving out those named in `excluding`."""
    names = [name for name in policy_names(iam, identity) if name not in excluding]
    return sum(len(document) for document in documents(iam, identity, names).values())


def _operation(identity: IdentityRef, template: str, name: str, *, named: bool) -> str:
    """Spell the operation for error messages, with the policy's name unless `named` is off."""
    operation = _op(identity, template)
    return f"{operation} {name}" if named else operation


def put_document(
    iam: IAMClient, identity: IdentityRef, name: str, document: str, *, named: bool = True
) -> None:
    """Create or replace one inline policy (`named`: errors name the policy)."""
    try:
        if _is_role(identity):
            iam.put_role_policy(RoleName=identity.name, PolicyName=name, PolicyDocument=document)
        else:
            iam.put_user_policy(UserName=identity.name, PolicyName=name, PolicyDocument=document)
    except Exception as error:
        operation = _operation(identity, "Put{}Policy", name, named=named)
        raise _fail(error, operation, identity) from error


def delete_document(
    iam: IAMClient, identity: IdentityRef, name: str, *, named: bool = True
) -> bool:
    """Delete one inline policy; False when it (or the identity) was not there."""
    try:
        if _is_role(identity):
            iam.delete_role_policy(RoleName=identity.name, PolicyName=name)
        else:
            iam.delete_user_policy(UserName=identity.name, PolicyName=name)
    except Exception as error:
        if is_not_found(error):
            return False
        operation = _operation(identity, "Delete{}Policy", name, named=named)
        raise _fail(error, operation, identity) from error
    return True


def attached_policies(iam: IAMClient, identity: IdentityRef) -> list[str]:
    """List the ARNs of the managed policies attached to the identity."""
    try:
        if _is_role(identity):
            pages = iam.get_paginator("list_attached_role_policies").paginate(
                RoleName=identity.name
            )
            return [p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]]
        user_pages = iam.get_paginator("list_attached_user_policies").paginate(
            UserName=identity.name
        )
        return [p["PolicyArn"] for page in user_pages for p in page["AttachedPolicies"]]
    except Exception as error:
        raise _fail(error, _op(identity, "ListAttached{}Policies"), identity) from error


def attach(iam: IAMClient, identity: IdentityRef, arn: str) -> None:
    """Attach a managed policy to the identity."""
    try:
        if _is_role(identity):
            iam.attach_role_policy(RoleName=identity.name, PolicyArn=arn)
        else:
            iam.attach_user_policy(UserName=identity.name, PolicyArn=arn)
    except Exception as error:
        raise _fail(error, f"{_op(identity, 'Attach{}Policy')} {arn}", identity) from error


def detach(iam: IAMClient, identity: IdentityRef, arn: str) -> bool:
    """Detach a managed policy from the identity; False when it was not attached."""
    try:
        if _is_role(identity):
            iam.detach_role_policy(RoleName=identity.name, PolicyArn=arn)
        else:
            iam.detach_user_policy(UserName=identity.name, PolicyArn=arn)
    except Exception as error:
        if is_not_found(error):
            return False
        raise _fail(error, f"{_op(identity, 'Detach{}Policy')} {arn}", identity) from error
    return True


def tags(iam: IAMClient, identity: IdentityRef) -> dict[str, str]:
    """Return the identity's tags."""
    found: dict[str, str] = {}
    try:
        if _is_role(identity):
            for page in iam.get_paginator("list_role_tags").paginate(RoleName=identity.name):
                found.update((tag["Key"], tag["Value"]) for tag in page["Tags"])
        else:
            for page in iam.get_paginator("list_user_tags").paginate(UserName=identity.name):
                found.update((tag["Key"], tag["Value"]) for tag in page["Tags"])
    except Exception as error:
        raise _fail(error, _op(identity, "List{}Tags"), identity) from error
    return found


def set_tags(iam: IAMClient, identity: IdentityRef, values: Mapping[str, str]) -> None:
    """Add or overwrite tags on the identity."""
    if not values:
        return
    pairs: list[TagTypeDef] = [{"Key": key, "Value": value} for key, value in values.items()]
    try:
        if _is_role(identity):
            iam.tag_role(RoleName=identity.name, Tags=pairs)
        else:
            iam.tag_user(UserName=identity.name, Tags=pairs)
    except Exception as error:
        raise _fail(error, _op(identity, "Tag{}"), identity) from error


def remove_tags(iam: IAMClient, identity: IdentityRef, keys: Collection[str]) -> None:
    """Remove tags from the identity (absent keys are ignored by IAM)."""
    if not keys:
        return
    try:
        if _is_role(identity):
            iam.untag_role(RoleName=identity.name, TagKeys=list(keys))
        else:
            iam.untag_user(UserName=identity.name, TagKeys=list(keys))
    except Exception as error:
        raise _fail(error, _op(identity, "Untag{}"), identity) from error


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    """A customer-managed policy as Leash reads it: default document and attachment count."""

    arn: str
    default_version: str
    document: str
    attachments: int


def artefact_policy_name(artefact: str, identity: IdentityRef) -> str:
    """Name the customer-managed policy that carries `artefact` for one identity."""
    return f"{artefact}-{identity.name}"[:MAX_POLICY_NAME]


def managed_policy_arn(identity: IdentityRef, name: str) -> str:
    """Return the ARN Leash's managed policy `name` has in the identity's account."""
    parts = identity.native_id.split(":")
    partition = parts[1] if identity.native_id.startswith("arn:") and len(parts) > 1 else "aws"
    return f"arn:{partition}:iam::{identity.account}:policy{LEASH_POLICY_PATH}{name}"


def default_version(iam: IAMClient, identity: IdentityRef, arn: str) -> str | None:
    """Return the id of a managed policy's default version; None when the policy is gone."""
    try:
        return iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    except Exception as error:
        if is_not_found(error):
            return None
        raise _fail(error, f"GetPolicy {arn}", identity) from error


def is_leash_policy(arn: str) -> bool:
    """Say whether a managed policy ARN names one of Leash's own artefacts."""
    _, _, path_and_name = arn.partition(":policy")
    return path_and_name.startswith(f"{LEASH_POLICY_PATH}leash-")


def get_managed(iam: IAMClient, identity: IdentityRef, arn: str) -> ManagedPolicy | None:
    """Read a managed policy's default document; None when the policy does not exist."""
    try:
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
        version = policy["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
    except Exception as error:
        if is_not_found(error):
            return None
        raise _fail(error, f"GetPolicy {arn}", identity) from error
    return ManagedPolicy(
        arn=arn,
        default_version=version,
        document=compact(document.get("Document", "{}")),
        attachments=int(policy.get("AttachmentCount", 0)),
    )


def create_managed(iam: IAMClient, identity: IdentityRef, name: str, document: str) -> str:
    """Create a customer-managed policy under Leash's path; return its ARN."""
    try:
        created = iam.create_policy(
            PolicyName=name,
            Path=LEASH_POLICY_PATH,
            PolicyDocument=document,
            Description=f"Written by Leash for {identity.kind} {identity.name}"[:1000],
        )
    except Exception as error:
        raise _fail(error, f"CreatePolicy {name}", identity) from error
    return created["Policy"]["Arn"]


def _versions(iam: IAMClient, identity: IdentityRef, arn: str) -> list[tuple[str, bool]]:
    try:
        pages = iam.get_paginator("list_policy_versions").paginate(PolicyArn=arn)
        return [
            (version["VersionId"], bool(version.get("IsDefaultVersion")))
            for page in pages
            for version in page["Versions"]
        ]
    except Exception as error:
        raise _fail(error, f"ListPolicyVersions {arn}", identity) from error


def _delete_old_versions(iam: IAMClient, identity: IdentityRef, arn: str) -> None:
    for version, default in _versions(iam, identity, arn):
        if default:
            continue
        try:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version)
        except Exception as error:
            if not is_not_found(error):
                raise _fail(error, f"DeletePolicyVersion {arn} {version}", identity) from error


def update_managed(iam: IAMClient, identity: IdentityRef, arn: str, document: str) -> None:
    """Make `document` the managed policy's only version."""
    # IAM keeps at most five versions: drop the old ones before and after adding the new one.
    _delete_old_versions(iam, identity, arn)
    try:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
    except Exception as error:
        raise _fail(error, f"CreatePolicyVersion {arn}", identity) from error
    _delete_old_versions(iam, identity, arn)


def delete_managed(iam: IAMClient, identity: IdentityRef, arn: str) -> bool:
    """Delete a (detached) managed policy with all its versions; False when it was gone."""
    try:
        _delete_old_versions(iam, identity, arn)
    except CloudError as error:
        if error.code in {"NoSuchEntity", "NoSuchEntityException"}:
            return False
        raise
    try:
        iam.delete_policy(PolicyArn=arn)
    except Exception as error:
        if is_not_found(error):
            return False
        raise _fail(error, f"DeletePolicy {arn}", identity) from error
    return True


class UndoLog:
    """Steps that undo the writes made so far, run newest first when a later write fails."""

    def __init__(self) -> None:
        self._steps: list[Callable[[], object]] = []

    def add(self, step: Callable[[], object]) -> None:
        """Remember how to undo the write that just succeeded."""
        self._steps.append(step)

    def rollback(self, error: BaseException) -> None:
        """Undo every remembered write; a failing undo is noted on `error`, not raised."""
        while self._steps:
            step = self._steps.pop()
            try:
                step()
            except Exception as failure:  # keep undoing: the caller raises the first error
                error.add_note(f"undoing an earlier write also failed: {failure}")
