"""A grant on GCP: conditional IAM bindings, `leash-grant-<id>`, that end by themselves at
expiry, behind a deny policy of the same name when the grant withholds lasting-key permissions."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from cloud.base import (
    AppliedGrant,
    CloudError,
    GrantArtefact,
    GrantSpec,
    IdentityRef,
    grant_artefact_name,
    grant_id_from_artefact,
)
from cloud.gcp import bindings as policies
from cloud.gcp import deny, grant_denies
from cloud.gcp.bindings import EXPIRY_MECHANISM, AllowPolicy, Binding, member_of
from cloud.gcp.clients import GcpClients
from cloud.gcp.discovery import describe
from cloud.gcp.errors import is_not_found
from cloud.gcp.grant_denies import RolePermissions
from cloud.gcp.restriction import is_role

PROJECT_RESOURCE_PREFIXES = ("projects/", "//cloudresourcemanager.googleapis.com/projects/")
_OTHER_CLOUD_ACTION = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9*?]+")  # `iam:PassRole` and the like


def apply_grant(
    clients: GcpClients,
    identity: IdentityRef,
    spec: GrantSpec,
    role_permissions: RolePermissions,
    *,
    clock: Callable[[], datetime],
) -> AppliedGrant:
    """Bind each role under the condition `leash-grant-<id>` that ends at expiry, behind a
    deny policy of the same name when the grant withholds permissions."""
    roles, permissions = _validated(identity, spec)
    title = spec.artefact_name
    if permissions:
        deny.check_policy_id(title)
    project, member = identity.account, member_of(identity.native_id)
    condition = policies.expiry_condition(
        title=title,
        expires_at=spec.expires_at,
        description=f"Leash grant {spec.grant_id} to {identity.native_id}",
    )
    now = clock()

    def bind(policy: AllowPolicy) -> tuple[Binding, ...]:
        return policies.within_limits(
            policy,
            lambda current: policies.with_grant(current, member, roles, condition),
            member=member,
            now=now,
            what=f"grant {spec.grant_id} for {describe(identity)}",
        )

    previous: deny.DenyPolicy | None = None
    if permissions:  # the deny comes first: the roles never work without it
        # What the account's other live grants were approved for stays open.
        live = grant_denies.live_grants(policies.read(clients, project), member, now)
        rule = grant_denies.rule(identity, permissions, title, live, role_permissions)
        previous = deny.put(
            clients,
            project,
            title,
            display_name=deny.display_name("Leash grant, no lasting keys", spec.grant_id),
            rules=[rule],
        )
    try:
        policies.modify(clients, project, bind)
    except CloudError as error:
        if permissions and previous is None:
            try:
                deny.delete(clients, project, title)
            except CloudError as undo_error:
                error.add_note(f"removing deny policy {title} also failed: {undo_error}")
        raise
    # The other live grants' denies stop withholding what this one was approved for.
    grant_denies.settle(clients, identity, role_permissions, now=now)
    return AppliedGrant(artefact=title, mechanism=EXPIRY_MECHANISM)


def revoke_grant(
    clients: GcpClients,
    identity: IdentityRef,
    grant_id: str,
    role_permissions: RolePermissions,
    *,
    clock: Callable[[], datetime],
) -> bool:
    """Remove the grant's bindings and deny policy; False when they were already gone."""
    title = grant_artefact_name(grant_id)
    member = member_of(identity.native_id)
    try:
        _, written = policies.modify(
            clients,
            identity.account,
            lambda policy: policies.without_member(
                policy.bindings,
                member,
                lambda b: b.condition is not None and b.condition.title == title,
            ),
        )
    except CloudError as error:
        if is_not_found(error):  # the project is gone: nothing grants access
            return False
        raise
    removed = written is not None
    if deny.POLICY_ID_PATTERN.fullmatch(title):
        removed = deny.delete(clients, identity.account, title) or removed
    # What this grant opened is withheld again by the other grants' denies.
    grant_denies.settle(clients, identity, role_permissions, now=clock())
    return removed


def grant_artefacts(clients: GcpClients, identity: IdentityRef) -> tuple[GrantArtefact, ...]:
    """List the `leash-grant-*` bindings and deny policies of a service account."""
    member = member_of(identity.native_id)
    policy = policies.read(clients, identity.account)
    titles = {t for b in policy.of(member) if (t := b.leash_grant) is not None}
    principal = deny.principal_of(identity.native_id)
    for policy_id in deny.list_ids(clients, identity.account, prefix="leash-grant-"):
        found = deny.get(clients, identity.account, policy_id)
        if found is not None and any(principal in rule.principals for rule in found.rules):
            titles.add(policy_id)
    return tuple(
        GrantArtefact(identity=identity, grant_id=grant_id, artefact=title)
        for title in sorted(titles)
        if (grant_id := grant_id_from_artefact(title)) is not None
    )


def _validated(identity: IdentityRef, spec: GrantSpec) -> tuple[list[str], list[str]]:
    """Return the grant's roles and the permissions to deny, refusing what GCP cannot hold."""
    target = describe(identity)
    if not spec.actions:
        raise CloudError(f"grant {spec.grant_id} for {target} names no roles", code="NoActions")
    bad = [action for action in spec.actions if not is_role(action)]
    if bad:
        raise CloudError(
            f"grant {spec.grant_id} for {target}: not GCP role names (roles/...): "
            + ", ".join(bad),
            code="BadRole",
        )
    project = identity.account
    allowed = {f"{prefix}{project}" for prefix in PROJECT_RESOURCE_PREFIXES}
    outside = [resource for resource in spec.resources if resource not in allowed]
    if outside:
        raise CloudError(
            f"grant {spec.grant_id} for {target}: only project-level grants on project "
            f"{project} are supported yet, not {', '.join(outside)}",
            code="UnsupportedResource",
        )
    if spec.expires_at.tzinfo is None:
        raise CloudError(
            f"grant {spec.grant_id}: the expiry must be timezone-aware", code="BadInput"
        )
    if spec.expires_at <= datetime.now(UTC):
        raise CloudError(
            f"grant {spec.grant_id} expired before it could be applied", code="Expired"
        )
    # Another cloud's persistence actions (`iam:CreateAccessKey`) mean nothing here.
    wanted = [p for p in spec.deny_actions if not _OTHER_CLOUD_ACTION.fullmatch(p)]
    bad = [p for p in wanted if not deny.is_permission(p)]
    if bad:
        raise CloudError(
            f"grant {spec.grant_id} for {target}: not GCP permission names: {', '.join(bad)}",
            code="BadPermission",
        )
    return list(dict.fromkeys(spec.actions)), list(dict.fromkeys(wanted))
