"""Replies about identities and who owns them."""

from __future__ import annotations

from bot.commands.render.access import when
from bot.domain.messages import Reply
from bot.store.tables import Identity, Ownership


def ownership_changed(identity: Identity, owner: Ownership) -> Reply:
    """The answer to `owner set` / `owner claim`: the owners now, or the proposal made."""
    if owner.primary_owner is None and owner.proposed_owner:
        return Reply(
            text=f"Proposed {owner.proposed_owner} as the owner of {identity.name}. The admins "
            f"have been asked to confirm it (`owner confirm {identity.name}`); until then the "
            "claim carries no authority: no approvals, no tokens, no releases.",
            lines=ownership(identity, owner).lines,
        )
    return ownership(identity, owner)


def ownership(identity: Identity, owner: Ownership | None) -> Reply:
    provenance = (
        f"Created by: {identity.created_by or 'unknown'}",
        f"Permissions granted by: {', '.join(identity.granted_by) or 'unknown'}",
        f"ARN: {identity.native_id}"
        + (
            ""
            if identity.present
            else f" (deleted {when(identity.deleted_at)})"
            if identity.deleted_at
            else " (deleted)"
        ),
    )
    if owner is not None and owner.primary_owner is None and owner.proposed_owner:
        claimed = f"claimed {when(owner.proposed_at)}, " if owner.proposed_at else ""
        return Reply(
            text=f"{identity.name} has no confirmed owner. Proposed owner: "
            f"{owner.proposed_owner} ({claimed}waiting for an admin to confirm: until then "
            "the claim carries no authority).",
            lines=("Confirmed owner: none", *provenance),
            ok=False,
        )
    if owner is None or owner.primary_owner is None:
        return Reply(
            text=f"{identity.name} has no owner. Claim it: `owner claim {identity.name}`.",
            lines=provenance,
            ok=False,
        )
    attested = (
        f"confirmed by {owner.attested_by} at {when(owner.attested_at)}"
        if owner.attested_at
        else "never confirmed"
    )
    return Reply(
        text=f"{identity.name} is owned by {owner.primary_owner}",
        lines=(
            f"Confirmed owner: {owner.primary_owner} (proposed owner: none pending)",
            f"Backup owner: {owner.backup_owner or '-'}",
            f"Team: {owner.team or '-'}",
            f"Purpose: {owner.purpose or '-'}",
            f"Recorded from: {owner.source}, by {owner.updated_by} at {when(owner.updated_at)}",
            f"Ownership: {attested}",
            *provenance,
        ),
    )


def owned(user: str, rows: list[tuple[Identity, Ownership]]) -> Reply:
    if not rows:
        return Reply(text=f"{user} owns no identities.")
    return Reply(
        text=f"{user} owns {len(rows)} identities:",
        lines=tuple(
            f"{i.name}  ({'primary' if o.primary_owner == user else 'backup'}, "
            f"team {o.team or '-'})  {i.native_id}"
            for i, o in rows
        ),
    )


def identities(rows: list[tuple[Identity, Ownership | None]]) -> Reply:
    if not rows:
        return Reply(text="No identities match.")
    return Reply(
        text=f"Identities ({len(rows)}):",
        lines=tuple(
            f"{i.name}  {i.classification}  account {i.account}  "
            f"owner {(o.primary_owner if o else None) or 'NONE'}  {i.native_id}"
            f"{'' if i.present else '  (deleted)'}"
            for i, o in rows
        ),
    )


def owner_confirmed(identity: Identity, ownership: Ownership, what: str) -> Reply:
    """The answer to `owner confirm`: an admin confirmed a claim, or an owner their ownership."""
    if what == "claim":
        return Reply(text=f"Confirmed: {identity.name} is now owned by {ownership.primary_owner}.")
    return Reply(text=f"Thanks: you confirmed that you own {identity.name}.")


def who_should_own(identity: str) -> Reply:
    """The answer to `owner assign` typed (a button opens a form instead)."""
    return Reply(
        text=f"Who should own it? `owner set {identity} <user> [backup <user>] [team <team>]`"
    )
