"""What restriction, quarantine and guardrails share: who may act, and one live slot per kind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.authorizing import check_on_identity, placed_as
from bot.core.context import Context, identity_ref, new_id
from bot.core.transitions import Also, Event, Moved, move
from bot.domain.actors import Actor
from bot.domain.authority import PLACED_AS, Rank, Verb
from bot.domain.errors import LeashError
from bot.domain.rules import Enforcement as Mode
from bot.domain.rules import Rules
from bot.domain.states import (
    ActorKind,
    EnforcementKind,
    EnforcementState,
    Machine,
    Outcome,
    check_start,
)
from bot.inventory import registry
from bot.store import audit
from bot.store.tables import Enforcement, Identity
from cloud.base import CloudError, CloudProvider, IdentityRef, Snapshot

LIVE_STATES = (EnforcementState.APPLYING, EnforcementState.ACTIVE)


class AlreadyEnforcedError(LeashError):
    code = "already_enforced"


class NotEnforcedError(LeashError):
    code = "not_enforced"


def slot_key(identity_id: str, kind: EnforcementKind) -> str:
    return f"{identity_id}|{kind}"


_VERBS = {
    "quarantine": Verb.QUARANTINE,
    "release": Verb.RELEASE,
    "restrict": Verb.RESTRICT,
    "unrestrict": Verb.UNRESTRICT,
    "guard": Verb.GUARDRAIL_APPLY,
    "keep": Verb.KEEP,
    "scan": Verb.SCAN,
}


async def check_may_act(
    identity: Identity,
    *,
    actor: Actor,
    session: AsyncSession,
    rules: Rules,
    what: str,
    placed: Enforcement | None = None,
) -> None:
    """Ask the authority module whether the actor may `what` the identity.

    Lifting an enforcement (`placed`) needs at least the authority it was placed with.
    """
    rank = PLACED_AS.get(placed.placed_as, Rank.ADMIN) if placed is not None else None
    await check_on_identity(
        _VERBS[what], actor, identity, session=session, rules=rules, placed_as=rank
    )


async def load(ctx: Context, reference: str, *, actor: Actor, what: str) -> Identity:
    """Resolve the identity and check that the actor may `what` it (see check_may_act)."""
    async with ctx.sessions() as session:
        identity = await registry.resolve(reference, session=session)
        await check_may_act(identity, actor=actor, session=session, rules=ctx.rules, what=what)
    return identity


UndoInCloud = Callable[[CloudProvider, IdentityRef, Snapshot], Awaitable[bool]]


async def undo(
    ctx: Context,
    reference: str,
    kind: EnforcementKind,
    *,
    actor: Actor,
    verb: str,
    not_enforced: str,
    in_cloud: UndoInCloud,
    event_type: str,
) -> tuple[Identity, bool]:
    """Undo the identity's live enforcement of `kind` in the cloud, then free its slot.

    `verb` names the action in refusal events (`<verb>.refused`, `<verb>.failed`);
    `not_enforced` (formatted with `name`) is the error when nothing is live. Returns the
    identity and False when someone else released it first.
    """
    try:
        identity = await load(ctx, reference, actor=actor, what=verb)
        async with ctx.sessions() as session:
            row = await live(session, identity.id, kind)
            if row is not None:
                await check_may_act(
                    identity, actor=actor, session=session, rules=ctx.rules, what=verb, placed=row
                )
        if row is None or row.state != EnforcementState.ACTIVE:
            raise NotEnforcedError(not_enforced.format(name=identity.name))
    except LeashError as error:
        raise await ctx.refuse(
            error, actor=actor, event_type=f"{verb}.refused", detail={"identity": reference}
        ) from None
    try:
        await in_cloud(ctx.provider_for(identity), identity_ref(identity), row.snapshot)
    except CloudError as error:
        raise await ctx.refuse(
            LeashError(f"Could not {verb} {identity.name}: {error}"),
            actor=actor,
            event_type=f"{verb}.failed",
            identity_id=identity.id,
        ) from None
    return identity, await release_slot(ctx, row, identity, actor=actor, event_type=event_type)


async def live(
    session: AsyncSession, identity_id: str, kind: EnforcementKind
) -> Enforcement | None:
    """The applying or active enforcement of this kind on the identity, if any."""
    rows = await session.exec(
        select(Enforcement).where(col(Enforcement.active_key) == slot_key(identity_id, kind))
    )
    return rows.first()


async def claim(
    ctx: Context,
    identity: Identity,
    kind: EnforcementKind,
    *,
    actor: Actor,
    actions: list[str],
    detail: dict[str, Any],
    reason: str | None,
) -> Enforcement:
    """Take the identity's one live slot for `kind` before any cloud write.

    Raises AlreadyEnforcedError when another is applying or active (a second click, another
    replica): the unique `active_key` makes the database the arbiter.
    """
    check_start(Machine.ENFORCEMENT, EnforcementState.APPLYING)
    row = Enforcement(
        id=new_id("e"),
        identity_id=identity.id,
        kind=kind,
        mode=Mode.ENFORCE,
        state=EnforcementState.APPLYING,
        active_key=slot_key(identity.id, kind),
        actions=actions,
        detail=detail,
        reason=reason,
        created_at=ctx.clock.now(),
        created_by=actor.name,
        placed_as=placed_as(actor, ctx.rules),
    )
    try:
        async with ctx.transaction() as session:
            session.add(row)
    except IntegrityError:
        raise AlreadyEnforcedError(_already(identity, kind)) from None
    return row


def _already(identity: Identity, kind: EnforcementKind) -> str:
    return {
        EnforcementKind.RESTRICT: f"{identity.name} is already restricted; "
        f"`unrestrict {identity.name}` first.",
        EnforcementKind.QUARANTINE: f"{identity.name} is already quarantined.",
        EnforcementKind.GUARDRAIL: f"{identity.name} already has a guardrail.",
    }[kind]


async def activate(
    ctx: Context,
    row: Enforcement,
    identity: Identity,
    *,
    actor: Actor,
    snapshot: dict[str, Any],
    event_type: str,
    detail: dict[str, Any],
) -> None:
    """Mark a claimed enforcement active, with its undo snapshot, and audit it."""
    now = ctx.clock.now()
    await move(
        ctx,
        Machine.ENFORCEMENT,
        row.id,
        from_states=EnforcementState.APPLYING,
        to_state=EnforcementState.ACTIVE,
        at=now,
        values={"snapshot": snapshot},
        also=_answered_by(actor, identity, now),
        event=Event(actor, event_type, detail={"enforcement": row.id} | detail),
    )


async def abandon(
    ctx: Context, row: Enforcement, identity: Identity, *, actor: Actor, event_type: str, error: str
) -> None:
    """Free a claimed slot whose cloud write failed (nothing was written) and audit it."""
    await move(
        ctx,
        Machine.ENFORCEMENT,
        row.id,
        from_states=EnforcementState.APPLYING,
        to_state=EnforcementState.FAILED,
        at=ctx.clock.now(),
        values={"active_key": None, "detail": row.detail | {"error": error[:500]}},
        event=Event(
            actor,
            event_type,
            detail={"enforcement": row.id, "error": error[:500]},
            outcome=Outcome.FAILURE,
        ),
    )


async def release_slot(
    ctx: Context, row: Enforcement, identity: Identity, *, actor: Actor, event_type: str
) -> bool:
    """Mark an active enforcement released; False when someone released it first."""
    now = ctx.clock.now()
    done: Moved[Enforcement] = await move(
        ctx,
        Machine.ENFORCEMENT,
        row.id,
        from_states=EnforcementState.ACTIVE,
        to_state=EnforcementState.RELEASED,
        at=now,
        values={"active_key": None, "released_at": now, "released_by": actor.name},
        also=_answered_by(actor, identity, now),
        event=Event(actor, event_type, detail={"enforcement": row.id, "kind": row.kind}),
    )
    return done.moved


def _answered_by(actor: Actor, identity: Identity, at: datetime) -> Also | None:
    """A person's act on an identity counts as its owner answering (see `answered`)."""
    if actor.kind is not ActorKind.USER:
        return None

    async def also(session: AsyncSession) -> None:
        await answered(session, identity.id, at)

    return also


