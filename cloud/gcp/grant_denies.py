"""Per-grant deny policies that never cancel another live grant of the same service account.

Each grant that carries roles withholds the persistence permissions its own roles do not carry
(`leash-grant-<id>` deny policy: service-account keys, access tokens, HMAC keys, ...). Another
live grant of the same account may have been approved exactly for one of them (a grant of
`roles/iam.serviceAccountTokenCreator` opens `getAccessToken`); a deny policy is evaluated on
its own and wins over every allow, so each grant's deny names the permissions the account's
other live grants carry as `exceptionPermissions`. The denied list stays as approved, so the
exceptions can be recomputed whenever a grant starts or ends: `settle` does, from the
`leash-grant-*` bindings in the project's allow policy (a grant whose condition has expired no
longer counts) and the roles' permissions as IAM `roles.get` lists them. A role whose
permissions cannot be read opens nothing: its permissions stay denied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from cloud.base import GRANT_ARTEFACT_PREFIX, IdentityRef
from cloud.gcp import bindings as policies
from cloud.gcp import deny
from cloud.gcp.bindings import AllowPolicy, member_of
from cloud.gcp.clients import GcpClients

RolePermissions = Callable[[str], frozenset[str] | None]


def live_grants(policy: AllowPolicy, member: str, now: datetime) -> dict[str, tuple[str, ...]]:
    """Map each `leash-grant-*` title of the member whose condition still holds to its roles."""
    found: dict[str, list[str]] = {}
    for binding in policy.of(member):
        title = binding.leash_grant
        expiry = policies.expiry_of(binding.condition)
        if title is None or expiry is None or expiry <= now:
            continue
        found.setdefault(title, []).append(binding.role)
    return {title: tuple(sorted(set(roles))) for title, roles in found.items()}


def carried(roles: Iterable[str], role_permissions: RolePermissions) -> frozenset[str]:
    """Return the permissions the roles carry, in deny format; unknown roles carry nothing."""
    permissions: set[str] = set()
    for role in roles:
        for permission in role_permissions(role) or ():
            if deny.is_permission(permission):
                permissions.add(deny.deny_permission(permission))
    return frozenset(permissions)


def exceptions(
    denied: Iterable[str],
    title: str,
    live: Mapping[str, tuple[str, ...]],
    role_permissions: RolePermissions,
) -> tuple[str, ...]:
    """Return the denied permissions another live grant (not `title`) carries, sorted."""
    others = [role for other, roles in live.items() if other != title for role in roles]
    return tuple(sorted(set(denied) & carried(others, role_permissions)))


def rule(
    identity: IdentityRef,
    permissions: Iterable[str],
    title: str,
    live: Mapping[str, tuple[str, ...]],
    role_permissions: RolePermissions,
) -> deny.DenyRule:
    """Build a grant's deny rule: its permissions, bar those other live grants carry."""
    denied = tuple(sorted(dict.fromkeys(deny.deny_permission(p) for p in permissions)))
    return deny.DenyRule(
        (deny.principal_of(identity.native_id),),
        denied,
        exception_permissions=exceptions(denied, title, live, role_permissions),
    )


def settle(
    clients: GcpClients,
    identity: IdentityRef,
    role_permissions: RolePermissions,
    *,
    now: datetime,
) -> tuple[str, ...]:
    """Rewrite the exceptions of the account's grant denies for its live grants; say which."""
    project = identity.account
    principal = deny.principal_of(identity.native_id)
    live = live_grants(policies.read(clients, project), member_of(identity.native_id), now)
    rewritten: list[str] = []
    for policy_id in deny.list_ids(clients, project, prefix=GRANT_ARTEFACT_PREFIX):
        current = deny.get(clients, project, policy_id)
        if current is None or not any(principal in r.principals for r in current.rules):
            continue
        wanted = tuple(
            deny.DenyRule(
                r.principals,
                r.permissions,
                r.exception_principals,
                exceptions(r.permissions, policy_id, live, role_permissions),
                r.condition,
            )
            for r in current.rules
        )
        if wanted != current.rules:
            deny.put(clients, project, policy_id, display_name=current.display_name, rules=wanted)
            rewritten.append(policy_id)
    return tuple(rewritten)
