"""Restrict a service account: remove its unused roles and deny its unused permissions; undo.

`unused` may name roles (`roles/editor`: the unconditional bindings of the account to those
roles are removed, and kept in the snapshot) and permissions (`storage.buckets.delete`:
denied to the account by the IAM deny policy `leash-restrict-<hash of the e-mail>` on its
project). Nothing in `keep` is removed or denied. The deny is written before any binding is
removed, and removed again if the removal fails. The plan's fingerprint hashes the account's
bindings (Leash's grants left out); the removal re-checks it under the policy's etag, so a
change made since the preview is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from cloud.base import (
    RESTRICT_ARTEFACT,
    CloudConflictError,
    CloudError,
    IdentityRef,
    RestrictionPlan,
    Snapshot,
)
from cloud.gcp import bindings as policies
from cloud.gcp import deny
from cloud.gcp.bindings import AllowPolicy, Binding, member_of
from cloud.gcp.clients import GcpClients
from cloud.gcp.discovery import describe

REMOVE_BINDINGS = "gcp-remove-bindings"
DENY_POLICY = "gcp-deny-policy"
SNAPSHOT_KIND = "gcp-restrict"
ROLE_PATTERN = re.compile(
    r"(?:roles|(?:projects|organizations)/[a-z0-9][a-z0-9.:-]{0,62}/roles)/[A-Za-z0-9_.]{1,128}"
)


def is_role(text: str) -> bool:
    """Say whether the text is a predefined or custom IAM role name."""
    return ROLE_PATTERN.fullmatch(text) is not None


def restrict_policy_id(identity: IdentityRef) -> str:
    """Name the deny policy that restricts one service account."""
    return f"{RESTRICT_ARTEFACT}-{deny.short_hash(identity.native_id)}"


def restrict_display_name(identity: IdentityRef) -> str:
    """Title the restriction within Google's 63 characters: the account id says whose it is."""
    return deny.display_name("Leash restriction", deny.account_id(identity.native_id))


