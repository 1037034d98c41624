"""The inventory as a table, CSV or JSON for `leash identities`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from bot.store.tables import Identity, Ownership

COLUMNS = (
    "name",
    "account",
    "kind",
    "classification",
    "owner",
    "backup",
    "team",
    "created_by",
    "attested",
    "state",
    "arn",
)


def record(identity: Identity, ownership: Ownership | None) -> dict[str, Any]:
    """One identity as a flat record."""
    return {
        "name": identity.name,
        "account": identity.account,
        "kind": identity.kind,
        "classification": identity.classification,
        "owner": ownership.primary_owner if ownership else None,
        "backup": ownership.backup_owner if ownership else None,
        "team": ownership.team if ownership else None,
        "created_by": identity.created_by,
        "granted_by": list(identity.granted_by),
        "attested": ownership.attested_at.isoformat()
        if ownership and ownership.attested_at
        else None,
        "state": "present" if identity.present else "deleted",
        "arn": identity.native_id,
        "classification_reason": identity.classification_reason,
        "last_used_at": identity.last_used_at.isoformat() if identity.last_used_at else None,
    }


def render(rows: Sequence[tuple[Identity, Ownership | None]], fmt: str) -> str:
    records = [record(identity, ownership) for identity, ownership in rows]
    if fmt == "json":
        return json.dumps(records, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*COLUMNS, "granted_by"], extrasaction="ignore")
        writer.writeheader()
        for item in records:
            writer.writerow(item | {"granted_by": ";".join(item["granted_by"])})
        return out.getvalue()
    table = [[str(item[c] if item[c] is not None else "-") for c in COLUMNS] for item in records]
    widths = [max([len(c), *(len(row[i]) for row in table)]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in table]
    lines.append(f"{len(records)} identities")
    return "\n".join(lines)
