"""How many requests may wait for one identity, and asking twice for the same thing.

Every requester (agent token, person in chat, console) comes through `RequestFlow.submit`,
which calls `check_pending` with the drafted request inside its transaction: an identical
request already waiting from the same requester is handed back instead of a new one (no
second approval card), and a request over `[requests] max_pending_per_identity` is refused,
so nobody is flooded with cards and a privileged request cannot hide among routine ones.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.errors import LeashError, NotAllowedError
from bot.domain.rules import Rules
from bot.domain.states import RequestState
from bot.store import audit
from bot.store.tables import AccessRequest, Identity


class AlreadyWaitingError(LeashError):
    """The same request from the same requester is already waiting: `request` is that one.

    Not a refusal: the agent API answers it with the waiting request (200), chat surfaces show
    the sentence."""

    status = 409
    code = "already_waiting"

    def __init__(self, request: AccessRequest, when: str) -> None:
        who = ", ".join(request.approvers[:5]) + ("…" if len(request.approvers) > 5 else "")
        super().__init__(
            f"Already waiting: {request.id} asks for the same access "
            f"({request.approvals_required} of: {who}); it expires at {when}.",
            field="permissions",
        )
        self.request = request


def _same(asked: AccessRequest, waiting: AccessRequest) -> bool:
    return (
        waiting.requester == asked.requester
        and waiting.permission_set == asked.permission_set
        and sorted(waiting.actions) == sorted(asked.actions)
        and sorted(waiting.resources) == sorted(asked.resources)
        and waiting.duration_seconds == asked.duration_seconds
        and waiting.extends_grant_id == asked.extends_grant_id
    )


async def check_pending(
    asked: AccessRequest, identity: Identity, *, rules: Rules, session: AsyncSession
) -> AccessRequest | None:
    """The identical request already waiting, if any; otherwise None, or refused over the cap.

    Takes the audit chain's lock first (the transaction takes it to record the request anyway)
    so that concurrent submissions on PostgreSQL are counted one after the other; SQLite's
    writers are serialised already.
    """
    await audit.lock_chain(session)
    waiting = (
        await session.exec(
            select(AccessRequest)
            .where(col(AccessRequest.identity_id) == identity.id)
            .where(col(AccessRequest.state) == RequestState.PENDING)
            .where(col(AccessRequest.decide_by) > asked.created_at)
            .order_by(col(AccessRequest.created_at))
        )
    ).all()
    for request in waiting:
        if _same(asked, request):
            return request
    cap = rules.requests.max_pending_per_identity
    if len(waiting) >= cap:
        raise NotAllowedError(
            f"{identity.name} already has {len(waiting)} requests waiting; "
            "wait for a decision or cancel one.",
            field="identity",
        )
    return None


__all__ = ["AlreadyWaitingError", "check_pending"]
