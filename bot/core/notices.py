"""The words Leash uses about requests and grants, built once for every surface."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.domain import handles
from bot.domain.catalog import matches
from bot.domain.durations import format_duration
from bot.domain.messages import Choice, ChoiceStyle, Mention, Notice, NoticeKind, Reply
from bot.domain.states import ActorKind, RequestState
from bot.store.tables import AccessRequest, Grant, Identity

# How each cloud ends a grant, in words: the mechanism names are Leash's own, not the reader's.
EXPIRY_MECHANISMS = {
    "aws-inline-policy-with-DateLessThan": "AWS ends it by itself (a policy condition on the time)",
    "gcp-iam-condition-request-time": "Google Cloud ends it by itself (an IAM condition)",
    "azure-pim-schedule": "Azure ends it by itself (a PIM schedule with an expiration)",
    "azure-role-assignment-leash-revoked": (
        "Leash ends it (a plain role assignment: no PIM licence here), by its scheduler and sweep"
    ),
}


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def how_it_ends(grant: Grant) -> str:
    """Say in words how a grant ends and what Leash wrote for it (its policy or assignment)."""
    words = EXPIRY_MECHANISMS.get(grant.mechanism or "", "Leash revokes it when it expires")
    written = f"; written as {grant.artefact}" if grant.artefact else ""
    return f"How it ends: {words}{written}"


REQUESTER = "Requester: "


def named(
    name: str | None, *, line: int | None, start: int, origin: str | None = None
) -> tuple[Mention, ...]:
    """Mark the person Leash recorded as `name`, standing at `start` of the text or a line.

    Only names Leash recorded for an actor come here (a requester, a decider), never typed
    text. A Slack user id is marked when it came through Slack (`origin`), or, for deciders,
    whose surface is not recorded, when it has a Slack user id's shape: such actor names come
    from Slack's signed payloads (or from the operator's own console).
    """
    if not name or (origin is not None and origin != "slack"):
        return ()
    key = handles.key_for_name(name)
    if handles.kind_of(key) is not handles.HandleKind.SLACK:
        return ()
    return (Mention(key, line, start, start + len(name)),)


def requester_name(request: AccessRequest, identity: Identity) -> str:
    """Who asked, as an approver knows them: an agent asking for itself by its name, not the
    identity id its token recorded."""
    if request.requester_kind == ActorKind.AGENT and request.requester == identity.id:
        return f"{identity.name} (the agent itself)"
    return request.requester


def request_mentions(request: AccessRequest) -> tuple[Mention, ...]:
    """The requester, as `request_lines` names them in its first line."""
    return named(request.requester, line=0, start=len(REQUESTER), origin=request.origin)


def request_lines(request: AccessRequest, identity: Identity) -> tuple[str, ...]:
    """Describe a request: who, what, where, how long, why, and the policy's reasons."""
    what = request.permission_set or ", ".join(request.actions)
    lines = [
        f"{REQUESTER}{requester_name(request, identity)} ({request.requester_kind}, "
        f"via {request.origin})",
        f"Identity: {identity.name} ({identity.native_id})",
        f"Permissions: {what}",
    ]
    if request.permission_set:
        lines.append(f"Actions: {', '.join(request.actions)}")
    lines.append(f"Resources: {', '.join(request.resources) or '*'}")
    flagged = matches(request.actions)
    if flagged:
        shown = dict.fromkeys(f"{m.entry.action} ({m.entry.category})" for m in flagged)
        more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
        lines.append(f"Flagged: {', '.join(list(shown)[:8])}{more}")
    lines.append(f"Duration: {format_duration(timedelta(seconds=request.duration_seconds))}")
    lines.append(f"Reason: {request.reason}")
    lines.append(f"Tier: {request.tier} ({request.approvals_required} approval(s) needed)")
    lines.extend(f"Why: {reason}" for reason in request.decision_reasons)
    if request.extends_grant_id:
        lines.append(f"Extends grant {request.extends_grant_id}")
    return tuple(lines)


def decision_choices(request: AccessRequest) -> tuple[Choice, ...]:
    return (
        Choice("Approve", f"approve {request.id}", ChoiceStyle.PRIMARY),
        Choice("Deny", f"deny {request.id}", ChoiceStyle.DANGER),
    )


def grant_choices(grant: Grant) -> tuple[Choice, ...]:
    return (
        Choice("Revoke now", f"revoke {grant.id}", ChoiceStyle.DANGER),
        Choice("Extend", f"extend {grant.id}", ChoiceStyle.DEFAULT),
    )


