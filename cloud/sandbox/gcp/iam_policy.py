"""Allow policies (google.iam.v1.Policy) as Resource Manager stores, checks and versions them."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from cloud.sandbox.gcp.cel_eval import syntax_error
from cloud.sandbox.gcp.state import SA_DOMAIN, ApiError, JsonObject, Status

MAX_CONDITIONAL_BINDINGS = 100
MAX_CONDITIONAL_PER_ROLE_AND_MEMBER = 20
MAX_PRINCIPALS = 1500
BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
MEMBER_PREFIXES = (
    "user:",
    "serviceAccount:",
    "group:",
    "domain:",
    "principal://",
    "principalSet://",
    "deleted:",
    "projectOwner:",
    "projectEditor:",
    "projectViewer:",
)
UPDATE_MASK_FIELDS = frozenset({"bindings", "etag", "auditConfigs", "version"})
CONCURRENT_CHANGE = (
    "There were concurrent policy changes. "
    "Please retry the whole read-modify-write with exponential backoff."
)
_CONDITION_FIELDS = ("title", "description", "expression")


def empty_policy(etag: str) -> JsonObject:
    """Return the policy of a resource nobody has written to."""
    return {"version": 1, "etag": etag, "bindings": []}


def etag_bytes(etag: str) -> bytes:
    """Decode a base64 etag, refusing anything else."""
    try:
        return base64.b64decode(etag.encode(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ApiError(Status.INVALID_ARGUMENT, f"Invalid etag: {etag!r}.") from error


def read_policy(stored: JsonObject, requested_version: int) -> JsonObject:
    """Return the policy as getIamPolicy answers when asked for `requested_version`."""
    # Asked for a version below 3, IAM hides conditions: each conditional binding loses its
    # condition and its role gains a `_withcond_<hash>` suffix, so that it cannot be set back.
    policy = copy.deepcopy(stored)
    if requested_version >= 3:
        return policy
    policy["version"] = 1
    for binding in policy.get("bindings", []):
        condition = binding.pop("condition", None)
        if condition:
            digest = hashlib.sha256(json.dumps(condition, sort_keys=True).encode()).hexdigest()
            binding["role"] = f"{binding['role']}_withcond_{digest[:20]}"
    return policy


def write_policy(
    stored: JsonObject,
    incoming: JsonObject,
    *,
    update_mask: str | None,
    new_etag: str,
    account_exists: Callable[[str], bool | None],
) -> JsonObject:
    """Return the policy to store when `incoming` is set over `stored` (etag already checked)."""
    # account_exists(email) is None when the emulator does not know the account's project; like
    # IAM, only the members this write adds must exist.
    fields = _mask(update_mask)
    version = _version(incoming.get("version"))
    result: JsonObject = {"version": version, "etag": new_etag}
    bindings = incoming.get("bindings", []) if "bindings" in fields else stored.get("bindings", [])
    result["bindings"] = _normalized(bindings)
    audit = incoming.get("auditConfigs") if "auditConfigs" in fields else stored.get("auditConfigs")
    if audit:
        result["auditConfigs"] = copy.deepcopy(audit)
    _check(result, previous_members=_members(stored), account_exists=account_exists)
    return result


def _mask(update_mask: str | None) -> frozenset[str]:
    if not update_mask:
        return frozenset({"bindings", "etag"})
    fields = frozenset(path.strip() for path in update_mask.split(",") if path.strip())
    unknown = sorted(fields - UPDATE_MASK_FIELDS)
    if unknown:
        raise ApiError(Status.INVALID_ARGUMENT, f"Invalid update_mask path: {unknown[0]}.")
    return fields


def _version(value: Any) -> int:
    try:
        version = int(value or 1)
    except (TypeError, ValueError) as error:
        raise ApiError(Status.INVALID_ARGUMENT, f"Invalid policy version: {value!r}.") from error
    if version not in (1, 3):
        raise ApiError(Status.INVALID_ARGUMENT, f"Policy version {version} is not supported.")
    return version


def _normalized(bindings: Iterable[JsonObject]) -> list[JsonObject]:
    """Merge bindings with the same role and condition, drop duplicate members and empty ones."""
    merged: dict[tuple[str, str], JsonObject] = {}
    for binding in bindings:
        role = str(binding.get("role", ""))
        condition = binding.get("condition") or None
        if condition is not None:
            condition = {k: str(condition[k]) for k in _CONDITION_FIELDS if condition.get(k)}
        key = (role, json.dumps(condition, sort_keys=True))
        target = merged.setdefault(key, {"role": role, "members": []})
        if condition is not None:
            target["condition"] = condition
        for member in binding.get("members", []):
            if member not in target["members"]:
                target["members"].append(str(member))
    kept = [binding for binding in merged.values() if binding["members"]]
    for binding in kept:
        binding["members"].sort()
    return sorted(kept, key=lambda b: (b["role"], b.get("condition", {}).get("title", "")))


def _members(policy: JsonObject) -> set[str]:
    return {member for binding in policy.get("bindings", []) for member in binding["members"]}


def _check(
    policy: JsonObject,
    *,
    previous_members: set[str],
    account_exists: Callable[[str], bool | None],
) -> None:
    conditional = 0
    per_role_member: dict[tuple[str, str], int] = {}
    principals: set[str] = set()
    for binding in policy["bindings"]:
        role = binding["role"]
        _check_role(role)
        for member in binding["members"]:
            _check_member(member, new=member not in previous_members, account_exists=account_exists)
            principals.add(member)
        condition = binding.get("condition")
        if condition is None:
            continue
        _check_condition(role, binding["members"], condition, policy["version"])
        conditional += 1
        for member in binding["members"]:
            per_role_member[role, member] = per_role_member.get((role, member), 0) + 1
    if conditional > MAX_CONDITIONAL_BINDINGS:
        raise ApiError(
            Status.INVALID_ARGUMENT,
            f"The policy has {conditional} conditional role bindings; the limit is "
            f"{MAX_CONDITIONAL_BINDINGS} conditional role bindings per policy.",
        )
    for (role, member), count in sorted(per_role_member.items()):
        if count > MAX_CONDITIONAL_PER_ROLE_AND_MEMBER:
            raise ApiError(
                Status.INVALID_ARGUMENT,
                f"The policy has {count} conditional role bindings for role {role} and "
                f"principal {member}; the limit is {MAX_CONDITIONAL_PER_ROLE_AND_MEMBER} "
                "conditional role bindings per role and principal.",
            )
    if len(principals) > MAX_PRINCIPALS:
        raise ApiError(
            Status.INVALID_ARGUMENT,
            f"The policy has {len(principals)} principals; the limit is {MAX_PRINCIPALS}.",
        )


def _check_role(role: str) -> None:
    custom = role.startswith(("projects/", "organizations/")) and "/roles/" in role
    if not (role.startswith("roles/") or custom) or "_withcond_" in role:
        raise ApiError(
            Status.INVALID_ARGUMENT, f"Role ({role}) does not exist in the resource's hierarchy."
        )


def _check_member(member: str, *, new: bool, account_exists: Callable[[str], bool | None]) -> None:
    if member not in PUBLIC_MEMBERS and not member.startswith(MEMBER_PREFIXES):
        raise ApiError(
            Status.INVALID_ARGUMENT,
            f'Invalid member {member!r}: policy members must be of the form "<type>:<value>".',
        )
    if new and member.startswith("serviceAccount:"):
        email = member.removeprefix("serviceAccount:")
        if email.endswith(f".{SA_DOMAIN}") and account_exists(email) is False:
            raise ApiError(Status.INVALID_ARGUMENT, f"Service account {email} does not exist.")


def _check_condition(role: str, members: list[str], condition: JsonObject, version: int) -> None:
    if version < 3:
        raise ApiError(
            Status.INVALID_ARGUMENT,
            f"Conditional role bindings need policy version 3; the policy has version {version}.",
        )
    if role in BASIC_ROLES:
        raise ApiError(
            Status.INVALID_ARGUMENT,
            f"Conditions are not supported for basic roles such as {role}.",
        )
    public = sorted(PUBLIC_MEMBERS.intersection(members))
    if public:
        raise ApiError(
            Status.INVALID_ARGUMENT,
            f"Conditional role bindings cannot include {public[0]}.",
        )
    if not condition.get("title"):
        raise ApiError(Status.INVALID_ARGUMENT, "A condition needs a title.")
    expression = condition.get("expression", "")
    problem = syntax_error(expression) if expression else "the expression is empty"
    if problem:
        raise ApiError(
            Status.INVALID_ARGUMENT,
            f"Condition {condition['title']!r} has an invalid expression: {problem}",
        )
