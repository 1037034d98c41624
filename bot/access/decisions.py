"""What every decision on a request checks first: that it exists, is still open, and that
this person may decide it (the authority module, with an extension's requester counted)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.access.extension_rules import original_request
from bot.core.authorizing import check, request_facts, requester_keys
from bot.core.context import Context
from bot.domain.actors import Actor
from bot.domain.authority import Verb
from bot.domain.errors import (
    AlreadyDecidedError,
    GrantStateError,
    RequestExpiredError,
    UnknownRequestError,
)
from bot.domain.handles import keys_for
from bot.domain.states import GrantState, RequestState
from bot.store.tables import AccessRequest, Approval, Grant


def approval_keys(approval: Approval) -> frozenset[str]:
    """The handles an earlier approver was known by (older rows: their recorded name)."""
    return frozenset(approval.approver_handles) or keys_for([approval.approver])


async def load_request(request_id: str, *, session: AsyncSession) -> AccessRequest:
    request = await session.get(AccessRequest, request_id.strip()[:16])
    if request is None:
        raise UnknownRequestError(f"There is no request '{request_id[:20]}'.")
    return request


async def check_may_decide(
    ctx: Context,
    verb: Verb,
    request: AccessRequest,
    actor: Actor,
    *,
    session: AsyncSession,
    prior: tuple[frozenset[str], ...] = (),
) -> None:
    """Ask the authority module; an extension's grant requester counts as a requester."""
    also: frozenset[str] = frozenset()
    if request.extends_grant_id:
        original = await original_request(request.extends_grant_id, session=session)
        if original is not None:
            also = requester_keys(original)
    facts = await request_facts(
        request,
        session=session,
        rules=ctx.rules,
        also_requesters=also,
        prior_approvals=prior,
    )
    check(verb, actor, facts)
    if verb is Verb.APPROVE and request.extends_grant_id:
        await _extended_grant_live(request.extends_grant_id, session=session)


async def _extended_grant_live(grant_id: str, *, session: AsyncSession) -> None:
    """An extension is approved only while its grant is active: one approved after the grant
    ended would be recorded as approved and then fail to extend anything."""
    grant = await session.get(Grant, grant_id)
    if grant is None or grant.state != GrantState.ACTIVE:
        state = grant.state if grant else "gone"
        raise GrantStateError(
            f"Grant {grant_id} is {state}: its extension can no longer be approved "
            "(deny it, or ask for a new grant)."
        )


def check_open(request: AccessRequest, now: datetime) -> None:
    if request.state == RequestState.EXPIRED or (
        request.state == RequestState.PENDING and request.decide_by <= now
    ):
        raise RequestExpiredError(f"Request {request.id} expired before anyone decided; ask again.")
    if request.state != RequestState.PENDING:
        by = f" by {request.decided_by}" if request.decided_by else ""
        raise AlreadyDecidedError(f"Request {request.id} was already {request.state}{by}.")