def approval_needed(
    request: AccessRequest, identity: Identity, recipients: tuple[str, ...], kind: NoticeKind
) -> Notice:
    headline = {
        NoticeKind.APPROVAL_NEEDED: (
            f"{requester_name(request, identity)} asks to elevate {identity.name}"
        ),
        NoticeKind.REMINDER: f"Reminder: request {request.id} for {identity.name} is waiting",
        NoticeKind.ESCALATED: f"Escalated to you: request {request.id} for {identity.name}",
    }[kind]
    asker = (
        named(request.requester, line=None, start=0, origin=request.origin)
        if kind is NoticeKind.APPROVAL_NEEDED
        else ()
    )
    reply = Reply(
        text=f"{headline} (request {request.id}, decide by {_when(request.decide_by)})",
        lines=request_lines(request, identity),
        choices=decision_choices(request),
        mentions=(*asker, *request_mentions(request)),
    )
    return Notice(kind=kind, recipients=recipients, reply=reply, request_id=request.id)


def decided(request: AccessRequest, identity: Identity, recipients: tuple[str, ...]) -> Notice:
    note = f": {request.decision_note}" if request.decision_note else ""
    said = f"Request {request.id} for {identity.name} was {request.state} by "
    reply = Reply(
        text=f"{said}{request.decided_by}{note}",
        ok=request.state == "approved",
        mentions=named(request.decided_by, line=None, start=len(said)),
    )
    return Notice(NoticeKind.DECIDED, recipients, reply, request_id=request.id)


def request_expired(
    request: AccessRequest, identity: Identity, recipients: tuple[str, ...]
) -> Notice:
    reply = Reply(
        text=f"Request {request.id} for {identity.name} expired: nobody decided in time.",
        ok=False,
    )
    return Notice(NoticeKind.REQUEST_EXPIRED, recipients, reply, request_id=request.id)


def grant_active(grant: Grant, identity: Identity, recipients: tuple[str, ...]) -> Notice:
    reply = Reply(
        text=f"Grant {grant.id} is active on {identity.name} until {_when(grant.expires_at)}",
        lines=(
            f"Actions: {', '.join(grant.actions)}",
            f"Resources: {', '.join(grant.resources) or '*'}",
            how_it_ends(grant),
        ),
        choices=grant_choices(grant),
    )
    return Notice(NoticeKind.GRANT_ACTIVE, recipients, reply, grant_id=grant.id)


def grant_failed(grant: Grant, identity: Identity, recipients: tuple[str, ...]) -> Notice:
    reply = Reply(
        text=f"Grant {grant.id} on {identity.name} could not be applied: {grant.last_error}",
        ok=False,
    )
    return Notice(NoticeKind.GRANT_FAILED, recipients, reply, grant_id=grant.id)


def extension_undone(
    grant: Grant,
    identity: Identity,
    request: AccessRequest,
    recipients: tuple[str, ...],
    *,
    removed: bool,
) -> Notice:
    left = (
        "nothing of it is left in the cloud"
        if removed
        else "removing what it wrote failed; the hourly reconcile removes it"
    )
    reply = Reply(
        text=(
            f"Grant {grant.id} on {identity.name} ended ({grant.state}) while extension "
            f"{request.id} was being applied: the extension did not take effect, and {left}."
        ),
        ok=False,
    )
    return Notice(
        NoticeKind.GRANT_FAILED, tuple(dict.fromkeys(recipients)), reply, grant_id=grant.id
    )


def expiring_soon(grant: Grant, identity: Identity, recipients: tuple[str, ...]) -> Notice:
    reply = Reply(
        text=f"Grant {grant.id} on {identity.name} expires at {_when(grant.expires_at)}",
        choices=grant_choices(grant),
    )
    return Notice(NoticeKind.EXPIRING_SOON, recipients, reply, grant_id=grant.id)


def revoked(grant: Grant, identity: Identity, recipients: tuple[str, ...]) -> Notice:
    said = f"Grant {grant.id} on {identity.name} "
    if grant.revoked_by == "leash":
        reply = Reply(text=f"{said}expired and was revoked.")
    elif grant.revoked_by == identity.id:  # the agent released it itself (API or MCP)
        reply = Reply(text=f"{said}was released by {identity.name} (the agent itself).")
    else:
        said += "was revoked by "
        by = named(grant.revoked_by, line=None, start=len(said))
        reply = Reply(text=f"{said}{grant.revoked_by}.", mentions=by)
    return Notice(NoticeKind.REVOKED, recipients, reply, grant_id=grant.id)


def irrevocable(grant: Grant, identity: Identity, recipients: tuple[str, ...]) -> Notice:
    reply = Reply(
        text=(
            f"ALERT: grant {grant.id} on {identity.name} could not be revoked after "
            f"{grant.attempts} attempts; its cloud expiry still ends it at "
            f"{_when(grant.expires_at)}. Leash retries daily."
        ),
        lines=(f"Last error: {grant.last_error}",),
        ok=False,
    )
    return Notice(NoticeKind.IRREVOCABLE, recipients, reply, grant_id=grant.id)


def _listed(names: Sequence[str], *, ending: int) -> tuple[Mention, ...]:
    """Mentions of `names`, written joined by ", " so that they end at `ending` of the text."""
    start = ending - len(", ".join(names))
    found: list[Mention] = []
    for name in names:
        found.extend(named(name, line=None, start=start))
        start += len(name) + 2
    return tuple(found)


