"""The guardrail: remove a principal's role assignments that confer privileged actions.

Azure lets no customer write a deny for one principal, so the guardrail removes, from the
principal's own assignments inside its subscription, each whose role confers one of the
guarded actions (wildcards on both sides, `notActions` honoured: Contributor does not confer
`Microsoft.Authorization/roleAssignments/write`). Entries of `actions` that are not Azure
actions (another cloud's `iam:PassRole`, `iam.serviceAccounts.actAs`) are skipped, so one
mixed catalogue can be handed to every provider. An assignment stays when an unexpired
exemption covers every guarded action its role confers (an exemption may also name the role
itself, since Azure grants are roles). Leash's own grants are never touched: they were
approved and expire by themselves.

`before` and `after` are compact JSON lists of the privileged assignments, each whole (enough
to recreate it) with `role` and the `privileged` actions it confers; what `after` lacks was
removed and is kept in `before`, so the domain's record of the change is all it takes to see
what went. It is never recreated by Leash on its own: access comes back through approved
grants. Unlike a deny, an exemption does not end by itself: the next guardrail run after the
exemption expires removes the assignment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cloud.azure.assignments import Assignment
from cloud.azure.context import Context
from cloud.azure.restriction import remove_all
from cloud.azure.roles import conferred, is_action, matches
from cloud.base import CloudError, Exemption, GuardrailChange, IdentityRef

MECHANISM = "azure-remove-role-assignments"


def live_exemptions(exemptions: Sequence[Exemption], *, now: datetime) -> tuple[str, ...]:
    """Return the actions (or role names) unexpired exemptions let through."""
    if now.tzinfo is None:
        raise CloudError("the guardrail clock must be timezone-aware", code="BadInput")
    live: list[str] = []
    for exemption in exemptions:
        if exemption.expires_at.tzinfo is None:
            raise CloudError(
                f"exemption of {exemption.action} (grant {exemption.grant_id}) has a naive expiry",
                code="BadInput",
            )
        if exemption.expires_at > now:
            live.append(exemption.action)
    return tuple(live)


def _exempt(role: str, privileged: Sequence[str], live: Sequence[str]) -> bool:
    if any(item.strip().lower() == role.lower() for item in live):
        return True
    return all(any(matches(item, action) for item in live) for action in privileged)


def _render(entries: list[dict[str, Any]]) -> str:
    ordered = sorted(entries, key=lambda e: (e["role"].lower(), e["scope"].lower(), e["name"]))
    return json.dumps(ordered, separators=(",", ":"), sort_keys=True)


def guardrail(
    ctx: Context,
    identity: IdentityRef,
    actions: Sequence[str],
    exemptions: Sequence[Exemption],
    *,
    dry_run: bool,
) -> GuardrailChange:
    """Remove (unless `dry_run`) the privileged assignments no exemption keeps."""
    guarded = tuple(dict.fromkeys(action for action in actions if is_action(action)))
    live = live_exemptions(exemptions, now=ctx.clock())
    sid = identity.account
    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    removed: list[Assignment] = []
    held = ctx.holdings(identity).removable if guarded else ()
    for assignment in held:
        role = ctx.roles.get(sid, assignment.role_definition_id)
        privileged = conferred(role, guarded) if role is not None else ()
        if role is None or not privileged:
            continue
        entry = {**assignment.as_json(), "role": role.name, "privileged": list(privileged)}
        before.append(entry)
        if _exempt(role.name, privileged, live):
            after.append(entry)
        else:
            removed.append(assignment)
    change = GuardrailChange(
        identity=identity, before=_render(before), after=_render(after), mechanism=MECHANISM
    )
    if not dry_run and removed:
        remove_all(ctx.clients, sid, removed)
    return change
