"""Quarantine a principal by removing all its role assignments in its subscription; release.

Entra has nothing Leash may write to disable a managed identity, and disabling a service
principal would touch every subscription at once, so a quarantine removes every role
assignment the principal holds in (and below) its subscription and keeps each in the snapshot
whole; `release` recreates them exactly (same GUID, role, scope, principal, description and
condition). Nothing is deleted from Entra. Leash's live grants end too (plain assignments are
deleted, PIM schedules get an AdminRemove) and are not given back: a grant comes back only
through a new approval. Assignments inherited from a management group or the tenant root are
outside the subscription: they are listed in the snapshot (`outside_subscription`) and left.

Azure keeps no trace of the quarantine itself; the snapshot the domain stores is the record.
A principal that holds no role assignment in the subscription (quarantined already, or never
given any) is refused with CloudConflictError, so a second quarantine cannot overwrite the
first snapshot with an empty one. Azure checks role assignments on every request, so access
ends within minutes (ARM's authorization cache), tokens issued before included. Caveat: an
app service principal left with no assignment is no longer found by discovery in that
subscription (a managed identity still is, through its resource) until it is released.
"""

from __future__ import annotations

from datetime import datetime

from cloud.azure import assignments, pim
from cloud.azure.assignments import timestamp
from cloud.azure.context import Context
from cloud.azure.discovery import describe
from cloud.azure.restriction import parse_removed, recreate, remove_all
from cloud.base import CloudConflictError, CloudError, IdentityRef, Snapshot

SNAPSHOT_KIND = "azure-quarantine"
MECHANISM = "azure-remove-all-role-assignments"


def quarantine(ctx: Context, identity: IdentityRef, *, at: datetime, reason: str) -> Snapshot:
    """Remove every role assignment of the principal in its subscription; return the snapshot."""
    if at.tzinfo is None:
        raise CloudError(f"quarantine of {describe(identity)}: `at` must be timezone-aware")
    sid, clients = identity.account, ctx.clients
    holdings = ctx.holdings(identity)
    own = holdings.removable
    if not own and not holdings.grant_assignments and not holdings.pim_grants:
        raise CloudConflictError(
            f"{describe(identity)} holds no role assignment in its subscription: it is "
            "quarantined already, or was never given any",
            code="AlreadyQuarantined",
        )
    ended: list[str] = []  # grants first: they are not given back, so a retry is harmless
    for assignment in holdings.grant_assignments:
        if assignments.delete(clients, sid, assignment) and assignment.grant_id:
            ended.append(assignment.grant_id)
    for grant in holdings.pim_grants:
        if pim.remove(clients, sid, grant):
            ended.append(grant.grant_id)
    removed = remove_all(clients, sid, own)  # all or none: a failure puts back what it removed
    return {
        "kind": SNAPSHOT_KIND,
        "mechanism": MECHANISM,
        "subscription": sid,
        "principal_id": identity.native_id,
        "quarantined_at": timestamp(at),
        "reason": reason,
        "removed": [a.as_json() for a in removed],
        "ended_grants": sorted(set(ended)),
        "outside_subscription": sorted(ctx.spelled(a, sid) for a in holdings.above),
    }


def release(ctx: Context, identity: IdentityRef, snapshot: Snapshot) -> bool:
    """Recreate the removed assignments exactly; False when all are there (not quarantined)."""
    removed = parse_removed(snapshot, SNAPSHOT_KIND, identity)
    return recreate(ctx, identity, removed)
