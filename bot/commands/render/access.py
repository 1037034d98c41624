"""Replies about requests, grants, tokens and the command line itself."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.access.request_limits import AlreadyWaitingError
from bot.access.requests import ApprovalResult
from bot.access.tokens import IssuedToken, TokenInfo
from bot.commands.grammar.access import USAGE
from bot.core import notices
from bot.domain.actors import Actor
from bot.domain.durations import format_duration
from bot.domain.errors import LeashError
from bot.domain.messages import Reply
from bot.domain.states import GrantState, shown_state
from bot.store.errors import UNREACHABLE_MESSAGE
from bot.store.tables import AccessRequest, Grant, Identity


def when(at: datetime) -> str:
    """A moment as every reply writes it."""
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def submitted(request: AccessRequest) -> Reply:
    who = ", ".join(request.approvers[:5]) + ("…" if len(request.approvers) > 5 else "")
    return Reply(
        text=(
            f"Request {request.id} is waiting for approval "
            f"({request.approvals_required} of: {who}); it expires at {when(request.decide_by)}."
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
        return Reply(text=f"Extended grant {grant.id} until {when(grant.expires_at)}.")
    if grant.state == GrantState.FAILED:
        return Reply(
            text=f"Approved {request.id}, but the cloud refused the grant: {grant.last_error}",
            ok=False,
        )
    return Reply(
        text=(
            f"Approved {request.id}: grant {grant.id} is {grant.state} "
            f"until {when(grant.expires_at)}."
        ),
        lines=(notices.how_it_ends(grant),) if grant.artefact else (),
    )


def grant_state(grant: Grant) -> Reply:
    return Reply(text=f"Grant {grant.id} is {grant.state}.", ok=grant.state == GrantState.REVOKED)


def grants(rows: list[tuple[Grant, Identity]], title: str, *, empty: str, now: datetime) -> Reply:
    if not rows:
        return Reply(text=empty)
    return Reply(
        text=f"{title.capitalize()} ({len(rows)}):",
        lines=tuple(
            f"{g.id}  {i.name}  {shown_state(g, now=now)}  until {when(g.expires_at)}  "
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


def token_issued(issued: IssuedToken) -> Reply:
    replaced = f" (replaces {issued.replaced} earlier token(s))" if issued.replaced else ""
    until = (
        f"It works until {when(issued.expires_at)} (rotate it with "
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
            f"{t.id}: {t.state}, issued by {t.created_by} at {when(t.created_at)}, "
            f"expires {when(t.expires_at) if t.expires_at else 'never'}"
            for t in found
        ),
    )


def denied(request: AccessRequest) -> Reply:
    return Reply(text=f"Denied {request.id}. {request.requester} has been told why.")


def cancelled(request: AccessRequest) -> Reply:
    return Reply(text=f"Cancelled {request.id}.")


def tokens_revoked(identity: str, count: int) -> Reply:
    return Reply(text=f"Revoked {count} token(s) of {identity}.")


def whoami(actor: Actor, *, admin: bool) -> Reply:
    known = ", ".join(sorted(actor.keys))
    unresolved = (
        ""
        if actor.resolved
        else " Leash cannot tie this account to an e-mail, so you cannot approve."
    )
    return Reply(
        text=f"You are {actor.name} ({actor.kind}{', admin' if admin else ''}) "
        f"via {actor.origin}.{unresolved}",
        lines=(f"Known as: {known}",),
    )


def usage(topic: str | None) -> Reply:
    """`help`, or `help <topic>`."""
    if topic and topic in USAGE:
        return Reply(text=f"`{USAGE[topic]}`")
    return Reply(
        text="Leash commands (durations like 30m, 2h; identities by ARN or short name):",
        lines=tuple(f"`{line}`" for line in USAGE.values()),
    )


def refused(error: LeashError) -> Reply:
    # Asking again for what is already waiting is no failure: the answer names that request.
    return Reply(text=str(error), ok=isinstance(error, AlreadyWaitingError))


def unreachable(correlation: str) -> Reply:
    return Reply(text=f"{UNREACHABLE_MESSAGE} (reference {correlation})", ok=False)


def went_wrong(correlation: str) -> Reply:
    return Reply(
        text=f"Something went wrong on our side (reference {correlation}). "
        "Nothing was changed "
        "unless a later message says so.",
        ok=False,
    )


def unknown_button() -> Reply:
    return Reply(text="That button is not one Leash knows; the message may be outdated.", ok=False)


def applying(decided: ApprovalResult) -> Reply:
    """The answer to an approval whose grant the cloud has not confirmed yet."""
    assert decided.grant is not None
    doing = "extending" if decided.request.extends_grant_id else "applying"
    return Reply(
        text=f"Approved {decided.request.id}: {doing} grant {decided.grant.id} in the cloud…",
        lines=("This card shows the grant once the cloud has answered.",),
    )


def still_working(command: str) -> Reply:
    """The answer to a button whose command the cloud has not finished yet."""
    verb = command.split(" ", 1)[0]
    return Reply(
        text=f"Leash is on it ({verb}); the cloud is slow to answer.",
        lines=("This card shows the outcome once it has.",),
    )
