"""Nobody approves their own access, on any surface: the review's findings 1 to 5, replayed.

Each test runs on the console, Slack and Teams (through their real entry points) and on
SQLite and PostgreSQL; the cross-surface ones run one Leash with Slack and Teams both on.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update
from sqlmodel import col, select

from bot.app import Leash, build
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.states import ActorKind, Outcome
from bot.http.server import build_web_app
from bot.inventory.ownership import OwnerChange
from bot.store.audit import verify
from bot.store.tables import AgentToken, Approval, AuditEvent, Identity, Ownership
from cloud.sandbox import Sandbox
from tests.bot.surfaces import conftest as slack_world
from tests.bot.surfaces.chat_drivers import Chat, Role, SlackChat, TeamsChat
from tests.bot.surfaces.chat_fixtures import chat, surface
from tests.bot.surfaces.conftest import client, slack_api, slack_leash, slack_rules
from tests.bot.surfaces.teams_world import connector, teams_client, teams_leash, teams_rules
from tests.conftest import make_rules
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.teams_activities import TENANT_ID
from tests.hostile.world import cloud_writes, rows

__all__ = [
    "chat",
    "client",
    "connector",
    "slack_api",
    "slack_leash",
    "slack_rules",
    "surface",
    "teams_client",
    "teams_leash",
    "teams_rules",
]

REQUEST_ID = re.compile(r"\b(r-[a-z0-9]{8})\b")
GRANT_ID = re.compile(r"\b(g-[a-z0-9]{8})\b")
TOKEN = re.compile(r"\b(lsh_[A-Za-z0-9_\-]{20,})")
UNOWNED = "forecast-agent"  # the demo organisation's agent nobody owns


def _id(pattern: re.Pattern[str], said: str) -> str:
    found = pattern.search(said)
    assert found, said
    return found.group(1)


async def _refusals(leash: Leash, event_type: str) -> list[AuditEvent]:
    async with leash.context.sessions() as session:
        query = select(AuditEvent).where(
            col(AuditEvent.event_type) == event_type, col(AuditEvent.outcome) == Outcome.FAILURE
        )
        return list((await session.exec(query)).all())


async def _chain_ok(leash: Leash) -> bool:
    async with leash.context.sessions() as session:
        return (await verify(session=session)).ok


async def _active_grant(chat: Chat, *, minutes: int = 10) -> str:
    said = await chat.say(
        Role.DEV, f"request support-triage-agent s3-read for {minutes}m because triage"
    )
    approved = await chat.say(Role.OWNER, f"approve {_id(REQUEST_ID, said)}")
    assert "is active until" in approved, approved
    return _id(GRANT_ID, approved)


# Finding 1: one person, two names


async def test_an_owner_registered_in_another_case_approves(database_url: str, chat: Chat) -> None:
    said = await chat.say(
        Role.ADMIN, "owner set support-triage-agent ALICE@Example.COM backup bob@example.com"
    )
    assert "is owned by ALICE@Example.COM" in said, said
    request = await chat.say(Role.DEV, "request support-triage-agent s3-read for 10m because x")
    request_id = _id(REQUEST_ID, request)
    waiting = await chat.say(Role.OWNER, "requests pending")
    assert request_id in waiting, waiting  # listed for her, whatever the case it was set in
    approved = await chat.say(Role.OWNER, f"approve {request_id}")
    assert "is active until" in approved, approved


# Finding 2: claim, then approve yourself


async def test_a_claim_carries_no_authority_until_an_admin_confirms_it(
    database_url: str, chat: Chat
) -> None:
    claimed = await chat.say(Role.STRANGER, f"owner claim {UNOWNED}")
    assert f"as the owner of {UNOWNED}. The admins have been asked" in claimed, claimed
    announced = await chat.inbox(Role.ADMIN, f"claims {UNOWNED}")
    assert "carries no authority" in announced, announced
    shown = await chat.say(Role.DEV, f"owner show {UNOWNED}")
    assert "Proposed owner:" in shown
    assert "Confirmed owner: none" in shown, shown

    token = await chat.say(Role.STRANGER, f"token issue {UNOWNED}")
    assert f"Your claim on {UNOWNED} is waiting for an admin" in token, token
    assert not TOKEN.search(token)

    asked = await chat.say(
        Role.DEV, f"request {UNOWNED} secretsmanager:GetSecretValue for 2h because rotate"
    )
    request_id = _id(REQUEST_ID, asked)
    assert "Proposed owner" not in asked  # the reply is short; the card says it
    before = await rows(chat.leash)
    mark = len(chat.sandbox.moto.calls())
    refused = await chat.say(Role.STRANGER, f"approve {request_id}")
    assert f"Your claim on {UNOWNED} is not confirmed yet" in refused, refused
    after = await rows(chat.leash)
    assert after.changes == before.changes
    assert after.refusals == before.refusals + 1
    assert cloud_writes(chat.sandbox, since=mark) == []
    assert len(await _refusals(chat.leash, "token.refused")) == 1

    confirmed = await chat.say(Role.ADMIN, f"owner confirm {UNOWNED}")
    assert f"Confirmed: {UNOWNED} is now owned by" in confirmed, confirmed
    issued = await chat.say(Role.STRANGER, f"token issue {UNOWNED}")
    assert TOKEN.search(issued), issued
    assert await _chain_ok(chat.leash)


# Finding 3: claim, then undo an admin


async def test_an_admins_quarantine_is_lifted_only_by_an_admin(
    database_url: str, chat: Chat
) -> None:
    quarantined = await chat.say(Role.ADMIN, f"quarantine {UNOWNED} because suspicious")
    assert f"Quarantined {UNOWNED}" in quarantined, quarantined
    await chat.say(Role.STRANGER, f"owner claim {UNOWNED}")
    mark = len(chat.sandbox.moto.calls())
    claimant = await chat.say(Role.STRANGER, f"release {UNOWNED}")
    assert "waiting for an admin to confirm it" in claimant, claimant

    await chat.say(Role.ADMIN, f"owner confirm {UNOWNED}")
    owner = await chat.say(Role.STRANGER, f"release {UNOWNED}")
    assert f"An admin placed this on {UNOWNED}; only an admin can lift it." in owner, owner
    assert cloud_writes(chat.sandbox, since=mark) == []
    assert len(await _refusals(chat.leash, "release.refused")) == 2

    released = await chat.say(Role.ADMIN, f"release {UNOWNED}")
    assert "Released" in released or "released" in released, released
    assert await _chain_ok(chat.leash)


async def test_an_owners_own_quarantine_the_owner_may_lift(database_url: str, chat: Chat) -> None:
    said = await chat.say(Role.OWNER, "quarantine support-triage-agent because check")
    assert "Quarantined support-triage-agent" in said, said
    released = await chat.say(Role.BACKUP, "release support-triage-agent")
    assert "released" in released.lower(), released


# Finding 4: extensions


async def test_extensions_are_asked_and_approved_by_different_people(
    database_url: str, chat: Chat
) -> None:
    grant_id = await _active_grant(chat)
    mark = len(chat.sandbox.moto.calls())

    stranger = await chat.say(Role.STRANGER, f"extend {grant_id} 10m because more")
    assert "Only the grant's requester, an owner of support-triage-agent" in stranger, stranger

    by_owner = await chat.say(Role.OWNER, f"extend {grant_id} 10m because the fix takes longer")
    extension = _id(REQUEST_ID, by_owner)
    for who in (Role.OWNER, Role.DEV):  # the asker, and the grant's requester
        said = await chat.say(who, f"approve {extension}")
        assert "You cannot approve or deny your own request." in said, (who, said)
    assert cloud_writes(chat.sandbox, since=mark) == []
    assert len(await _refusals(chat.leash, "request.approve_refused")) == 2

    approved = await chat.say(Role.BACKUP, f"approve {extension}")
    assert "extended" in approved.lower() or "until" in approved, approved


async def test_extensions_never_outlast_the_tiers_maximum(database_url: str, chat: Chat) -> None:
    grant_id = await _active_grant(chat)
    said = await chat.say(Role.DEV, f"extend {grant_id} 7h55m because a long night")
    assert "longer than the 8h its tier (normal) allows" in said, said
    assert "at most 7h 50m more" in said or "at most 7h50m more" in said, said
    before = await rows(chat.leash)
    assert len(await _refusals(chat.leash, "request.refused")) == 1
    within = await chat.say(Role.DEV, f"extend {grant_id} 1h because a bit longer")
    assert REQUEST_ID.search(within), within
    assert (await rows(chat.leash)).requests == before.requests + 1


# Finding 5: tokens outlive ownership


async def test_a_change_of_owner_ends_the_agents_tokens(database_url: str, chat: Chat) -> None:
    issued = await chat.say(Role.OWNER, "token issue support-triage-agent")
    token = _id(TOKEN, issued)
    assert "It works until" in issued, issued
    tokens = chat.leash.lifecycle.tokens
    assert await tokens.authenticate(token) is not None

    handed = await chat.say(Role.ADMIN, "owner set support-triage-agent carol@example.com")
    assert "is owned by carol@example.com" in handed, handed
    assert await tokens.authenticate(token) is None
    told = await chat.inbox(Role.OWNER, "changed owner")
    assert "1 agent token(s) were revoked" in told, told

    listed = await chat.say(Role.ADMIN, "token list support-triage-agent")
    assert "revoked by" in listed, listed
    assert token not in listed
    assert await _chain_ok(chat.leash)


async def test_a_replaced_owner_no_longer_decides_a_request_made_before(
    database_url: str, chat: Chat
) -> None:
    said = await chat.say(Role.DEV, "request support-triage-agent s3-read for 10m because x")
    request_id = _id(REQUEST_ID, said)
    handed = await chat.say(Role.ADMIN, "owner set support-triage-agent carol@example.com")
    assert "is owned by carol@example.com" in handed, handed

    refused = await chat.say(Role.OWNER, f"approve {request_id}")
    assert "You are not an approver of this request" in refused, refused
    async with chat.leash.context.sessions() as session:
        assert (await session.exec(select(Approval))).all() == []
    assert len(await _refusals(chat.leash, "request.approve_refused")) == 1
    # The admins, still approvers under the tier's rule, decide it.
    approved = await chat.say(Role.ADMIN, f"approve {request_id}")
    assert "is active until" in approved, approved
    assert await _chain_ok(chat.leash)


async def test_tokens_expire(leash: Leash, fresh_sandbox: Sandbox) -> None:
    owner = Actor("owner-a", ActorKind.USER, "console")
    issued = await leash.lifecycle.tokens.issue("support-triage-agent", actor=owner)
    assert issued.expires_at is not None
    age = leash.context.rules.tokens.max_age
    assert issued.expires_at - leash.context.clock.now() <= age
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(app)) as api:
        headers = {"Authorization": f"Bearer {issued.token}"}
        # Authenticated, the API says the request does not exist; unauthenticated, 401.
        assert (await api.get("/api/v1/requests/r-00000000", headers=headers)).status == 404
        async with leash.context.transaction() as session:
            await session.exec(
                update(AgentToken).values(
                    expires_at=leash.context.clock.now() - timedelta(seconds=1)
                )
            )
        assert (await api.get("/api/v1/requests/r-00000000", headers=headers)).status == 401


async def test_a_token_ends_on_the_api_when_the_owner_changes_or_the_issuer_loses_authority(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    owner = Actor("owner-a", ActorKind.USER, "console")
    admin = Actor("secops", ActorKind.USER, "console")
    first = await leash.lifecycle.tokens.issue("support-triage-agent", actor=owner)
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(app)) as api:

        async def status(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return (await api.get("/api/v1/requests/r-00000000", headers=headers)).status

        assert await status(first.token) == 404
        await leash.lifecycle.owners.set(
            "support-triage-agent", OwnerChange("owner-b"), actor=admin
        )
        assert await status(first.token) == 401
        # A token issued by the backup owner stops when they are no longer the backup.
        await leash.lifecycle.owners.set(
            "support-triage-agent", OwnerChange("owner-b", "bob"), actor=admin
        )
        by_backup = await leash.lifecycle.tokens.issue(
            "support-triage-agent", actor=Actor("bob", ActorKind.USER, "console")
        )
        assert await status(by_backup.token) == 404
        await leash.lifecycle.owners.set(
            "support-triage-agent", OwnerChange("owner-b", "carol"), actor=admin
        )
        assert await status(by_backup.token) == 401
    async with leash.context.sessions() as session:
        revoked = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.event_type) == "token.revoked")
            )
        ).all()
    assert [e.detail.get("why") for e in revoked] == ["owner changed"]


# Finding 1 across surfaces: one Leash with Slack and Teams both on


@pytest.fixture
async def both(
    database_url: str,
    fresh_sandbox: Sandbox,
    slack_api: FakeSlackApi,
    connector: FakeBotConnector,
) -> AsyncIterator[tuple[SlackChat, TeamsChat]]:
    """Slack (the admin is U-ADMIN) and Teams (the same admin is secops@example.com)."""
    overrides: dict[str, Any] = {
        "database_url": database_url,
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": slack_world.SECRET,
        "slack_api_url": slack_api.base_url,
        "slack_pace_seconds": 0.05,
        "teams": True,
        "teams_retry_seconds": 0.01,
        "MICROSOFT_APP_TYPE": "SingleTenant",
        "MICROSOFT_APP_TENANT_ID": TENANT_ID,
    }
    settings = Settings(**overrides)
    leash = build(settings, sandbox=fresh_sandbox, rules=make_rules(admins=[slack_world.ADMIN]))
    await leash.start(scheduler=False)
    await leash.lifecycle.owners.set(
        "support-triage-agent",
        OwnerChange(slack_world.OWNER_EMAIL, "bob@example.com", "support-bots"),
        actor=Actor(slack_world.ADMIN, ActorKind.USER, "test"),
    )
    app = build_web_app(
        leash.lifecycle, max_body_bytes=1024 * 1024, slack=leash.slack, teams=leash.teams
    )
    async with TestClient(TestServer(app)) as web:
        slack = SlackChat(leash, fresh_sandbox, web, slack_api)
        teams = TeamsChat(leash, fresh_sandbox, web, connector)
        await teams.start()
        yield slack, teams
    await leash.close()


async def test_the_same_person_on_slack_and_teams_cannot_approve_their_request(
    both: tuple[SlackChat, TeamsChat],
) -> None:
    slack, teams = both
    asked = await slack.say(Role.ADMIN, "request support-triage-agent s3-read for 10m because x")
    request_id = _id(REQUEST_ID, asked)
    before = await rows(slack.leash)
    mine = await teams.say(Role.ADMIN, "requests")
    assert request_id in mine, mine  # asked on Slack, listed on Teams: one person
    said = await teams.say(Role.ADMIN, f"approve {request_id}")
    assert "You cannot approve or deny your own request." in said, said
    after = await rows(slack.leash)
    assert after.changes == before.changes
    assert after.refusals == before.refusals + 1
    approved = await teams.say(Role.OWNER, f"approve {request_id}")
    assert "is active until" in approved, approved


async def test_break_glass_needs_two_persons_not_two_handles(
    both: tuple[SlackChat, TeamsChat],
) -> None:
    slack, teams = both
    asked = await slack.say(
        Role.DEV, "request support-triage-agent break-glass-admin for 30m because incident"
    )
    request_id = _id(REQUEST_ID, asked)
    first = await slack.say(Role.ADMIN, f"approve {request_id}")
    assert "1 of 2" in first or "needs" in first, first
    mark = len(slack.sandbox.moto.calls())
    again = await teams.say(Role.ADMIN, f"approve {request_id}")
    assert "You have already approved this; it needs a different approver." in again, again
    assert cloud_writes(slack.sandbox, since=mark) == []
    second = await teams.say(Role.OWNER, f"approve {request_id}")
    assert "is active until" in second, second
    async with slack.leash.context.sessions() as session:
        approvals = (
            await session.exec(select(Approval).where(col(Approval.request_id) == request_id))
        ).all()
    persons: set[Any] = {a.approver_person for a in approvals}
    assert len(approvals) == 2
    assert len(persons) == 2
    assert None not in persons


async def test_the_creator_cloudtrail_names_claims_at_once_and_nobody_else_does(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    async with leash.context.transaction() as session:
        identity = (await session.exec(select(Identity).where(col(Identity.name) == UNOWNED))).one()
        identity.created_by = "dana@example.com (via AWSReservedSSO_Dev_1a2b)"  # as CloudTrail
        session.add(identity)
    say = leash.handler.handle_text
    other = await say(
        f"owner claim {UNOWNED}", actor=Actor("erin@example.com", ActorKind.USER, "console")
    )
    assert "Proposed erin@example.com" in other.text, other.text
    creator = Actor("Dana@Example.com", ActorKind.USER, "console")
    async with leash.context.transaction() as session:
        ownership = await session.get(Ownership, identity.id)
        assert ownership is not None
        ownership.primary_owner = ownership.proposed_owner = None
        session.add(ownership)
    claimed = await say(f"owner claim {UNOWNED}", actor=creator)
    assert f"{UNOWNED} is owned by Dana@Example.com" in claimed.text, claimed.text
