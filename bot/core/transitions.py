"""Every move of a request, a grant or an enforcement between states goes through here.

`set_state` is the compare-and-set of one move: checked against the transition table
(bot.domain.states) before anything is written, then guarded on the state it moves from, so of
two processes making the same move exactly one wins. `move_in` adds what follows a won move in
the same transaction (its audit event, and any other write it carries), reloads the row and
builds the notice; `move` runs that in a transaction of its own. The notice is delivered by
`Moved.tell`, which the caller calls once its own after-steps (timers, crash points) are done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.context import Context, compare_and_set
from bot.core.observations import moved as observe_move
from bot.domain.actors import Actor
from bot.domain.messages import Notice
from bot.domain.states import Machine, Outcome, check_move
from bot.store import audit
from bot.store.tables import AccessRequest, Enforcement, Grant, Identity, Ownership

Row = TypeVar("Row", AccessRequest, Grant, Enforcement)

_TABLES: dict[Machine, type[AccessRequest] | type[Grant] | type[Enforcement]] = {
    Machine.REQUEST: AccessRequest,
    Machine.GRANT: Grant,
    Machine.ENFORCEMENT: Enforcement,
}


@dataclass(frozen=True, slots=True)
class Event:
    """The audit event a won move writes (the row's identity and ids are filled in)."""

    actor: Actor
    event_type: str
    detail: dict[str, Any] | None = None
    outcome: Outcome = Outcome.SUCCESS
    request_id: str | None = None  # a grant event about another request (an extension)
    grant_id: str | None = None  # a request event about its grant (an approval)


# Builds the notice of a won move from the reloaded row and its identity, in the transaction.
NoticeFor = Callable[[Row, Identity, AsyncSession], Awaitable[Notice | None]]
# Any other write a won move carries, in the same transaction.
Also = Callable[[AsyncSession], Awaitable[None]]


@dataclass(slots=True)
class Moved(Generic[Row]):
    """What a move did: `moved` False when the row was no longer where the move starts."""

    moved: bool
    row: Row  # as the record says after the attempt
    identity: Identity
    ctx: Context
    notice: Notice | None = field(default=None)

    async def tell(self) -> None:
        """Deliver the notice of a won move (nothing when the move was lost)."""
        if self.moved and self.notice is not None:
            await self.ctx.tell(self.notice)


def _states(from_states: str | Iterable[str]) -> tuple[str, ...]:
    return (from_states,) if isinstance(from_states, str) else tuple(from_states)


async def set_state(
    session: AsyncSession,
    kind: Machine,
    row_id: str,
    *,
    from_states: str | Iterable[str],
    to_state: str,
    where: ColumnElement[bool] | None = None,
    **values: Any,
) -> bool:
    """Move one row from any of `from_states` to `to_state` (and set `values`) if it is there.

    Every (from, to) pair is checked against the table first: an illegal move raises
    IllegalTransitionError and writes nothing. `where` narrows the guard further (a lease run
    out, a claim still held). True when exactly this row moved.
    """
    starts = _states(from_states)
    for start in starts:
        check_move(kind, start, to_state)
    table = _TABLES[kind]
    guard = (col(table.id) == row_id) & col(table.state).in_(starts)
    if where is not None:
        guard &= where
    statement = update(table).where(guard).values(state=to_state, **values)
    return await compare_and_set(session, statement)


async def move_in(
    session: AsyncSession,
    kind: Machine,
    row_id: str,
    *,
    from_states: str | Iterable[str],
    to_state: str,
    at: datetime,
    ctx: Context,
    event: Event | None = None,
    values: dict[str, Any] | None = None,
    where: ColumnElement[bool] | None = None,
    also: Also | None = None,
    notice: NoticeFor[Row] | None = None,
) -> Moved[Row]:
    """`set_state`; when the move is won, `also` and its audit event; then reload the row.

    The row is read back whatever happened (the record's word on where it is now), and the
    notice is built from it when the move was won.
    """
    moved = await set_state(
        session,
        kind,
        row_id,
        from_states=from_states,
        to_state=to_state,
        where=where,
        **(values or {}),
    )
    row: Any = await session.get(_TABLES[kind], row_id, populate_existing=True)
    assert row is not None
    identity = await session.get(Identity, row.identity_id)
    assert identity is not None
    if moved:
        if also is not None:
            await also(session)
        if event is not None:
            await _audit(session, kind, row, identity, event, at=at)
        observe_move(ctx.observer, session, kind, row, came_from=_states(from_states))
    built = await notice(row, identity, session) if moved and notice is not None else None
    return Moved(moved, row, identity, ctx, built)


async def move(
    ctx: Context,
    kind: Machine,
    row_id: str,
    *,
    from_states: str | Iterable[str],
    to_state: str,
    at: datetime,
    event: Event | None = None,
    values: dict[str, Any] | None = None,
    where: ColumnElement[bool] | None = None,
    also: Also | None = None,
    notice: NoticeFor[Row] | None = None,
) -> Moved[Row]:
    """`move_in` in a transaction of its own; call `tell()` on the answer to notify."""
    async with ctx.transaction() as session:
        return await move_in(
            session,
            kind,
            row_id,
            from_states=from_states,
            to_state=to_state,
            at=at,
            ctx=ctx,
            event=event,
            values=values,
            where=where,
            also=also,
            notice=notice,
        )


async def _audit(
    session: AsyncSession,
    kind: Machine,
    row: Any,
    identity: Identity,
    event: Event,
    *,
    at: datetime,
) -> None:
    """The event names the identity and, as each kind always has, the row's ids."""
    ids: dict[str, Any]
    if kind is Machine.GRANT:
        ids = {
            "resource": identity.native_id,
            "request_id": event.request_id or row.request_id,
            "grant_id": row.id,
        }
    elif kind is Machine.REQUEST:
        ids = {"request_id": row.id, "grant_id": event.grant_id}
    else:
        ids = {"resource": identity.native_id}
    await audit.append(
        session=session,
        actor=event.actor,
        event_type=event.event_type,
        at=at,
        outcome=event.outcome,
        identity_id=identity.id,
        detail=event.detail,
        **ids,
    )


async def grant_people(session: AsyncSession, grant: Grant) -> tuple[str, ...]:
    """Who hears of a grant's moves: its requester and the identity's primary owner."""
    ownership = await session.get(Ownership, grant.identity_id)
    people = [grant.requester]
    if ownership and ownership.primary_owner:
        people.append(ownership.primary_owner)
    return tuple(dict.fromkeys(people))
