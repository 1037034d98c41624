"""Restrict a principal by removing its unused role assignments; undo by recreating them.

Azure has no deny a customer can write for one principal, so a restriction removes role
assignments. `unused` and `keep` name roles (`Contributor`, as usage's `not_used` does: every
assignment of that role in the subscription) or single assignments (`Contributor @ <scope>`,
as discovery's `attached_policies` spell them). Only the principal's own assignments inside
its subscription are touched: never Leash's grants, never assignments inherited from above.
The plan's fingerprint hashes the principal's own assignments; `restrict` re-reads them and
refuses when they changed. The snapshot keeps each removed assignment whole (GUID, role,
scope, principal, description, condition) so `unrestrict` recreates it exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cloud.azure import assignments
from cloud.azure.assignments import Assignment
from cloud.azure.clients import AzureClients
from cloud.azure.context import Context, Holdings
from cloud.azure.discovery import describe
from cloud.azure.roles import role_guid
from cloud.base import (
    CloudConflictError,
    CloudError,
    IdentityRef,
    RestrictionPlan,
    Snapshot,
)

MECHANISM = "azure-remove-role-assignments"
SNAPSHOT_KIND = "azure-restrict"


def _names(ctx: Context, subscription_id: str, assignment: Assignment) -> set[str]:
    """Return every way `unused`/`keep` may name an assignment, lower-cased."""
    role = ctx.roles.name_of(subscription_id, assignment.role_definition_id)
    return {
        role.lower(),
        assignment.role_guid,
        assignment.role_definition_id.lower(),
        ctx.spelled(assignment, subscription_id).lower(),
        assignment.id.lower(),
    }


def _named(wanted: Sequence[str]) -> set[str]:
    result = {item.strip().lower() for item in wanted}
    return result | {role_guid(item) for item in result if "/roledefinitions/" in item}


def chosen(
    ctx: Context, holdings: Holdings, unused: Sequence[str], keep: Sequence[str]
) -> list[Assignment]:
    """Return the removable assignments `unused` names and `keep` does not."""
    sid = holdings.subscription_id
    named, kept = _named(unused), _named(keep)
    return [
        a
        for a in holdings.removable
        if _names(ctx, sid, a) & named and not _names(ctx, sid, a) & kept
    ]


def plan_restriction(
    ctx: Context, identity: IdentityRef, unused: Sequence[str], keep: Sequence[str]
) -> RestrictionPlan:
    """Work out which of the principal's role assignments to remove."""
    holdings = ctx.holdings(identity)
    removed = chosen(ctx, holdings, unused, keep)
    if not removed:
        raise CloudError(
            f"nothing to restrict on {describe(identity)}: every unused role given is kept, "
            "not assigned in its subscription, or one of Leash's grants",
            code="NothingToRestrict",
        )
    sid = identity.account
    document = {
        "subscription": sid,
        "principal_id": identity.native_id,
        "remove": [
            {"id": a.id, "role": ctx.roles.name_of(sid, a.role_definition_id), "scope": a.scope}
            for a in removed
        ],
    }
    return RestrictionPlan(
        identity=identity,
        deny=tuple(sorted(ctx.spelled(a, sid) for a in removed)),
        mechanism=MECHANISM,
        document=json.dumps(document, separators=(",", ":")),
        fingerprint=holdings.fingerprint(),
    )


def _planned_ids(identity: IdentityRef, plan: RestrictionPlan) -> set[str]:
    same = (plan.identity.account, plan.identity.native_id.lower()) == (
        identity.account,
        identity.native_id.lower(),
    )
    if not same:
        raise CloudError(
            f"the restriction plan for {describe(plan.identity)} cannot be applied to "
            f"{describe(identity)}",
            code="PlanMismatch",
        )
    try:
        document = json.loads(plan.document)
        return {str(item["id"]).lower() for item in document["remove"]}
    except (ValueError, KeyError, TypeError) as error:
        raise CloudError(
            f"not an Azure restriction plan: {plan.document!r}", code="BadPlan"
        ) from error


def remove_all(
    clients: AzureClients, subscription_id: str, removed: Sequence[Assignment]
) -> list[Assignment]:
    """Delete the assignments; on a failure put back those deleted, then raise."""
    done: list[Assignment] = []
    try:
        for assignment in removed:
            if assignments.delete(clients, subscription_id, assignment):
                done.append(assignment)
    except CloudError as error:
        for assignment in done:
            try:
                assignments.create(clients, subscription_id, assignment)
            except CloudError as undo_error:
                error.add_note(f"putting back {assignment.id} also failed: {undo_error}")
        raise
    return done


def restrict(ctx: Context, identity: IdentityRef, plan: RestrictionPlan) -> Snapshot:
    """Remove the planned assignments unless the principal's roles changed since the plan."""
    wanted = _planned_ids(identity, plan)
    holdings = ctx.holdings(identity)
    if holdings.fingerprint() != plan.fingerprint:
        raise CloudConflictError(
            f"the role assignments of {describe(identity)} changed since the preview; "
            "nothing was removed",
            code="ChangedSincePreview",
        )
    removed = [a for a in holdings.removable if a.id.lower() in wanted]
    done = remove_all(ctx.clients, identity.account, removed)
    return {
        "kind": SNAPSHOT_KIND,
        "mechanism": MECHANISM,
        "subscription": identity.account,
        "principal_id": identity.native_id,
        "removed": [a.as_json() for a in done],
    }


def parse_removed(snapshot: Snapshot, kind: str, identity: IdentityRef) -> list[Assignment]:
    """Read the removed assignments of a snapshot of `kind` that belongs to the identity."""
    removed: Any = snapshot.get("removed")
    principal = snapshot.get("principal_id")
    valid = (
        snapshot.get("kind") == kind
        and snapshot.get("subscription") == identity.account
        and isinstance(principal, str)
        and principal.lower() == identity.native_id.lower()
        and isinstance(removed, list)
        and all(isinstance(item, dict) for item in removed)
    )
    if not valid:
        raise CloudError(
            f"not an Azure {kind} snapshot of {describe(identity)}: {dict(snapshot)!r}",
            code="BadSnapshot",
        )
    found = [Assignment.from_json(item) for item in removed]
    if any(a.principal_id.lower() != identity.native_id.lower() for a in found):
        raise CloudError(f"the {kind} snapshot names another principal", code="BadSnapshot")
    return found


def recreate(ctx: Context, identity: IdentityRef, removed: Sequence[Assignment]) -> bool:
    """Write back each removed assignment not already there; True when one was written."""
    present = {a.key() for a in ctx.holdings(identity).own}
    written = False
    for assignment in removed:
        if assignment.key() in present:
            continue
        assignments.create(ctx.clients, identity.account, assignment)
        present.add(assignment.key())
        written = True
    return written


def unrestrict(ctx: Context, identity: IdentityRef, snapshot: Snapshot) -> bool:
    """Recreate the removed assignments exactly; False when all are back already."""
    removed = parse_removed(snapshot, SNAPSHOT_KIND, identity)
    return recreate(ctx, identity, removed)
