"""Access requests: submit, approve, deny, cancel."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.access.cloud_answers import ask_the_cloud_first
from bot.access.deadlines import approval_route
from bot.access.decisions import approval_keys, check_may_decide, check_open, load_request
from bot.access.drafting import MAX_REASON, RequestInput, draft_request
from bot.access.extension_rules import check_extension
from bot.access.request_limits import AlreadyWaitingError, check_pending
from bot.core import notices
from bot.core.authorizing import check, request_facts
from bot.core.context import Context, new_id
from bot.core.persons import resolve
from bot.core.transitions import Event, Moved, move_in
from bot.domain import log_context
from bot.domain.actors import Actor
from bot.domain.authority import Verb, people
from bot.domain.catalog import persistence_denies
from bot.domain.errors import (
    AlreadyDecidedError,
    InvalidInputError,
    LeashError,
)
from bot.domain.messages import Notice, NoticeKind
from bot.domain.states import GrantState, Machine, RequestState, check_start
from bot.store import audit
from bot.store.tables import AccessRequest, Approval, Grant, Identity, Ownership

log = logging.getLogger("leash.requests")


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    request: AccessRequest
    grant: Grant | None
    approvals: int
    approved_by: tuple[str, ...] = ()  # who approved so far, oldest first
    approved_keys: frozenset[str] = frozenset()  # every handle of those approvers


async def _to_requester(
    request: AccessRequest, identity: Identity, session: AsyncSession
) -> Notice:
    """A decision is told to whoever asked."""
    return notices.decided(request, identity, (request.requester,))


async def _store(
    request: AccessRequest, identity: Identity, *, actor: Actor, session: AsyncSession
) -> None:
    """Add a drafted request and record its creation."""
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


class RequestFlow:
    """Everything that moves an AccessRequest between its states."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def submit(self, data: RequestInput, *, actor: Actor) -> AccessRequest:
        """Validate, decide and store a request, then ask its first approver.

        The same request already waiting from the same requester raises `AlreadyWaitingError`
        carrying it (nothing new is stored or sent); over the identity's cap is refused."""
        ctx = self._ctx
        actor = await resolve(ctx, actor)
        try:
            answers = await ask_the_cloud_first(ctx, data, actor)
            async with ctx.transaction() as session:
                also: frozenset[str] = frozenset()
                if data.extends_grant_id is not None:
                    also = await check_extension(
                        data.extends_grant_id, data.duration, actor=actor, ctx=ctx, session=session
                    )
                identity, request = await draft_request(
                    data,
                    actor=actor,
                    rules=ctx.rules,
                    now=ctx.clock.now(),
                    session=session,
                    resolve=answers.resolver(ctx),
                    also_requesters=also,
                )
                waiting = await check_pending(request, identity, rules=ctx.rules, session=session)
                if waiting is None:
                    request.decision_reasons = [
                        *request.decision_reasons,
                        await answers.expiry_for(ctx, identity),
                    ]
                    await _store(request, identity, actor=actor, session=session)
                    ownership = await session.get(Ownership, identity.id)
        except LeashError as error:
            raise await ctx.refuse(
                error,
                actor=actor,
                event_type="request.refused",
                detail={"identity": data.identity[:200]},
                grant_id=data.extends_grant_id,
            ) from None
        if waiting is not None:
            raise AlreadyWaitingError(waiting, waiting.decide_by.strftime("%Y-%m-%d %H:%M:%S UTC"))
        first = approval_route(request, ownership, ctx.rules.admins)[0]
        recipients = first + ((ctx.rules.approvals_channel,) if ctx.rules.approvals_channel else ())
        await ctx.tell(
            notices.approval_needed(request, identity, recipients, NoticeKind.APPROVAL_NEEDED)
        )
        return request

    async def extend(
        self, grant_id: str, *, duration: timedelta, reason: str, actor: Actor
    ) -> AccessRequest:
        """Ask for more time on a live grant: a request for the same permissions."""
        async with self._ctx.sessions() as session:
            grant = await session.get(Grant, grant_id.strip()[:16])
        return await self.submit(
            RequestInput(
                identity=grant.identity_id if grant else "",
                duration=duration,
                reason=reason,
                actions=tuple(grant.actions) if grant else (),
                resources=tuple(grant.resources) if grant else (),
                extends_grant_id=grant_id.strip()[:16],
            ),
            actor=actor,
        )

    async def approve(
        self, request_id: str, *, actor: Actor, note: str | None = None
    ) -> ApprovalResult:
        """Record one approval; the last needed one turns the request into a grant."""
        with log_context.about(request_id=request_id.strip()[:16]):
            actor = await resolve(self._ctx, actor)
            return await self._record_approval(request_id, actor=actor, note=note)

    async def _record_approval(
        self, request_id: str, *, actor: Actor, note: str | None
    ) -> ApprovalResult:
        ctx = self._ctx
        try:
            async with ctx.transaction() as session:
                result, done = await self._approve(
                    request_id, actor=actor, note=note, session=session
                )
                # Read with the approval (the rules above loaded it): no session of its own.
                identity = await session.get(Identity, result.request.identity_id)
        except IntegrityError:
            error: LeashError = AlreadyDecidedError(f"Request {request_id} was already decided.")
            raise await ctx.refuse(
                error, actor=actor, event_type="request.approve_refused", request_id=request_id
            ) from None
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="request.approve_refused", request_id=request_id[:16]
            ) from None
        if result.grant is not None and not result.request.extends_grant_id:
            self._ctx.crashes.reached("approved", grant_id=result.grant.id)
        if result.grant is None:
            log.info(
                "request %s: approval %d of %d by %s",
                result.request.id,
                result.approvals,
                result.request.approvals_required,
                actor.name,
            )
            assert identity is not None
            await self._tell_progress(result, identity)
            return result
        assert identity is not None
        log_context.add(grant_id=result.grant.id, identity=identity.native_id)
        log.info("request %s approved by %s", result.request.id, actor.name)
        if done is not None:
            await done.tell()
        return result

    async def _tell_progress(self, result: ApprovalResult, identity: Identity) -> None:
        """The requester hears how far it got; every copy of the card shows it, buttons kept."""
        request, approved_by = result.request, result.approved_by
        waiting_for = tuple(n for n in request.approvers if not people([n]) & result.approved_keys)
        await self._ctx.tell(
            notices.approval_progress(request, identity, approved_by, (request.requester,))
        )
        await self._ctx.tell(notices.card_updated(request, identity, approved_by, waiting_for))

    async def _approve(
        self, request_id: str, *, actor: Actor, note: str | None, session: AsyncSession
    ) -> tuple[ApprovalResult, Moved[AccessRequest] | None]:
        """Record the approval; the last one needed approves the request (and says so later)."""
        now = self._ctx.clock.now()
        request = await load_request(request_id, session=session)
        approvals = (
            await session.exec(select(Approval).where(Approval.request_id == request.id))
        ).all()
        prior = tuple(approval_keys(a) for a in approvals)
        # Who may decide comes before the state, so a stranger learns nothing of the request;
        # a second approval by the same person after that, so a late click hears the outcome.
        await check_may_decide(self._ctx, Verb.APPROVE, request, actor, session=session)
        check_open(request, now)
        await check_may_decide(
            self._ctx, Verb.APPROVE, request, actor, session=session, prior=prior
        )
        session.add(
            Approval(
                request_id=request.id,
                approver=actor.name,
                approver_person=actor.person_id,
                approver_handles=sorted(actor.keys),
                note=note,
                created_at=now,
            )
        )
        await session.flush()
        count = len(approvals) + 1
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
            approved_by = (*(a.approver for a in approvals), actor.name)
            approved_keys = frozenset(actor.keys).union(*prior)
            return ApprovalResult(request, None, count, approved_by, approved_keys), None
        return await self._approved(
            request, actor=actor, note=note, count=count, now=now, session=session
        )

    async def _approved(
        self,
        request: AccessRequest,
        *,
        actor: Actor,
        note: str | None,
        count: int,
        now: datetime,
        session: AsyncSession,
    ) -> tuple[ApprovalResult, Moved[AccessRequest]]:
        """Move the request to approved with the grant it produces (or the one it extends)."""
        extended: Grant | None = None
        if request.extends_grant_id:
            extended = await session.get(Grant, request.extends_grant_id)
        grant_id = None if request.extends_grant_id else new_id("g")
        created: list[Grant] = []

        async def produce(session: AsyncSession) -> None:
            if grant_id is not None:
                created.append(await self._new_grant(request, grant_id, now=now, session=session))

        done: Moved[AccessRequest] = await move_in(
            session,
            Machine.REQUEST,
            request.id,
            from_states=RequestState.PENDING,
            to_state=RequestState.APPROVED,
            at=now,
            ctx=self._ctx,
            values={"decided_at": now, "decided_by": actor.name, "decision_note": note},
            event=Event(
                actor,
                "request.approved",
                detail={"approvals": count, "note": note or ""},
                grant_id=grant_id or (extended.id if extended else None),
            ),
            also=produce,
            notice=_to_requester,
        )
        if not done.moved:
            raise AlreadyDecidedError(f"Request {request.id} was already decided.")
        grant = created[0] if created else extended
        return ApprovalResult(done.row, grant, count), done

    async def _new_grant(
        self, request: AccessRequest, grant_id: str, *, now: datetime, session: AsyncSession
    ) -> Grant:
        """Create the grant an approval produces, `applying` under this process's lease."""
        check_start(Machine.GRANT, GrantState.APPLYING)
        duration = timedelta(seconds=request.duration_seconds)
        identity = await session.get(Identity, request.identity_id)
        provider = identity.provider if identity is not None else "aws"
        grant = Grant(
            id=grant_id,
            request_id=request.id,
            identity_id=request.identity_id,
            requester=request.requester,
            actions=list(request.actions),
            resources=list(request.resources),
            deny_actions=list(persistence_denies(request.actions, provider=provider)),
            state=GrantState.APPLYING,
            created_at=now,
            expires_at=now + duration,
            # How long this process holds the apply before the sweep may resume it.
            lease_until=now + self._ctx.rules.grants.lease,
        )
        session.add(grant)
        await session.flush()
        return grant

    async def deny(self, request_id: str, *, actor: Actor, reason: str) -> AccessRequest:
        """Refuse a request, with a reason the requester will read."""
        with log_context.about(request_id=request_id.strip()[:16]):
            actor = await resolve(self._ctx, actor)
            return await self._deny(request_id, actor=actor, reason=reason)

    async def _deny(self, request_id: str, *, actor: Actor, reason: str) -> AccessRequest:
        ctx = self._ctx
        try:
            async with ctx.transaction() as session:
                now = ctx.clock.now()
                cleaned = " ".join(reason.split())[:MAX_REASON]
                if not cleaned:
                    raise InvalidInputError(
                        "Say why you deny it: `deny <request-id> because <reason>`."
                    )
                request = await load_request(request_id, session=session)
                await check_may_decide(ctx, Verb.DENY, request, actor, session=session)
                check_open(request, now)
                done: Moved[AccessRequest] = await move_in(
                    session,
                    Machine.REQUEST,
                    request.id,
                    from_states=RequestState.PENDING,
                    to_state=RequestState.DENIED,
                    at=now,
                    ctx=ctx,
                    values={"decided_at": now, "decided_by": actor.name, "decision_note": cleaned},
                    event=Event(actor, "request.denied", detail={"reason": cleaned}),
                    notice=_to_requester,
                )
                if not done.moved:
                    raise AlreadyDecidedError(f"Request {request.id} was already decided.")
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="request.deny_refused", request_id=request_id[:16]
            ) from None
        log_context.add(identity=done.identity.native_id)
        log.info("request %s denied by %s", done.row.id, actor.name)
        await done.tell()
        return done.row

    async def cancel(self, request_id: str, *, actor: Actor) -> AccessRequest:
        """Withdraw one's own pending request."""
        ctx = self._ctx
        actor = await resolve(ctx, actor)
        try:
            async with ctx.transaction() as session:
                now = ctx.clock.now()
                request = await load_request(request_id, session=session)
                check(
                    Verb.CANCEL,
                    actor,
                    await request_facts(request, session=session, rules=ctx.rules),
                )
                check_open(request, now)
                done: Moved[AccessRequest] = await move_in(
                    session,
                    Machine.REQUEST,
                    request.id,
                    from_states=RequestState.PENDING,
                    to_state=RequestState.CANCELLED,
                    at=now,
                    ctx=ctx,
                    values={"decided_at": now, "decided_by": actor.name},
                    event=Event(actor, "request.cancelled"),
                )
                if not done.moved:
                    raise AlreadyDecidedError(f"Request {request.id} was already decided.")
        except LeashError as error:
            raise await ctx.refuse(
                error, actor=actor, event_type="request.cancel_refused", request_id=request_id[:16]
            ) from None
        return done.row
