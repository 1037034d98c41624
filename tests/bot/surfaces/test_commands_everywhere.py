"""The shared commands, run on the console, Slack and Teams by one suite so they cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import Leash
from bot.commands.grammar.access import USAGE
from bot.domain.states import GrantState, RequestState
from bot.store.tables import AccessRequest, Grant
from tests.bot.surfaces.chat_drivers import Chat, Role
from tests.bot.surfaces.chat_fixtures import chat, surface
from tests.e2e.helpers import GRANT_ID, REQUEST_ID, inline_policy

REQUEST = "request support-triage-agent s3-read for 10m because triage"
CORE_VERBS = {"request", "approve", "deny", "cancel", "revoke", "extend", "grants", "requests"}


# The per-surface drivers, as fixtures.
__all__ = ["chat", "surface"]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Use SQLite only: this suite checks the surfaces, the store has its own tests."""
    return f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}"


async def all_requests(leash: Leash) -> list[AccessRequest]:
    async with leash.context.sessions() as session:
        return list((await session.exec(select(AccessRequest))).all())


async def grants_for(leash: Leash, request_id: str) -> list[Grant]:
    async with leash.context.sessions() as session:
        query = select(Grant).where(col(Grant.request_id) == request_id)
        return list((await session.exec(query)).all())


async def submit(chat: Chat) -> str:
    """Ask for access as the requester; return the new request's id."""
    said = await chat.say(Role.DEV, REQUEST)
    assert "is waiting for approval" in said, said
    found = REQUEST_ID.search(said)
    assert found, said
    return found.group(1)


async def test_help_lists_every_command(chat: Chat) -> None:
    said = await chat.say(Role.DEV, "help")
    listed = set(re.findall(r"`([a-z-]+)", said))
    assert listed >= CORE_VERBS, said
    assert listed == {usage.split()[0] for usage in USAGE.values()}


async def test_bad_commands_are_named_and_create_nothing(chat: Chat) -> None:
    unknown = await chat.say(Role.DEV, "frobnicate now")
    assert "'frobnicate' is not a Leash command" in unknown
    malformed = await chat.say(Role.DEV, REQUEST.replace("for 10m", "for ever"))
    assert "'ever' is not a duration" in malformed
    assert await all_requests(chat.leash) == []


async def test_request_approve_then_revoke_with_buttons(chat: Chat) -> None:
    request_id = await submit(chat)
    card = await chat.inbox(Role.OWNER, request_id)
    assert "asks to elevate support-triage-agent" in card
    assert "Reason: triage" in card
    assert await chat.buttons(Role.OWNER, on=request_id) == ["Approve", "Deny"]

    shown = await chat.press(Role.OWNER, "Approve", on=request_id)
    assert request_id in shown
    assert "approved" in shown.lower()
    active = await chat.inbox(Role.DEV, "is active on support-triage-agent")
    found = GRANT_ID.search(active)
    assert found, active
    grant_id = found.group(1)
    grants = await grants_for(chat.leash, request_id)
    assert [(g.id, g.state) for g in grants] == [(grant_id, GrantState.ACTIVE)]
    policy = f"leash-grant-{grant_id}"
    assert inline_policy(chat.sandbox, "support-triage-agent", policy) is not None

    shown = await chat.press(Role.DEV, "Revoke now", on=grant_id)
    assert f"Grant {grant_id} is revoked" in shown
    assert (await grants_for(chat.leash, request_id))[0].state == GrantState.REVOKED
    assert inline_policy(chat.sandbox, "support-triage-agent", policy) is None
    await chat.inbox(Role.DEV, f"Grant {grant_id} on support-triage-agent was revoked by")


async def test_stranger_cannot_approve(chat: Chat) -> None:
    request_id = await submit(chat)
    await chat.inbox(Role.OWNER, request_id)

    pressed = await chat.press(Role.STRANGER, "Approve", on=request_id, card_of=Role.OWNER)
    typed = await chat.say(Role.STRANGER, f"approve {request_id}")
    for shown in (pressed, typed):
        assert "You are not an approver of this request" in shown

    [request] = await all_requests(chat.leash)
    assert request.state == RequestState.PENDING
    assert await grants_for(chat.leash, request_id) == []


async def test_typed_deny_tells_the_requester_why(chat: Chat) -> None:
    request_id = await submit(chat)
    await chat.inbox(Role.OWNER, request_id)

    said = await chat.say(Role.OWNER, f"deny {request_id} because not on a Friday")
    assert f"Denied {request_id}." in said
    told = await chat.inbox(Role.DEV, f"Request {request_id} for support-triage-agent was denied")
    assert told.endswith(": not on a Friday"), told
    [request] = await all_requests(chat.leash)
    assert (request.state, request.decision_note) == (RequestState.DENIED, "not on a Friday")
    assert await grants_for(chat.leash, request_id) == []


async def test_empty_lists_say_so_in_plain_words(chat: Chat) -> None:
    assert "You have no live grants." in await chat.say(Role.DEV, "grants")
    assert "No live grants." in await chat.say(Role.DEV, "grants all")
    on_identity = await chat.say(Role.DEV, "grants support-triage-agent")
    assert "No live grants on support-triage-agent." in on_identity
    assert "You have no requests." in await chat.say(Role.DEV, "requests")
    waiting = await chat.say(Role.OWNER, "requests pending")
    assert "No requests are waiting for your decision." in waiting

    request_id = await submit(chat)
    listed = await chat.say(Role.OWNER, "requests pending")
    assert "Requests waiting for your decision (1):" in listed
    assert request_id in listed


async def test_break_glass_pages_every_approver_at_once_and_cards_count_approvals(
    chat: Chat,
) -> None:
    said = await chat.say(
        Role.DEV, "request support-triage-agent break-glass-admin for 30m because incident 7"
    )
    found = REQUEST_ID.search(said)
    assert found, said
    request_id = found.group(1)
    # Both approvers get the card at once: nobody waits for an escalation to find the second.
    for approver in (Role.OWNER, Role.ADMIN):
        assert await chat.buttons(approver, on=request_id) == ["Approve", "Deny"]

    await chat.press(Role.OWNER, "Approve", on=request_id)
    told = await chat.inbox(Role.DEV, f"Request {request_id} for support-triage-agent has 1 of 2")
    assert "it needs 1 more" in told, told
    # The other approver's card now says how far it got, and can still be approved.
    redrawn = await chat.card(Role.ADMIN, on=request_id, showing="1 of 2 approvals, by")
    assert list(redrawn.buttons) == ["Approve", "Deny"]
    [request] = await all_requests(chat.leash)
    assert request.state == RequestState.PENDING

    await chat.press(Role.ADMIN, "Approve", on=request_id)
    active = await chat.inbox(Role.DEV, "is active on support-triage-agent")
    assert GRANT_ID.search(active), active
