"""Persons: one per human, holding every handle Leash has met them by.

A surface reports the handles it knows of a sender together (Slack: the user id and the
e-mail `users.info` gives; Teams: the Bot Framework id, the Entra object id and the roster's
e-mail). Handles reported together are one person; a handle already known to another person
merges the two, so `U0ADMIN` on Slack and `secops@example.com` on Teams end up as one person
once Slack has said that U0ADMIN's e-mail is secops@example.com.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.context import Context, new_id
from bot.domain import handles
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.store import audit
from bot.store.tables import Person, PersonHandle

# Surfaces whose user ids say nothing about who the person is elsewhere: a sender there is
# resolved only once an e-mail or directory id is known for them.
CHAT_ORIGINS = frozenset({"slack", "teams"})


async def keys_of_person(keys: frozenset[str], *, session: AsyncSession) -> dict[str, set[str]]:
    """Map each person holding any of `keys` to all of that person's keys."""
    if not keys:
        return {}
    owners = await session.exec(
        select(PersonHandle.person_id).where(col(PersonHandle.key).in_(sorted(keys)))
    )
    ids = set(owners.all())
    if not ids:
        return {}
    rows = await session.exec(select(PersonHandle).where(col(PersonHandle.person_id).in_(ids)))
    found: dict[str, set[str]] = {person: set() for person in ids}
    for row in rows.all():
        found[row.person_id].add(row.key)
    return found


async def _link(actor: Actor, *, session: AsyncSession, now: datetime) -> Actor:
    own = actor.keys
    found = await keys_of_person(own, session=session)
    if found:
        keep = min(found)  # ids sort by creation only loosely; any fixed choice will do
        merged = sorted(set(found) - {keep})
    else:
        keep = new_id("p")
        merged = []
        session.add(Person(id=keep, display=actor.name[:256], created_at=now))
        await session.flush()
    known = set().union(*found.values()) if found else set()
    added = sorted(own - known)
    if merged:
        await session.exec(
            update(PersonHandle)
            .where(col(PersonHandle.person_id).in_(merged))
            .values(person_id=keep)
        )
        await session.exec(delete(Person).where(col(Person.id).in_(merged)))
    for key in added:
        session.add(PersonHandle(key=key, person_id=keep, seen_at=now))
    if added or merged:
        await session.flush()
        await audit.append(
            session=session,
            actor=actor,
            event_type="person.linked",
            at=now,
            detail={"person": keep, "handles": added, "merged": merged},
        )
    return actor.with_person(keep, frozenset(known | own))


def _resolved(actor: Actor) -> bool:
    if actor.kind is not ActorKind.USER or actor.origin not in CHAT_ORIGINS:
        return True
    return handles.anchored(actor.keys)


async def resolve(ctx: Context, actor: Actor) -> Actor:
    """Link the actor's handles to their person and return the actor with all of them.

    Agents and Leash itself are not persons and come back as they are.
    """
    if actor.kind is not ActorKind.USER or actor.person_id is not None:
        return actor  # not a person, or resolved already (the handler resolves every sender)
    async with ctx.sessions() as session:  # the usual case: every handle linked already
        found = await keys_of_person(actor.keys, session=session)
    if len(found) == 1:
        ((person, keys),) = found.items()
        if actor.keys <= keys:
            linked = actor.with_person(person, frozenset(keys))
            return replace(linked, resolved=_resolved(linked))
    for attempt in range(3):
        try:
            async with ctx.transaction() as session:
                linked = await _link(actor, session=session, now=ctx.clock.now())
            return replace(linked, resolved=_resolved(linked))
        except IntegrityError:
            # Another request linked one of these handles at the same moment: read it again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def expanded(actor: Actor, *, session: AsyncSession) -> Actor:
    """The actor with every handle of its person as the database knows it (reads only)."""
    if actor.kind is not ActorKind.USER:
        return actor
    found = await keys_of_person(actor.keys, session=session)
    if not found:
        return replace(actor, resolved=_resolved(actor))
    keys = frozenset(set().union(*found.values()))
    person = actor.person_id or min(found)
    linked = actor.with_person(person, keys)
    return replace(linked, resolved=_resolved(linked))
