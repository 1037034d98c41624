"""Turn domain results into Replies (plain text that every surface can show)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.access.requests import ApprovalResult
from bot.access.tokens import IssuedToken, TokenInfo
from bot.domain.durations import format_duration
from bot.domain.messages import Reply
from bot.domain.states import GrantState, shown_state
from bot.store.tables import AccessRequest, Grant, Identity, Ownership


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def submitted(request: AccessRequest) -> Reply:
    who = ", ".join(request.approvers[:5]) + ("…" if len(request.approvers) > 5 else "")
    return Reply(
        text=(
            f"Request {request.id} is waiting for approval "
            f"({request.approvals_required} of: {who}); it expires at {_when(request.decide_by)}."
        ),
        lines=tuple(f"Why: {reason}" for reason in request.decision_reasons),
    )


def approved(result: ApprovalResult) -> Reply:
    request, grant = result.request, result.grant
    if grant is None:
        return Reply(
            text=(
                f"Approval recorded for {request.id} ({result.approvals} of "
                f"{request.approvals_required}); it needs another approver."
            )
        )
    if request.extends_grant_id:
        return Reply(text=f"Extended grant {grant.id} until {_when(grant.expires_at)}.")
    if grant.state == GrantState.FAILED:
        return Reply(
            text=f"Approved {request.id}, but the cloud refused the grant: {grant.last_error}",
            ok=False,
        )
    return Reply(
        text=(
            f"Approved {request.id}: grant {grant.id} is {grant.state} "
            f"until {_when(grant.expires_at)}."
        ),
        lines=(f"Enforced by: {grant.mechanism} ({grant.artefact})",) if grant.artefact else (),
    )


def grant_state(grant: Grant) -> Reply:
    return Reply(text=f"Grant {grant.id} is {grant.state}.", ok=grant.state == GrantState.REVOKED)


def grants(rows: list[tuple[Grant, Identity]], title: str, *, empty: str, now: datetime) -> Reply:
    if not rows:
        return Reply(text=empty)
    return Reply(
        text=f"{title.capitalize()} ({len(rows)}):",
        lines=tuple(
            f"{g.id}  {i.name}  {shown_state(g, now=now)}  until {_when(g.expires_at)}  "
            f"{', '.join(g.actions)[:120]}  (for {g.requester})"
            for g, i in rows
        ),
    )


def requests(
    rows: list[tuple[AccessRequest, Identity]], title: str, *, empty: str, now: datetime
) -> Reply:
    if not rows:
        return Reply(text=empty)
    lines = []
    for request, identity in rows:
        what = request.permission_set or ", ".join(request.actions)[:80]
        age = format_duration(timedelta(seconds=int((now - request.created_at).total_seconds())))
        lines.append(
            f"{request.id}  {request.state}  {identity.name}  {what}  "
            f"for {format_duration(timedelta(seconds=request.duration_seconds))}  "
            f"by {request.requester}, {age} ago"
        )
    return Reply(text=f"{title.capitalize()} ({len(rows)}):", lines=tuple(lines))


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
            else f" (deleted {_when(identity.deleted_at)})"
            if identity.deleted_at
            else " (deleted)"
        ),
    )
    if owner is not None and owner.primary_owner is None and owner.proposed_owner:
        claimed = f"claimed {_when(owner.proposed_at)}, " if owner.proposed_at else ""
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
        f"confirmed by {owner.attested_by} at {_when(owner.attested_at)}"
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
            f"Recorded from: {owner.source}, by {owner.updated_by} at {_when(owner.updated_at)}",
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


def token_issued(issued: IssuedToken) -> Reply:
    replaced = f" (replaces {issued.replaced} earlier token(s))" if issued.replaced else ""
    until = (
        f"It works until {_when(issued.expires_at)} (rotate it with "
        f"`token rotate {issued.identity.name}`) and ends if the owner changes."
        if issued.expires_at
        else ""
    )
    return Reply(
        text=f"API token for {issued.identity.name}{replaced}. It is shown once; store it now:",
        lines=(
            issued.token,
            "Use it as `Authorization: Bearer <token>` on /api/v1.",
            *((until,) if until else ()),
        ),
    )


def tokens(identity: Identity, found: tuple[TokenInfo, ...]) -> Reply:
    """The identity's tokens (never their secrets)."""
    if not found:
        return Reply(text=f"{identity.name} has no agent tokens.")
    return Reply(
        text=f"Agent tokens of {identity.name} (newest first):",
        lines=tuple(
            f"{t.id}: {t.state}, issued by {t.created_by} at {_when(t.created_at)}, "
            f"expires {_when(t.expires_at) if t.expires_at else 'never'}"
            for t in found
        ),
    )
