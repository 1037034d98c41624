"""What the services report as it happens, for whoever counts it (the /metrics instruments).

`Observer` is the port: the composition root hands one to the Context (`bot.http.instruments`
counts into Prometheus series); without one nothing is counted. A move of a request or grant
is reported by `bot.core.transitions` through `moved`, and only once its transaction has
committed: a move rolled back never happened, so it is never counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import event
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.states import GrantState, Machine, RequestState

log = logging.getLogger("leash.observations")

_PENDING = "leash.observations.pending"
# Where a request ends up once decided, and the grant states worth counting a move into.
DECIDED = frozenset(
    {RequestState.APPROVED, RequestState.DENIED, RequestState.EXPIRED, RequestState.CANCELLED}
)
GRANT_MOVES = frozenset(
    {
        GrantState.ACTIVE,
        GrantState.FAILED,
        GrantState.REVOKED,
        GrantState.REVOKE_FAILED,
        GrantState.IRREVOCABLE,
    }
)


class Observer(Protocol):
    """Told of each event once, by the replica where it happened."""

    def request_decided(self, state: str, *, waited_seconds: float | None) -> None:
        """A request left pending for `state`, `waited_seconds` after it was made."""

    def grant_moved(
        self, state: str, *, apply_seconds: float | None, revoke_lag_seconds: float | None
    ) -> None:
        """A grant moved into `state`: applied (with the seconds from approval), revoked
        (with the seconds past its expiry when it had expired), failed, ..."""

    def scan_completed(self, *, seconds: float, failed: int) -> None:
        """A usage scan run ended after `seconds`; `failed` identities could not be read."""


class NoObserver:
    """Counts nothing (a Context built without instruments: tools, some tests)."""

    def request_decided(self, state: str, *, waited_seconds: float | None) -> None:
        return None

    def grant_moved(
        self, state: str, *, apply_seconds: float | None, revoke_lag_seconds: float | None
    ) -> None:
        return None

    def scan_completed(self, *, seconds: float, failed: int) -> None:
        return None


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max((later - earlier).total_seconds(), 0.0)


def moved(
    observer: Observer,
    session: AsyncSession,
    kind: Machine,
    row: Any,
    *,
    came_from: tuple[str, ...],
) -> None:
    """Report a won move of `row` (reloaded, in its new state) once `session` commits.

    A move within one state (an extension, an escalation) is no event to count.
    """
    state = row.state
    if state in came_from:
        return
    if kind is Machine.REQUEST and state in DECIDED:
        waited = _seconds(row.decided_at, row.created_at)
        after_commit(session, lambda: observer.request_decided(state, waited_seconds=waited))
    elif kind is Machine.GRANT and state in GRANT_MOVES:
        applied = _seconds(row.applied_at, row.created_at) if state == GrantState.ACTIVE else None
        lag = _revoke_lag(row) if state == GrantState.REVOKED else None
        after_commit(
            session,
            lambda: observer.grant_moved(state, apply_seconds=applied, revoke_lag_seconds=lag),
        )


def _revoke_lag(grant: Any) -> float | None:
    """Seconds from expiry to revocation; None for a grant released before it expired."""
    if grant.revoked_at is None or grant.revoked_at < grant.expires_at:
        return None
    return _seconds(grant.revoked_at, grant.expires_at)


def after_commit(session: AsyncSession, report: Callable[[], None]) -> None:
    """Call `report` when the session's transaction commits; drop it if it rolls back."""
    pending: list[Callable[[], None]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        sync = session.sync_session
        event.listen(sync, "after_commit", lambda _: _report(session))
        event.listen(sync, "after_rollback", lambda _: pending.clear())
    pending.append(report)


def _report(session: AsyncSession) -> None:
    pending: list[Callable[[], None]] = session.info.get(_PENDING, [])
    reports, pending[:] = list(pending), []
    for report in reports:
        try:
            report()
        except Exception:  # counting must never undo or fail what was committed
            log.exception("an observation could not be recorded")
