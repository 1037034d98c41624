"""Apply and revoke Leash's grants: PIM schedules, or plain role assignments as a fallback.

A grant names roles (`Storage Blob Data Reader`, or a role definition id) and scopes inside
the identity's subscription (none: the subscription). Each role at each scope becomes one
PIM `AdminAssign` schedule ending at the grant's expiry (Azure ends it; PIM refuses less than
5 minutes, and so does Leash, before writing anything), or, when PIM is off or unlicensed, one
role assignment whose GUID derives from the grant, role and scope and whose description
carries `leash-grant-<id> expires <time>` (Leash's scheduler and sweep end it). What the grant
already holds is skipped, so applying it twice writes nothing new; a role the principal holds
at that scope in any other way is refused (Azure allows one assignment per role, principal
and scope). A failure part-way undoes what the call wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from cloud.azure import assignments, pim
from cloud.azure.assignments import grant_guid, marker, subscription_scope, within
from cloud.azure.context import Context, Holdings
from cloud.azure.discovery import describe
from cloud.azure.errors import is_pim_unlicensed
from cloud.azure.roles import RoleDefinition
from cloud.base import (
    AppliedGrant,
    CloudConflictError,
    CloudError,
    CloudLimitError,
    GrantArtefact,
    GrantSpec,
    IdentityRef,
    grant_artefact_name,
)

PLAIN_MECHANISM = "azure-role-assignment-leash-revoked"


@dataclass(frozen=True, slots=True)
class Wanted:
    """One role at one scope that a grant gives."""

    role: RoleDefinition
    scope: str

    def key(self) -> tuple[str, str]:
        """Return the role and scope as `Assignment.key` spells them."""
        return self.role.guid, self.scope.lower()


def _scope(identity: IdentityRef, resource: str) -> str | None:
    text = resource.strip().rstrip("/")
    scope = text if text.startswith("/") else f"/{text}"
    return scope if within(identity.account, scope) else None


def validated(ctx: Context, identity: IdentityRef, spec: GrantSpec) -> list[Wanted]:
    """Return the roles and scopes of a grant, refusing what Azure cannot hold."""
    target = describe(identity)
    if not spec.actions:
        raise CloudError(f"grant {spec.grant_id} for {target} names no roles", code="NoActions")
    if spec.expires_at.tzinfo is None:
        raise CloudError(
            f"grant {spec.grant_id}: the expiry must be timezone-aware", code="BadInput"
        )
    if spec.expires_at <= ctx.clock():
        raise CloudError(
            f"grant {spec.grant_id} expired before it could be applied", code="Expired"
        )
    scopes = [_scope(identity, r) for r in spec.resources] or [subscription_scope(identity.account)]
    outside = [r for r, s in zip(spec.resources, scopes, strict=False) if s is None]
    if outside:
        raise CloudError(
            f"grant {spec.grant_id} for {target}: scopes outside subscription "
            f"{identity.account}: {', '.join(outside)}",
            code="UnsupportedResource",
        )
    found = {action: ctx.roles.resolve(identity.account, action) for action in spec.actions}
    unknown = [action for action, role in found.items() if role is None]
    if unknown:
        raise CloudError(
            f"grant {spec.grant_id} for {target}: not Azure roles in subscription "
            f"{identity.account}: {', '.join(unknown)}",
            code="BadRole",
        )
    wanted = [Wanted(role, str(scope)) for role in found.values() if role for scope in scopes]
    return list({item.key(): item for item in wanted}.values())


def _missing(holdings: Holdings, grant_id: str, wanted: list[Wanted]) -> list[Wanted]:
    """Return what the grant does not hold yet; refuse what someone else holds."""
    ours = {a.key() for a in holdings.grant_assignments if a.grant_id == grant_id}
    ours |= {g.key() for g in holdings.pim_grants if g.grant_id == grant_id}
    others = {a.key(): f"role assignment {a.name}" for a in holdings.own}
    others |= {a.key(): f"leash-grant-{a.grant_id}" for a in holdings.grant_assignments}
    others |= {g.key(): f"leash-grant-{g.grant_id}" for g in holdings.pim_grants}
    clashes = [
        f"{w.role.name} @ {w.scope} ({others[w.key()]})"
        for w in wanted
        if w.key() in others and w.key() not in ours
    ]
    if clashes:
        raise CloudConflictError(
            f"grant {grant_id}: the principal already holds "
            + "; ".join(clashes)
            + " (Azure allows one assignment per role, principal and scope); nothing was written",
            code="RoleAlreadyAssigned",
        )
    return [w for w in wanted if w.key() not in ours]


def apply_grant(ctx: Context, identity: IdentityRef, spec: GrantSpec) -> AppliedGrant:
    """Write the grant (see the module doc); return its artefact and expiry mechanism."""
    wanted = validated(ctx, identity, spec)
    sid = identity.account
    if ctx.pim_available(sid):
        now = ctx.clock()
        if spec.expires_at - now < pim.MINIMUM_DURATION:
            raise CloudLimitError(
                f"grant {spec.grant_id} for {describe(identity)} would last "
                f"{int((spec.expires_at - now).total_seconds())} s; PIM assignments last at least "
                "5 minutes",
                code="PimMinimumDuration",
            )
        missing = _missing(ctx.holdings(identity), spec.grant_id, wanted)
        try:
            _assign_pim(ctx, identity, spec, missing, now)
            return AppliedGrant(artefact=spec.artefact_name, mechanism=pim.EXPIRY_MECHANISM)
        except CloudError as error:
            if not is_pim_unlicensed(error):
                raise
            ctx.remember_pim(sid, available=False)  # the tenant has no PIM: fall back
    missing = _missing(ctx.holdings(identity), spec.grant_id, wanted)
    _assign_plain(ctx, identity, spec, missing)
    return AppliedGrant(artefact=spec.artefact_name, mechanism=PLAIN_MECHANISM)


def _assign_pim(
    ctx: Context, identity: IdentityRef, spec: GrantSpec, missing: list[Wanted], now: datetime
) -> None:
    sid = identity.account
    done: list[Wanted] = []
    try:
        for item in missing:
            pim.assign(
                ctx.clients,
                sid,
                principal_id=identity.native_id,
                role_definition_id=item.role.id,
                scope=item.scope,
                grant_id=spec.grant_id,
                starts_at=now,
                expires_at=spec.expires_at,
            )
            done.append(item)
    except CloudError as error:
        if done:
            keys = {item.key() for item in done}
            for grant in ctx.live_pim_grants(sid, identity.native_id):
                if grant.grant_id == spec.grant_id and grant.key() in keys:
                    _undo(error, partial(pim.remove, ctx.clients, sid, grant), grant.scope)
        raise


def _assign_plain(
    ctx: Context, identity: IdentityRef, spec: GrantSpec, missing: list[Wanted]
) -> None:
    sid = identity.account
    done: list[assignments.Assignment] = []
    try:
        for item in missing:
            planned = assignments.planned(
                principal_id=identity.native_id,
                role_definition_id=item.role.id,
                scope=item.scope,
                name=grant_guid(spec.grant_id, item.role.guid, item.scope),
                description=marker(spec.grant_id, spec.expires_at),
            )
            done.append(assignments.create(ctx.clients, sid, planned))
    except CloudError as error:
        for written in done:
            _undo(error, partial(assignments.delete, ctx.clients, sid, written), written.scope)
        raise


def _undo(error: CloudError, undo: Callable[[], object], where: str) -> None:
    try:
        undo()
    except CloudError as undo_error:
        error.add_note(f"undoing the grant's write at {where} also failed: {undo_error}")


def revoke_grant(ctx: Context, identity: IdentityRef, grant_id: str) -> bool:
    """End the grant's PIM schedules and delete its plain assignments; False if none was left."""
    holdings = ctx.holdings(identity)
    removed = False
    for assignment in holdings.grant_assignments:
        if assignment.grant_id == grant_id:
            removed = assignments.delete(ctx.clients, identity.account, assignment) or removed
    for grant in holdings.pim_grants:
        if grant.grant_id == grant_id:
            removed = pim.remove(ctx.clients, identity.account, grant) or removed
    return removed


def grant_artefacts(ctx: Context, identity: IdentityRef) -> tuple[GrantArtefact, ...]:
    """List the identity's live `leash-grant-*` assignments and PIM schedules."""
    holdings = ctx.holdings(identity)
    grant_ids = {a.grant_id for a in holdings.grant_assignments if a.grant_id}
    grant_ids |= {grant.grant_id for grant in holdings.pim_grants}
    return tuple(
        GrantArtefact(identity=identity, grant_id=grant_id, artefact=grant_artefact_name(grant_id))
        for grant_id in sorted(grant_ids)
    )
