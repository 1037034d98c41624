"""The columns of every listing command, each named once (`bot.cli.listing` renders them).

A column's name is the table's header, the JSON key and the CSV header alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.cli.listing import Column, Fit, Listing, when
from bot.domain.states import shown_state
from bot.store.tables import AccessRequest, Grant, Identity, Ownership, UsageScan

IdentityRow = tuple[Identity, Ownership | None]
GrantRow = tuple[Grant, Identity]
RequestRow = tuple[AccessRequest, Identity]


@dataclass(frozen=True, slots=True)
class ScanRow:
    """One identity's latest scan; `identity` is None when the identity is gone."""

    identity_id: str
    identity: Identity | None
    scan: UsageScan
    needs_action: bool


def _owner(row: IdentityRow) -> str | None:
    return row[1].primary_owner if row[1] else None


def _attested(row: IdentityRow) -> str | None:
    return when(row[1].attested_at) if row[1] else None


IDENTITIES: Listing[IdentityRow] = Listing(
    "identities",
    "identity",
    (
        Column("name", lambda row: row[0].name),
        Column("account", lambda row: row[0].account, Fit.KEEP),
        Column("kind", lambda row: row[0].kind),
        Column("classification", lambda row: row[0].classification),
        Column("owner", _owner),
        Column("backup", lambda row: row[1].backup_owner if row[1] else None),
        Column("team", lambda row: row[1].team if row[1] else None),
        Column("created_by", lambda row: row[0].created_by),
        Column("granted_by", lambda row: list(row[0].granted_by)),
        Column("attested", _attested),
        Column("last_used", lambda row: when(row[0].last_used_at)),
        Column("state", lambda row: "present" if row[0].present else "deleted", Fit.KEEP),
        Column("arn", lambda row: row[0].native_id),
    ),
)

GRANTS: Listing[GrantRow] = Listing(
    "grants",
    "grant",
    (
        Column("id", lambda row: row[0].id, Fit.KEEP),
        Column("state", lambda row: shown_state(row[0], now=datetime.now(UTC)), Fit.KEEP),
        Column("identity", lambda row: row[1].name),
        Column("account", lambda row: row[1].account, Fit.KEEP),
        Column("actions", lambda row: list(row[0].actions)),
        Column("resources", lambda row: list(row[0].resources)),
        Column("requester", lambda row: row[0].requester),
        Column("created", lambda row: when(row[0].created_at)),
        Column("expires", lambda row: when(row[0].expires_at)),
        Column("revoked", lambda row: when(row[0].revoked_at)),
    ),
)

REQUESTS: Listing[RequestRow] = Listing(
    "requests",
    "request",
    (
        Column("id", lambda row: row[0].id, Fit.KEEP),
        Column("state", lambda row: row[0].state, Fit.KEEP),
        Column("identity", lambda row: row[1].name),
        Column("account", lambda row: row[1].account, Fit.KEEP),
        Column("permission_set", lambda row: row[0].permission_set),
        Column("actions", lambda row: list(row[0].actions)),
        Column("duration_seconds", lambda row: row[0].duration_seconds, Fit.NUMBER),
        Column("requester", lambda row: row[0].requester),
        Column("reason", lambda row: row[0].reason),
        Column("tier", lambda row: row[0].tier, Fit.KEEP),
        Column("approvers", lambda row: list(row[0].approvers)),
        Column("created", lambda row: when(row[0].created_at)),
        Column("decided_by", lambda row: row[0].decided_by),
    ),
)

SCAN: Listing[ScanRow] = Listing(
    "identities scanned",
    "identity scanned",
    (
        Column("identity", lambda row: row.identity.name if row.identity else row.identity_id),
        Column("account", lambda row: row.identity.account if row.identity else None, Fit.KEEP),
        Column("risk", lambda row: row.scan.risk, Fit.KEEP),
        Column("unused", lambda row: row.scan.unused_count, Fit.NUMBER),
        Column("unknown", lambda row: len(row.scan.unknown), Fit.NUMBER),
        Column("inactive", lambda row: row.scan.inactive, Fit.KEEP),
        Column("status", lambda row: row.scan.status),
        Column("needs_action", lambda row: row.needs_action, Fit.KEEP),
        Column("arn", lambda row: row.identity.native_id if row.identity else None),
    ),
)