def fingerprint(policy: AllowPolicy, member: str) -> str:
    """Hash the member's bindings, Leash's own grants left out."""
    own = sorted(
        (
            b.role,
            b.condition.title if b.condition else "",
            b.condition.expression if b.condition else "",
        )
        for b in policy.of(member)
        if b.leash_grant is None
    )
    payload = json.dumps({"member": member, "bindings": own}, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _unconditional_roles(policy: AllowPolicy, member: str) -> set[str]:
    return {b.role for b in policy.of(member) if b.condition is None}


def plan_restriction(
    clients: GcpClients, identity: IdentityRef, unused: Sequence[str], keep: Sequence[str]
) -> RestrictionPlan:
    """Work out which bindings to remove and which permissions to deny."""
    malformed = sorted(
        item for item in unused if not is_role(item) and not deny.is_permission(item)
    )
    if malformed:
        raise CloudError(f"not GCP roles or permissions: {', '.join(malformed)}", code="BadAction")
    member = member_of(identity.native_id)
    policy = policies.read(clients, identity.account)
    bound = _unconditional_roles(policy, member)
    kept = set(keep)
    roles = sorted({item for item in unused if is_role(item) and item in bound} - kept)
    permissions = sorted({item for item in unused if deny.is_permission(item)} - kept)
    if not roles and not permissions:
        raise CloudError(
            f"nothing to restrict on {describe(identity)}: every unused role or permission given "
            "is kept, or no longer bound",
            code="NothingToRestrict",
        )
    document: dict[str, Any] = {"project": identity.account, "member": member}
    if roles:
        document["removeBindings"] = roles
    if permissions:
        rule = _rule(identity, permissions)
        document["denyPolicy"] = {"id": restrict_policy_id(identity), **rule.as_json()}
    mechanism = "+".join(
        name for name, used in ((REMOVE_BINDINGS, roles), (DENY_POLICY, permissions)) if used
    )
    return RestrictionPlan(
        identity=identity,
        deny=(*roles, *permissions),
        mechanism=mechanism,
        document=json.dumps(document, separators=(",", ":")),
        fingerprint=fingerprint(policy, member),
    )


def _rule(identity: IdentityRef, permissions: Sequence[str]) -> deny.DenyRule:
    converted = sorted(dict.fromkeys(deny.deny_permission(p) for p in permissions))
    return deny.DenyRule((deny.principal_of(identity.native_id),), tuple(converted))


def _planned(identity: IdentityRef, plan: RestrictionPlan) -> tuple[list[str], list[str]]:
    """Return the roles and permissions a plan names, checked against the identity."""
    if (plan.identity.account, plan.identity.native_id) != (identity.account, identity.native_id):
        raise CloudError(
            f"the restriction plan for {describe(plan.identity)} cannot be applied to "
            f"{describe(identity)}",
            code="PlanMismatch",
        )
    roles = [item for item in plan.deny if is_role(item)]
    permissions = [item for item in plan.deny if deny.is_permission(item)]
    if len(roles) + len(permissions) != len(plan.deny):
        raise CloudError(f"the restriction plan names unknown items: {plan.deny!r}", code="BadPlan")
    return roles, permissions


def restrict(clients: GcpClients, identity: IdentityRef, plan: RestrictionPlan) -> Snapshot:
    """Write the deny, then remove the bindings; return how to undo both."""
    roles, permissions = _planned(identity, plan)
    member = member_of(identity.native_id)
    project = identity.account

    def unchanged(policy: AllowPolicy) -> None:
        if fingerprint(policy, member) != plan.fingerprint:
            raise CloudConflictError(
                f"the roles of {describe(identity)} changed since the preview; nothing was written",
                code="ChangedSincePreview",
            )

    unchanged(policies.read(clients, project))
    policy_id = restrict_policy_id(identity)
    previous: deny.DenyPolicy | None = None
    if permissions:
        previous = deny.put(
            clients,
            project,
            policy_id,
            display_name=restrict_display_name(identity),
            rules=[_rule(identity, permissions)],
        )
    removed: list[str] = []

    def remove(policy: AllowPolicy) -> tuple[Binding, ...] | None:
        unchanged(policy)
        removed[:] = sorted(set(roles) & _unconditional_roles(policy, member))
        return policies.without_member(
            policy.bindings, member, lambda b: b.condition is None and b.role in removed
        )

    try:
        if roles:
            policies.modify(clients, project, remove)
    except CloudError as error:
        if permissions:
            _put_back_deny(clients, identity, policy_id, previous, error)
        raise
    return {
        "kind": SNAPSHOT_KIND,
        "mechanism": plan.mechanism,
        "project": project,
        "member": member,
        "removed_roles": removed,
        "deny_policy": policy_id if permissions else None,
        "previous_deny_rules": [r.as_json() for r in previous.rules] if previous else None,
    }


def _put_back_deny(
    clients: GcpClients,
    identity: IdentityRef,
    policy_id: str,
    previous: deny.DenyPolicy | None,
    error: CloudError,
) -> None:
    project = identity.account
    try:
        if previous is None:
            deny.delete(clients, project, policy_id)
        else:
            deny.put(
                clients,
                project,
                policy_id,
                display_name=restrict_display_name(identity),
                rules=previous.rules,
            )
    except CloudError as undo_error:
        error.add_note(f"undoing the deny policy {policy_id} also failed: {undo_error}")


def unrestrict(clients: GcpClients, identity: IdentityRef, snapshot: Snapshot) -> bool:
    """Give back the removed bindings and undo the deny; False when nothing was left to undo."""
    project, member, roles, policy_id, previous = _parse(snapshot)
    if (project, member) != (identity.account, member_of(identity.native_id)):
        raise CloudError(
            f"the restriction snapshot of {member} in {project} does not belong to "
            f"{describe(identity)}",
            code="BadSnapshot",
        )
    _, written = policies.modify(
        clients,
        project,
        lambda policy: _with_roles(policy, member, roles),
    )
    restored = written is not None
    if policy_id is not None:
        if previous is None:
            restored = deny.delete(clients, project, policy_id) or restored
        elif deny.get(clients, project, policy_id) is not None:
            deny.put(
                clients,
                project,
                policy_id,
                display_name=restrict_display_name(identity),
                rules=previous,
            )
            restored = True
    return restored


def _with_roles(policy: AllowPolicy, member: str, roles: Sequence[str]) -> tuple[Binding, ...]:
    """Bind `member` unconditionally to each role again (joining an existing binding)."""
    result = list(policy.bindings)
    for role in roles:
        index = next(
            (i for i, b in enumerate(result) if b.role == role and b.condition is None), None
        )
        if index is None:
            result.append(Binding(role, (member,)))
        elif member not in result[index].members:
            binding = result[index]
            result[index] = Binding(role, (*binding.members, member))
    return tuple(result)


def _parse(
    snapshot: Snapshot,
) -> tuple[str, str, list[str], str | None, list[deny.DenyRule] | None]:
    roles: Any = snapshot.get("removed_roles")
    policy_id = snapshot.get("deny_policy")
    previous: Any = snapshot.get("previous_deny_rules")
    project, member = snapshot.get("project"), snapshot.get("member")
    valid = (
        snapshot.get("kind") == SNAPSHOT_KIND
        and isinstance(project, str)
        and isinstance(member, str)
        and isinstance(roles, list)
        and all(isinstance(role, str) and is_role(role) for role in roles)
        and (policy_id is None or isinstance(policy_id, str))
        and (previous is None or isinstance(previous, list))
    )
    if not valid or not isinstance(project, str) or not isinstance(member, str):
        raise CloudError(f"not a GCP restriction snapshot: {dict(snapshot)!r}", code="BadSnapshot")
    rules = [deny.DenyRule.from_json(rule) for rule in previous] if previous is not None else None
    return project, member, list(roles), policy_id if isinstance(policy_id, str) else None, rules
