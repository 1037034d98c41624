"""Every state move goes through bot.core.transitions: against the real lifecycle (a Leash on
the moto sandbox, SQLite and PostgreSQL), an illegal move is refused before anything is
written, and a legal move from a state the row has left changes nothing either."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.access.drafting import RequestInput
from bot.app import Leash
from bot.core.transitions import Event, move
from bot.domain.actors import SYSTEM, Actor
from bot.domain.errors import AlreadyDecidedError, GrantStateError, IllegalTransitionError
from bot.domain.states import ActorKind, GrantState, Machine, RequestState
from bot.store.tables import AccessRequest, Grant
from cloud.sandbox import Sandbox
from tests.e2e.helpers import audit_types, grant, inline_policy_names
from tests.fakes.notifier import RecordingNotifier

ROLE = "support-triage-agent"


def user(name: str) -> Actor:
    return Actor(name, ActorKind.USER, "console")


async def ask(leash: Leash) -> AccessRequest:
    return await leash.lifecycle.requests.submit(
        RequestInput(
            identity=ROLE,
            permission_set="s3-read",
            duration=timedelta(minutes=10),
            reason="testing the transition table",
        ),
        actor=user("dev"),
    )


async def stored_request(leash: Leash, request_id: str) -> AccessRequest:
    async with leash.context.sessions() as session:
        found = await session.get(AccessRequest, request_id)
    assert found is not None
    return found


def _columns(row: Grant | AccessRequest) -> dict[str, Any]:
    return row.model_dump()


async def test_a_revoked_grant_cannot_be_moved_back_to_active(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    request = await ask(leash)
    result = await leash.lifecycle.approve(request.id, actor=user("owner-a"))
    assert result.grant is not None
    grant_id = result.grant.id
    revoked = await leash.lifecycle.grants.revoke(grant_id, actor=user("dev"), reason="done")
    assert revoked.state == GrantState.REVOKED
    before = _columns(await grant(leash, grant_id))
    events = await audit_types(leash)
    told = len(notifier.notices)
    ctx = leash.context

    with pytest.raises(IllegalTransitionError):
        await move(
            ctx,
            Machine.GRANT,
            grant_id,
            from_states=GrantState.REVOKED,
            to_state=GrantState.ACTIVE,
            at=ctx.clock.now(),
            values={"revoked_at": None, "revoked_by": None},
            event=Event(SYSTEM, "grant.applied"),
        )
    # One illegal pair among legal ones refuses the whole move.
    with pytest.raises(IllegalTransitionError):
        await move(
            ctx,
            Machine.GRANT,
            grant_id,
            from_states=(GrantState.ACTIVE, GrantState.REVOKED),
            to_state=GrantState.ACTIVE,
            at=ctx.clock.now(),
        )

    assert _columns(await grant(leash, grant_id)) == before
    assert await audit_types(leash) == events
    assert len(notifier.notices) == told
    assert "leash-grant-" + grant_id not in inline_policy_names(fresh_sandbox, ROLE)
    # And through the lifecycle: revoking it again is refused, and changes nothing.
    with pytest.raises(GrantStateError):
        await leash.lifecycle.grants.revoke(grant_id, actor=user("dev"))
    assert _columns(await grant(leash, grant_id)) == before


async def test_a_denied_request_cannot_be_approved(
    leash: Leash, notifier: RecordingNotifier
) -> None:
    request = await ask(leash)
    await leash.lifecycle.requests.deny(request.id, actor=user("owner-a"), reason="not today")
    before = _columns(await stored_request(leash, request.id))
    assert before["state"] == RequestState.DENIED
    events = await audit_types(leash)
    told = len(notifier.notices)
    ctx = leash.context

    with pytest.raises(IllegalTransitionError):
        await move(
            ctx,
            Machine.REQUEST,
            request.id,
            from_states=RequestState.DENIED,
            to_state=RequestState.APPROVED,
            at=ctx.clock.now(),
            values={"decided_by": "owner-a"},
            event=Event(user("owner-a"), "request.approved"),
        )
    assert _columns(await stored_request(leash, request.id)) == before
    assert await audit_types(leash) == events
    assert len(notifier.notices) == told

    # Through the lifecycle, the approval is refused (and only that refusal is recorded).
    with pytest.raises(AlreadyDecidedError):
        await leash.lifecycle.approve(request.id, actor=user("owner-a"))
    assert _columns(await stored_request(leash, request.id)) == before
    assert await audit_types(leash) == [*events, "request.approve_refused"]
    assert await _grants_of(leash, request.id) == []


async def test_a_legal_move_from_a_state_the_row_left_changes_nothing(
    leash: Leash, notifier: RecordingNotifier
) -> None:
    """The compare-and-set side: a move the table allows, lost to whoever moved first."""
    request = await ask(leash)
    result = await leash.lifecycle.approve(request.id, actor=user("owner-a"))
    assert result.grant is not None
    assert result.grant.state == GrantState.ACTIVE
    grant_id = result.grant.id
    before = _columns(await grant(leash, grant_id))
    events = await audit_types(leash)
    told = len(notifier.notices)
    ctx = leash.context

    done = await move(
        ctx,
        Machine.GRANT,
        grant_id,
        from_states=GrantState.APPLYING,  # it is active: another process applied it
        to_state=GrantState.FAILED,
        at=ctx.clock.now(),
        values={"last_error": "late"},
        event=Event(SYSTEM, "grant.apply_failed"),
    )
    await done.tell()

    assert not done.moved
    assert done.row.state == GrantState.ACTIVE
    assert _columns(await grant(leash, grant_id)) == before
    assert await audit_types(leash) == events
    assert len(notifier.notices) == told


async def _grants_of(leash: Leash, request_id: str) -> list[Grant]:
    async with leash.context.sessions() as session:
        rows = await session.exec(select(Grant).where(col(Grant.request_id) == request_id))
        return list(rows.all())


def test_only_the_transitions_module_writes_a_state() -> None:
    """No other module sets a `state` column: an UPDATE's `.values(state=…)`, or assigning
    `.state` on a loaded row. (Creating a row in its first state is not a move.)"""
    root = Path(__file__).resolve().parents[3] / "bot"
    writers: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            sets_values = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "values"
                and any(keyword.arg == "state" for keyword in node.keywords)
            )
            assigns = isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and any(
                isinstance(target, ast.Attribute) and target.attr == "state"
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            if sets_values or assigns:
                writers.append(f"{path.relative_to(root.parent)}:{getattr(node, 'lineno', 0)}")
    assert [writer.split(":")[0] for writer in writers] == ["bot/core/transitions.py"], writers
