"""Requests nobody decides: remind, escalate along the approval route, then expire."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import notices
from bot.core.context import Context
from bot.core.transitions import Event, Moved, NoticeFor, move
from bot.domain import log_context
from bot.domain.actors import SYSTEM
from bot.domain.messages import Notice, NoticeKind
from bot.domain.rules import RequestTimings
from bot.domain.states import Machine, RequestState
from bot.store.tables import AccessRequest, Identity, Ownership

log = logging.getLogger("leash.requests")


def approval_route(
    request: AccessRequest, ownership: Ownership | None, admins: frozenset[str]
) -> list[tuple[str, ...]]:
    """Who to ask, step by step: primary owner, then backup owner, then the admins.

    A request that needs more than one approval (break-glass) is one step: every eligible
    approver is asked at once, since an incident cannot wait for an escalation to find the
    second one.
    """
    allowed = set(request.approvers)
    steps: list[tuple[str, ...]] = []
    if request.approvals_required > 1:
        everyone = [ownership.primary_owner, ownership.backup_owner] if ownership else []
        everyone += [*sorted(admins), *request.approvers]
        return [tuple(dict.fromkeys(name for name in everyone if name and name in allowed))]
    if ownership and ownership.primary_owner and ownership.primary_owner in allowed:
        steps.append((ownership.primary_owner,))
    if ownership and ownership.backup_owner and ownership.backup_owner in allowed:
        steps.append((ownership.backup_owner,))
    admin_step = tuple(sorted(a for a in admins if a in allowed))
    if admin_step:
        steps.append(admin_step)
    if not steps:
        steps.append(tuple(request.approvers))
    return steps


def next_nudge(
    request: AccessRequest, *, now: datetime, timings: RequestTimings, steps: int
) -> tuple[NoticeKind, int] | None:
    """Say whether a pending request is due a reminder or an escalation, and to which step."""
    if request.reminders_sent == 0:
        if now - request.created_at >= timings.remind_after:
            return NoticeKind.REMINDER, request.escalation_level
        return None
    since = request.last_nudge_at or request.created_at
    level = request.escalation_level + 1
    if now - since >= timings.escalate_after and level < steps:
        return NoticeKind.ESCALATED, level
    return None


async def _to_everyone(request: AccessRequest, identity: Identity, session: AsyncSession) -> Notice:
    """An expired request is told to its requester and every approver."""
    return notices.request_expired(request, identity, (request.requester, *request.approvers))


def _nudge(recipients: tuple[str, ...], kind: NoticeKind) -> NoticeFor[AccessRequest]:
    """A reminder or an escalation, to the approval route's step it reached."""

    async def notice(request: AccessRequest, identity: Identity, session: AsyncSession) -> Notice:
        return notices.approval_needed(request, identity, recipients, kind)

    return notice


class RequestDeadlines:
    """The scheduler's side of requests: nudges and expiry, each once (compare-and-set)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def expire_due(self) -> int:
        """Expire every pending request past its deadline; tell requester and approvers."""
        ctx = self._ctx
        now = ctx.clock.now()
        async with ctx.sessions() as session:
            due = (
                await session.exec(
                    select(AccessRequest.id).where(
                        col(AccessRequest.state) == RequestState.PENDING,
                        col(AccessRequest.decide_by) <= now,
                    )
                )
            ).all()
        expired = 0
        for request_id in due:
            with log_context.about(request_id=request_id):
                expired += await self._expire(request_id, now=now)
        return expired

    async def _expire(self, request_id: str, *, now: datetime) -> int:
        """Expire one request unless someone decided it first; 1 when this call expired it."""
        done: Moved[AccessRequest] = await move(
            self._ctx,
            Machine.REQUEST,
            request_id,
            from_states=RequestState.PENDING,
            to_state=RequestState.EXPIRED,
            at=now,
            values={"decided_at": now, "decided_by": "leash"},
            event=Event(SYSTEM, "request.expired"),
            notice=_to_everyone,
        )
        if not done.moved:
            return 0
        log_context.add(identity=done.identity.native_id)
        log.info("request %s expired undecided", done.row.id)
        await done.tell()
        return 1

    async def nudge_due(self) -> int:
        """Remind the first approver once, then escalate one step per `escalate_after`."""
        ctx = self._ctx
        now = ctx.clock.now()
        async with ctx.sessions() as session:
            pending = (
                await session.exec(
                    select(AccessRequest, Identity, Ownership)
                    .join(Identity, col(Identity.id) == col(AccessRequest.identity_id))
                    .join(Ownership, col(Ownership.identity_id) == col(Identity.id), isouter=True)
                    .where(
                        col(AccessRequest.state) == RequestState.PENDING,
                        col(AccessRequest.decide_by) > now,
                    )
                )
            ).all()
        nudged = 0
        for request, _identity, ownership in pending:
            route = approval_route(request, ownership, ctx.rules.admins)
            due = next_nudge(request, now=now, timings=ctx.rules.requests, steps=len(route))
            if due is None:
                continue
            kind, level = due
            done: Moved[AccessRequest] = await move(
                ctx,
                Machine.REQUEST,
                request.id,
                from_states=RequestState.PENDING,
                to_state=RequestState.PENDING,
                at=now,
                where=(col(AccessRequest.reminders_sent) == request.reminders_sent)
                & (col(AccessRequest.escalation_level) == request.escalation_level),
                values={
                    "reminders_sent": request.reminders_sent + 1,
                    "escalation_level": level,
                    "last_nudge_at": now,
                },
                event=Event(
                    SYSTEM, f"request.{kind}", detail={"level": level, "to": list(route[level])}
                ),
                notice=_nudge(route[level], kind),
            )
            if not done.moved:
                continue
            nudged += 1
            await done.tell()
        return nudged
