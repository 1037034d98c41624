"""Access requests: submit, approve, deny, cancel, expire, remind and escalate."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import audit, registry
from bot.domain.audit import SYSTEM, Actor
from bot.domain.catalog import is_valid_action, normalize_action, persistence_denies
from bot.domain.errors import (
    AlreadyDecidedError,
    DurationTooLongError,
    InvalidInputError,
    LeashError,
    NotAllowedError,
    RequestExpiredError,
    UnknownPermissionSetError,
    UnknownRequestError,
)
from bot.domain.lifecycle import notices
from bot.domain.lifecycle.context import Context, compare_and_set, new_id
from bot.domain.messages import NoticeKind
from bot.domain.models import (
    AccessRequest,
    ActorKind,
    Approval,
    Grant,
    GrantState,
    Identity,
    Ownership,
    RequestState,
    Tier,
)
from bot.domain.policy import Draft, Owners, decide, may_approve

MAX_REASON = 1000
MAX_ITEMS = 50
_RESOURCE = re.compile(
    r"(\*|arn:[a-z0-9*\-]+:[a-z0-9*\-]*:[a-z0-9*\-]*:[0-9*]{0,12}:[^\s]{1,1500})"
)


@dataclass(frozen=True, slots=True)
class RequestInput:
    """A request as typed or posted, before validation."""

    identity: str
    duration: timedelta
    reason: str
    permission_set: str | None = None
    actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    extends_grant_id: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    request: AccessRequest
    grant: Grant | None
    approvals: int


def approval_route(
    request: AccessRequest, ownership: Ownership | None, admins: frozenset[str]
) -> list[tuple[str, ...]]:
    """Who to ask, step by step: primary owner, then backup owner, then the admins."""
    allowed = set(request.approvers)
    steps: list[tuple[str, ...]] = []
    if ownership and ownership.primary_owner in allowed:
        steps.append((ownership.primary_owner,))
    if ownership and ownership.backup_owner and ownership.backup_owner in allowed:
        steps.append((ownership.backup_owner,))
    admin_step = tuple(sorted(a for a in admins if a in allowed))
    if admin_step:
        steps.append(admin_step)
    if not steps:
        steps.append(tuple(request.approvers))
    return steps


class RequestFlow:
    """Everything that moves an AccessRequest between its states."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def submit(self, data: RequestInput, *, actor: Actor) -> AccessRequest:
        """Validate, decide and store a request, then ask its first approver."""
        ctx = self._ctx
        try:
            async with ctx.transaction() as session:
                identity, request = await self._build(data, actor=actor, session=session)
                session.add(request)
                await session.flush()
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="request.created",
                    at=request.created_at,
                    identity_id=identity.id,
                    resource=identity.native_id,
                    request_id=request.id,
                    detail={
                        "actions": request.actions,
                        "resources": request.resources,
                        "duration_seconds": request.duration_seconds,
                        "tier": request.tier,
                        "reason": request.reason,
                    },
                )
                ownership = await session.get(Ownership, identity.id)
        except LeashError as error:
            raise await ctx.refuse(
                error,
                actor=actor,
                event_type="request.refused",
                detail={"identity": data.identity[:200]},
            ) from None
        first = approval_route(request, ownership, ctx.rules.admins)[0]
        recipients = first + ((ctx.rules.approvals_channel,) if ctx.rules.approvals_channel else ())
        await ctx.tell(
            notices.approval_needed(request, identity, recipients, NoticeKind.APPROVAL_NEEDED)
        )
        return request

    async def _build(
        self, data: RequestInput, *, actor: Actor, session: AsyncSession
    ) -> tuple[Identity, AccessRequest]:
        rules = self._ctx.rules
        reason = " ".join(data.reason.split())
        if not reason:
            raise InvalidInputError("Say why you need it: `because <reason>` is required.")
        if len(reason) > MAX_REASON:
            raise InvalidInputError(f"The reason is longer than {MAX_REASON} characters.")
        identity = await registry.resolve(data.identity, session=session)
        if actor.kind is ActorKind.AGENT and actor.name != identity.id:
            raise NotAllowedError("An agent token can request access only for its own identity.")
        actions, resources, forced = self._permissions(data)
        ownership = await session.get(Ownership, identity.id)
        owners = Owners(
            primary=ownership.primary_owner if ownership else None,
            backup=ownership.backup_owner if ownership else None,
        )
        decision = decide(
            Draft(
                identity_name=identity.name,
                requester=actor.name,
                requester_kind=actor.kind,
                actions=actions,
                duration=data.duration,
                permission_set=data.permission_set,
                forced_tier=forced,
            ),
            owners=owners,
            rules=rules,
        )
        if decision.refusal is not None:
            error_type = (
                DurationTooLongError if data.duration > decision.max_duration else NotAllowedError
            )
            raise error_type(decision.refusal)
        now = self._ctx.clock.now()
        request = AccessRequest(
            id=new_id("r"),
            identity_id=identity.id,
            requester=actor.name,
            requester_kind=actor.kind,
            origin=actor.origin,
            permission_set=data.permission_set,
            actions=list(actions),
            resources=list(resources),
            duration_seconds=int(data.duration.total_seconds()),
            reason=reason,
            tier=decision.tier,
            approvals_required=decision.approvals_required,
            approvers=list(decision.approvers),
            decision_reasons=list(decision.reasons),
            extends_grant_id=data.extends_grant_id,
            created_at=now,
            decide_by=now + rules.requests.decide_within,
        )
        return identity, request

    def _permissions(
        self, data: RequestInput
    ) -> tuple[tuple[str, ...], tuple[str, ...], Tier | None]:
        rules = self._ctx.rules
        forced: Tier | None = None
        if data.permission_set is not None:
            permission_set = rules.permission_sets.get(data.permission_set)
            if permission_set is None:
                known = ", ".join(sorted(rules.permission_sets)) or "none configured"
                raise UnknownPermissionSetError(
                    f"There is no permission set '{data.permission_set[:60]}' (known: {known})."
                )
            actions = permission_set.actions
            resources = data.resources or permission_set.resources
            forced = permission_set.tier
        else:
            actions, resources = data.actions, data.resources
        if not actions:
            raise InvalidInputError("Name a permission set or at least one action.")
        if len(actions) > MAX_ITEMS or len(resources) > MAX_ITEMS:
            raise InvalidInputError(f"At most {MAX_ITEMS} actions and {MAX_ITEMS} resources.")
        bad = [a for a in actions if not is_valid_action(a)]
        if bad:
            raise InvalidInputError(
                f"Not an action: {', '.join(b[:60] for b in bad)} (expected service:Action)."
            )
        bad = [r for r in resources if not _RESOURCE.fullmatch(r)]
        if bad:
            raise InvalidInputError(f"Not a resource ARN: {', '.join(b[:80] for b in bad)}.")
        normalized = tuple(dict.fromkeys(normalize_action(a) for a in actions))
        return normalized, tuple(dict.fromkeys(resources)), forced

    async def _load(self, request_id: str, *, session: AsyncSession) -> AccessRequest:
        request = await session.get(AccessRequest, request_id.strip()[:16])
        if request is None:
            raise UnknownRequestError(f"There is no request '{request_id[:20]}'.")
        return request

    async def approve(
        self, request_id: str, *, actor: Actor, note: str | None = None
    ) -> ApprovalResult:
        """Record one approval; the last needed one turns the request into a grant."""
        ctx = self._ctx
        try:
            async with ctx.transaction() as session:
                result = await self._approve(request_id, actor=actor, note=note, session=session)
        except IntegrityError:
            error: LeashError = AlreadyDecidedError(f"Request {request_id} was already decided.")
            raise await ctx.refuse(
                error, actor=actor, event_type="request.approve_refused", request_id=request_id
            ) from None
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="request.approve_refused", request_id=request_id[:16]
            ) from None
        if result.grant is None:
            return result
        async with ctx.sessions() as session:
            identity = await session.get(Identity, result.request.identity_id)
        assert identity is not None
        await ctx.tell(notices.decided(result.request, identity, (result.request.requester,)))
        return result

    async def _approve(
        self, request_id: str, *, actor: Actor, note: str | None, session: AsyncSession
    ) -> ApprovalResult:
        ctx = self._ctx
        now = ctx.clock.now()
        request = await self._load(request_id, session=session)
        self._check_open(request, now)
        approved_by = list(
            (
                await session.exec(
                    select(Approval.approver).where(Approval.request_id == request.id)
                )
            ).all()
        )
        verdict = may_approve(
            approver=actor.name,
            approver_kind=actor.kind,
            requester=request.requester,
            approvers=request.approvers,
            already_approved=approved_by,
            rules=ctx.rules,
        )
        if not verdict.allowed:
            raise NotAllowedError(verdict.reason)
        session.add(Approval(request_id=request.id, approver=actor.name, note=note, created_at=now))
        await session.flush()
        count = len(approved_by) + 1
        if count < request.approvals_required:
            await audit.append(
                session=session,
                actor=actor,
                event_type="request.approval_recorded",
                at=now,
                identity_id=request.identity_id,
                request_id=request.id,
                detail={"approvals": count, "required": request.approvals_required},
            )
            return ApprovalResult(request, None, count)
        won = await compare_and_set(
            session,
            update(AccessRequest)
            .where(
                col(AccessRequest.id) == request.id,
                col(AccessRequest.state) == RequestState.PENDING,
            )
            .values(
                state=RequestState.APPROVED,
                decided_at=now,
                decided_by=actor.name,
                decision_note=note,
            ),
        )
        if not won:
            raise AlreadyDecidedError(f"Request {request.id} was already decided.")
        await session.refresh(request)
        grant = await self._grant_for(request, now=now, session=session)
        await audit.append(
            session=session,
            actor=actor,
            event_type="request.approved",
            at=now,
            identity_id=request.identity_id,
            request_id=request.id,
            grant_id=grant.id if grant else None,
            detail={"approvals": count, "note": note or ""},
        )
        return ApprovalResult(request, grant, count)

    async def _grant_for(
        self, request: AccessRequest, *, now: object, session: AsyncSession
    ) -> Grant | None:
        duration = timedelta(seconds=request.duration_seconds)
        clock_now = self._ctx.clock.now()
        if request.extends_grant_id:
            return await session.get(Grant, request.extends_grant_id)
        grant = Grant(
            id=new_id("g"),
            request_id=request.id,
            identity_id=request.identity_id,
            requester=request.requester,
            actions=list(request.actions),
            resources=list(request.resources),
            deny_actions=list(persistence_denies(request.actions)),
            state=GrantState.APPLYING,
            created_at=clock_now,
            expires_at=clock_now + duration,
            lease_until=clock_now + timedelta(seconds=60),
        )
        session.add(grant)
        await session.flush()
        return grant

    def _check_open(self, request: AccessRequest, now: object) -> None:
        if request.state == RequestState.PENDING and request.decide_by <= self._ctx.clock.now():
            raise RequestExpiredError(
                f"Request {request.id} expired before anyone decided; ask again."
            )
        if request.state == RequestState.EXPIRED:
            raise RequestExpiredError(
                f"Request {request.id} expired before anyone decided; ask again."
            )
        if request.state != RequestState.PENDING:
            by = f" by {request.decided_by}" if request.decided_by else ""
            raise AlreadyDecidedError(f"Request {request.id} was already {request.state}{by}.")

    async def deny(self, request_id: str, *, actor: Actor, reason: str) -> AccessRequest:
        """Refuse a request, with a reason the requester will read."""
        ctx = self._ctx
        try:
            async with ctx.transaction() as session:
                now = ctx.clock.now()
                cleaned = " ".join(reason.split())[:MAX_REASON]
                if not cleaned:
                    raise InvalidInputError(
                        "Say why you deny it: `deny <request-id> because <reason>`."
                    )
                request = await self._load(request_id, session=session)
                self._check_open(request, now)
                verdict = may_approve(
                    approver=actor.name,
                    approver_kind=actor.kind,
                    requester=request.requester,
                    approvers=request.approvers,
                    already_approved=(),
                    rules=ctx.rules,
                )
                if not verdict.allowed:
                    raise NotAllowedError(verdict.reason)
                if not await compare_and_set(
                    session,
                    update(AccessRequest)
                    .where(
                        col(AccessRequest.id) == request.id,
                        col(AccessRequest.state) == RequestState.PENDING,
                    )
                    .values(
                        state=RequestState.DENIED,
                        decided_at=now,
                        decided_by=actor.name,
                        decision_note=cleaned,
                    ),
                ):
                    raise AlreadyDecidedError(f"Request {request.id} was already decided.")
                await session.refresh(request)
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="request.denied",
                    at=now,
                    identity_id=request.identity_id,
                    request_id=request.id,
                    detail={"reason": cleaned},
                )
                identity = await session.get(Identity, request.identity_id)
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="request.deny_refused", request_id=request_id[:16]
            ) from None
        assert identity is not None
        await ctx.tell(notices.decided(request, identity, (request.requester,)))
        return request

    async def cancel(self, request_id: str, *, actor: Actor) -> AccessRequest:
        """Withdraw one's own pending request."""
        ctx = self._ctx
        try:
            async with ctx.transaction() as session:
                now = ctx.clock.now()
                request = await self._load(request_id, session=session)
                if request.requester != actor.name:
                    raise NotAllowedError("Only the requester can cancel a request.")
                self._check_open(request, now)
                if not await compare_and_set(
                    session,
                    update(AccessRequest)
                    .where(
                        col(AccessRequest.id) == request.id,
                        col(AccessRequest.state) == RequestState.PENDING,
                    )
                    .values(state=RequestState.CANCELLED, decided_at=now, decided_by=actor.name),
                ):
                    raise AlreadyDecidedError(f"Request {request.id} was already decided.")
                await session.refresh(request)
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="request.cancelled",
                    at=now,
                    identity_id=request.identity_id,
                    request_id=request.id,
                )
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="request.cancel_refused", request_id=request_id[:16]
            ) from None
        return request

    async def expire_due(self) -> int:
        """Expire every pending request past its decision deadline; tell requester and approvers."""
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
            async with ctx.transaction() as session:
                if not await compare_and_set(
                    session,
                    update(AccessRequest)
                    .where(
                        col(AccessRequest.id) == request_id,
                        col(AccessRequest.state) == RequestState.PENDING,
                    )
                    .values(state=RequestState.EXPIRED, decided_at=now, decided_by="leash"),
                ):
                    continue
                request = await self._load(request_id, session=session)
                await audit.append(
                    session=session,
                    actor=SYSTEM,
                    event_type="request.expired",
                    at=now,
                    identity_id=request.identity_id,
                    request_id=request.id,
                )
                identity = await session.get(Identity, request.identity_id)
            expired += 1
            assert identity is not None
            await ctx.tell(
                notices.request_expired(request, identity, (request.requester, *request.approvers))
            )
        return expired

    async def nudge_due(self) -> int:
        """Remind the current approver, then escalate to the next step of the route."""
        ctx = self._ctx
        now = ctx.clock.now()
        timings = ctx.rules.requests
        async with ctx.sessions() as session:
            pending = (
                await session.exec(
                    select(AccessRequest).where(col(AccessRequest.state) == RequestState.PENDING)
                )
            ).all()
        nudged = 0
        for request in pending:
            since = request.last_nudge_at or request.created_at
            if request.reminders_sent == 0 and now - request.created_at >= timings.remind_after:
                kind, level = NoticeKind.REMINDER, request.escalation_level
            elif (
                now - since >= timings.escalate_after
                and now - request.created_at >= timings.escalate_after
            ):
                kind, level = NoticeKind.ESCALATED, request.escalation_level + 1
            else:
                continue
            async with ctx.transaction() as session:
                if not await compare_and_set(
                    session,
                    update(AccessRequest)
                    .where(
                        col(AccessRequest.id) == request.id,
                        col(AccessRequest.state) == RequestState.PENDING,
                        col(AccessRequest.reminders_sent) == request.reminders_sent,
                        col(AccessRequest.escalation_level) == request.escalation_level,
                    )
                    .values(
                        reminders_sent=request.reminders_sent + 1,
                        escalation_level=level,
                        last_nudge_at=now,
                    ),
                ):
                    continue
                ownership = await session.get(Ownership, request.identity_id)
                identity = await session.get(Identity, request.identity_id)
                route = approval_route(request, ownership, ctx.rules.admins)
                if kind is NoticeKind.ESCALATED and level >= len(route):
                    continue
                await audit.append(
                    session=session,
                    actor=SYSTEM,
                    event_type=f"request.{kind}",
                    at=now,
                    identity_id=request.identity_id,
                    request_id=request.id,
                    detail={"level": level},
                )
            assert identity is not None
            nudged += 1
            await ctx.tell(
                notices.approval_needed(request, identity, route[min(level, len(route) - 1)], kind)
            )
        return nudged


async def pending_count(*, session: AsyncSession) -> int:
    return (
        await session.exec(
            select(func.count())
            .select_from(AccessRequest)
            .where(col(AccessRequest.state) == RequestState.PENDING)
        )
    ).one()