def approvals_so_far(request: AccessRequest, approved_by: Sequence[str]) -> str:
    """ "1 of 2 approvals, by alice@example.com" (empty before the first)."""
    if not approved_by:
        return ""
    return (
        f"{len(approved_by)} of {request.approvals_required} approvals, by {', '.join(approved_by)}"
    )


def waiting_card(
    request: AccessRequest, identity: Identity, approved_by: Sequence[str] = ()
) -> Reply:
    """A pending request's card: what is asked, the approvals it has so far, the buttons."""
    so_far = approvals_so_far(request, approved_by)
    text = f"Request {request.id} for {identity.name} is waiting " + (
        f"(decide by {_when(request.decide_by)})" + (f": {so_far}" if so_far else "")
    )
    return Reply(
        text=text,
        lines=request_lines(request, identity),
        choices=decision_choices(request),
        mentions=(*_listed(approved_by, ending=len(text)), *request_mentions(request)),
    )


def approval_progress(
    request: AccessRequest,
    identity: Identity,
    approved_by: Sequence[str],
    recipients: tuple[str, ...],
) -> Notice:
    """An approval that is not the last one needed: the requester hears how far it got."""
    said = f"Request {request.id} for {identity.name} has {approvals_so_far(request, approved_by)}"
    reply = Reply(
        text=f"{said}; it needs {request.approvals_required - len(approved_by)} more.",
        mentions=_listed(approved_by, ending=len(said)),
    )
    return Notice(NoticeKind.APPROVAL_PROGRESS, recipients, reply, request_id=request.id)


def card_updated(
    request: AccessRequest,
    identity: Identity,
    approved_by: Sequence[str],
    recipients: tuple[str, ...],
) -> Notice:
    """The waiting card again, with the approvals so far: every copy is redrawn with it."""
    card = waiting_card(request, identity, approved_by)
    return Notice(NoticeKind.CARD_UPDATED, recipients, card, request_id=request.id)


def current_card(
    request: AccessRequest, identity: Identity, approved_by: Sequence[str] = ()
) -> tuple[Reply, Reply | None]:
    """A request's card as it stands now: (the card, the outcome that closed it, if any).

    Surfaces that redraw a card on demand (e.g. a Teams card refreshed by another viewer)
    show the decision buttons only while the request is pending.
    """
    if request.state == RequestState.PENDING:
        return waiting_card(request, identity, approved_by), None
    closed = request_summary(request.id, (request, identity))
    if request.state == RequestState.EXPIRED:
        return closed, request_expired(request, identity, ()).reply
    if request.state == RequestState.CANCELLED:
        said = f"Request {request.id} was cancelled"
        if not request.decided_by:
            return closed, Reply(text=said, ok=False)
        said += " by "
        by = named(request.decided_by, line=None, start=len(said))
        return closed, Reply(text=f"{said}{request.decided_by}", ok=False, mentions=by)
    return closed, decided(request, identity, ()).reply


def quarantined(identity: Identity, reason: str) -> Reply:
    """What a quarantine did: the answer to whoever asked, and (prefixed) to the owners."""
    return Reply(
        text=f"Quarantined {identity.name}: every call it makes is denied, "
        "including sessions issued before now.",
        lines=(
            f"Reason: {reason}",
            "Nothing was deleted. Release lifts the deny-all; sessions issued before now "
            "stay denied for good (AWS), so credentials already handed out never work again.",
        ),
        choices=(Choice("Release", f"release {identity.native_id}"),),
    )


def released(identity: Identity) -> Reply:
    """What a release did: the answer to whoever asked, and (prefixed) to the owners."""
    return Reply(
        text=f"Released {identity.name}: its permissions and tags are as before the "
        "quarantine, and sessions issued before the quarantine stay denied (on AWS, "
        "`leash-revoked-sessions`): whatever held old credentials must get new ones."
    )


def enforcement_done(by: str, what: Reply, recipients: tuple[str, ...]) -> Notice:
    """Tell an identity's owners what someone else did to it (quarantine or release)."""
    return Notice(
        kind=NoticeKind.ENFORCEMENT,
        recipients=recipients,
        reply=Reply(text=f"{by} — {what.text}", lines=what.lines, choices=what.choices),
    )


def undelivered(missed: list[str], notice: Notice, admins: tuple[str, ...]) -> Notice:
    """Tell the admins who missed a Teams message (the app is not installed for them)."""
    return Notice(
        NoticeKind.UNDELIVERED,
        admins,
        Reply(
            text=f"Leash could not reach {', '.join(missed)} on Teams "
            "(the app is not installed for them). They missed this message:",
            lines=(notice.reply.text, *notice.reply.lines[:10]),
            ok=False,
        ),
    )


def request_summary(request_id: str, found: tuple[AccessRequest, Identity] | None) -> Reply:
    """A request's card as a decided card keeps it: its id and what was asked (if still known)."""
    if found is None:
        return Reply(text=f"Request {request_id}")
    request, identity = found
    return Reply(
        text=f"Request {request.id}",
        lines=request_lines(request, identity),
        mentions=request_mentions(request),
    )