async def record_report(
    ctx: Context,
    identity: Identity,
    kind: EnforcementKind,
    *,
    actor: Actor,
    actions: list[str],
    detail: dict[str, Any],
    reason: str | None,
    event_type: str,
) -> Enforcement:
    """Report-only mode: keep and audit what would have been written, write nothing."""
    check_start(Machine.ENFORCEMENT, EnforcementState.REPORTED)
    now = ctx.clock.now()
    row = Enforcement(
        id=new_id("e"),
        identity_id=identity.id,
        kind=kind,
        mode=Mode.REPORT,
        state=EnforcementState.REPORTED,
        actions=actions,
        detail=detail,
        reason=reason,
        created_at=now,
        created_by=actor.name,
        placed_as=placed_as(actor, ctx.rules),
    )
    async with ctx.transaction() as session:
        session.add(row)
        if actor.kind is ActorKind.USER:
            await answered(session, identity.id, now)
        await audit.append(
            session=session,
            actor=actor,
            event_type=event_type,
            at=now,
            identity_id=identity.id,
            resource=identity.native_id,
            detail={"enforcement": row.id, "mode": "report", "actions": actions[:200]} | detail,
        )
    return row


async def answered(session: AsyncSession, identity_id: str, at: datetime) -> None:
    """Remember that someone acted on the identity's findings (stops auto-quarantine)."""
    await session.exec(
        update(Identity).where(col(Identity.id) == identity_id).values(owner_answered_at=at)
    )
