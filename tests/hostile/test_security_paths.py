"""No path lets anyone decide what they must not: each refusal is audited, the chain holds."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from sqlmodel import col, select

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind, Outcome
from bot.http.server import build_web_app
from bot.store.tables import AccessRequest, AuditEvent, Identity
from cloud.sandbox import Sandbox
from tests.bot.surfaces.chat_drivers import Chat, Role
from tests.e2e.helpers import GRANT_ID, REQUEST_ID
from tests.hostile.world import audit_chain_ok, cloud_writes, rows

REQUEST = "request support-triage-agent s3-read for 10m because triage"
OWNER_A = Actor("owner-a", ActorKind.USER, "console")
ADMIN = Actor("secops", ActorKind.USER, "console")


async def refusals(leash: Leash, event_type: str) -> list[AuditEvent]:
    async with leash.context.sessions() as session:
        query = select(AuditEvent).where(col(AuditEvent.event_type) == event_type)
        return list((await session.exec(query)).all())


async def submit(chat: Chat, who: Role) -> str:
    said = await chat.say(who, REQUEST)
    found = REQUEST_ID.search(said)
    assert found, said
    return found.group(1)


async def test_requester_cannot_approve_or_deny_their_own_request(chat: Chat) -> None:
    request_id = await submit(chat, Role.OWNER)  # the owner asks: the admin must decide
    before = await rows(chat.leash)
    for command in (f"approve {request_id}", f"deny {request_id} because mine"):
        said = await chat.say(Role.OWNER, command)
        assert "You cannot approve or deny your own request" in said, said
    after = await rows(chat.leash)
    assert after.changes == before.changes
    approve = await refusals(chat.leash, "request.approve_refused")
    deny = await refusals(chat.leash, "request.deny_refused")
    assert [(e.request_id, e.outcome) for e in approve + deny] == [
        (request_id, Outcome.FAILURE),
        (request_id, Outcome.FAILURE),
    ]
    assert cloud_writes(chat.sandbox) == []
    assert await audit_chain_ok(chat.leash)


async def test_a_stranger_learns_nothing_of_a_decided_request(chat: Chat) -> None:
    request_id = await submit(chat, Role.DEV)
    approved = await chat.say(Role.OWNER, f"approve {request_id}")
    assert "is active until" in approved, approved
    before = await rows(chat.leash)
    for command in (f"approve {request_id}", f"deny {request_id} because no"):
        said = await chat.say(Role.STRANGER, command)
        assert "You are not an approver of this request" in said, said
        assert "already" not in said, said  # neither the outcome nor who decided it
    assert (await rows(chat.leash)).changes == before.changes
    refused = await refusals(chat.leash, "request.approve_refused")
    refused += await refusals(chat.leash, "request.deny_refused")
    assert [e.outcome for e in refused] == [Outcome.FAILURE, Outcome.FAILURE]
    # The approver who clicks late still hears what happened.
    late = await chat.say(Role.OWNER, f"approve {request_id}")
    assert f"Request {request_id} was already approved" in late, late
    assert await audit_chain_ok(chat.leash)


async def test_non_owner_cannot_quarantine_or_release(chat: Chat) -> None:
    quarantine = "quarantine support-triage-agent because suspicious"
    said = await chat.say(Role.STRANGER, quarantine)
    assert "Only an owner of support-triage-agent or an admin can quarantine it" in said, said
    assert cloud_writes(chat.sandbox) == []

    owned = await chat.say(Role.OWNER, quarantine)
    assert "Quarantined support-triage-agent" in owned, owned
    mark = len(chat.sandbox.moto.calls())
    said = await chat.say(Role.STRANGER, "release support-triage-agent")
    assert "Only an owner of support-triage-agent or an admin can release it" in said, said
    assert cloud_writes(chat.sandbox, since=mark) == []

    refused = await refusals(chat.leash, "quarantine.refused")
    refused += await refusals(chat.leash, "release.refused")
    assert len(refused) == 2, [e.event_type for e in refused]
    assert {e.actor for e in refused} == {refused[0].actor}
    assert all(e.outcome == Outcome.FAILURE for e in refused)
    assert await audit_chain_ok(chat.leash)


async def _identity_id(leash: Leash, request_id: str) -> str:
    async with leash.context.sessions() as session:
        access = await session.get(AccessRequest, request_id)
    assert access is not None
    return access.identity_id


@pytest.mark.parametrize("verb", ["approve", "deny"])
async def test_an_agent_decides_nothing(leash: Leash, fresh_sandbox: Sandbox, verb: str) -> None:
    reply = await leash.handler.handle_text(REQUEST, actor=Actor("dev", ActorKind.USER, "console"))
    found = REQUEST_ID.search(reply.text)
    assert found, reply.text
    agent = Actor(await _identity_id(leash, found.group(1)), ActorKind.AGENT, "api")
    before = await rows(leash)
    refused = await leash.handler.handle_text(f"{verb} {found.group(1)} because ok", actor=agent)
    assert not refused.ok
    assert "Agents and bots never approve" in refused.text
    after = await rows(leash)
    assert after.changes == before.changes
    assert after.refusals == before.refusals + 1
    assert await audit_chain_ok(leash)


@pytest.fixture
async def api(leash: Leash) -> Any:
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_a_token_cannot_read_or_release_for_another_identity(
    leash: Leash, fresh_sandbox: Sandbox, api: TestClient[Request, Application]
) -> None:
    mine = await leash.lifecycle.tokens.issue("support-triage-agent", actor=OWNER_A)
    other = await leash.lifecycle.tokens.issue("ticket-router-agent", actor=ADMIN)
    reply = await leash.handler.handle_text(REQUEST, actor=Actor("dev", ActorKind.USER, "console"))
    request_id = REQUEST_ID.search(reply.text).group(1)  # type: ignore[union-attr]
    approved = await leash.handler.handle_text(f"approve {request_id}", actor=OWNER_A)
    grant_id = GRANT_ID.search(approved.text).group(1)  # type: ignore[union-attr]
    mark = len(fresh_sandbox.moto.calls())
    before = await rows(leash)
    as_other = {"Authorization": f"Bearer {other.token}"}

    read = await api.get(f"/api/v1/requests/{request_id}", headers=as_other)
    assert read.status == 404
    released = await api.post(f"/api/v1/grants/{grant_id}/release", headers=as_other)
    assert released.status == 403
    assert (await released.json())["error"] == "not_allowed"

    after = await rows(leash)
    assert after.changes == before.changes
    assert cloud_writes(fresh_sandbox, since=mark) == []
    [refusal] = await refusals(leash, "grant.revoke_refused")
    assert (refusal.grant_id, refusal.outcome) == (grant_id, Outcome.FAILURE)
    async with leash.context.sessions() as session:
        router = (
            await session.exec(select(Identity).where(col(Identity.name) == "ticket-router-agent"))
        ).one()
    assert refusal.actor == router.id
    mine_read = await api.get(
        f"/api/v1/requests/{request_id}", headers={"Authorization": f"Bearer {mine.token}"}
    )
    assert mine_read.status == 200  # the same call with the right token works
    assert await audit_chain_ok(leash)
