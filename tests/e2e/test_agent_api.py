"""Agents on the HTTP API: ask for themselves, wait for the owner, release when done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from sqlmodel import col, select

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.messages import NoticeKind
from bot.domain.states import ActorKind, GrantState
from bot.http.server import build_web_app
from bot.store.tables import AccessRequest, AuditEvent
from cloud.sandbox import Sandbox
from tests.e2e.helpers import audit_types, inline_policy
from tests.fakes.notifier import RecordingNotifier

OWNER = Actor("owner-a", ActorKind.USER, "console")


@pytest.fixture
async def client(leash: Leash) -> AsyncIterator[TestClient[Request, Application]]:
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _token(leash: Leash, identity: str) -> str:
    issued = await leash.lifecycle.tokens.issue(identity, actor=OWNER)
    return issued.token


async def test_agent_requests_waits_for_owner_and_releases(
    leash: Leash,
    client: TestClient[Request, Application],
    fresh_sandbox: Sandbox,
    notifier: RecordingNotifier,
) -> None:
    token = await _token(leash, "support-triage-agent")
    headers = {"Authorization": f"Bearer {token}"}
    created = await client.post(
        "/api/v1/requests",
        json={"permission_set": "s3-read", "duration": "10m", "reason": "summarise ticket 42"},
        headers=headers,
    )
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body["state"] == "pending"
    assert body["approvers"][0] == "owner-a"

    waiting = asyncio.create_task(
        client.get(f"/api/v1/requests/{body['id']}?wait=10", headers=headers)
    )
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await leash.lifecycle.approve(body["id"], actor=OWNER)
    decided = await (await waiting).json()
    assert decided["state"] == "approved"
    grant = decided["grant"]
    assert grant["state"] == GrantState.ACTIVE
    assert inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{grant['id']}")

    released = await client.post(f"/api/v1/grants/{grant['id']}/release", headers=headers)
    assert released.status == 200
    assert (await released.json())["state"] == GrantState.REVOKED
    assert (
        inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{grant['id']}") is None
    )
    assert await audit_types(leash, grant_id=grant["id"]) == [
        "request.approved",
        "grant.applied",
        "grant.revoked",
    ]
    # The owner is told the agent let it go, by its name (not its identity id).
    [released_notice] = notifier.of_kind(NoticeKind.REVOKED)
    assert released_notice.reply.text == (
        f"Grant {grant['id']} on support-triage-agent was released by "
        "support-triage-agent (the agent itself)."
    )


async def token_refusals(leash: Leash) -> list[AuditEvent]:
    async with leash.context.sessions() as session:
        query = select(AuditEvent).where(col(AuditEvent.event_type) == "token.refused")
        return list((await session.exec(query)).all())


async def test_a_revoked_token_is_refused_and_its_use_audited_once_a_minute(
    leash: Leash, client: TestClient[Request, Application]
) -> None:
    token = await _token(leash, "support-triage-agent")
    headers = {"Authorization": f"Bearer {token}"}
    await leash.lifecycle.tokens.revoke("support-triage-agent", actor=OWNER)

    for _ in range(3):  # a replay loop: refused every time, audited once
        listed = await client.get("/api/v1/me", headers=headers)
        assert listed.status == 401
    made = await client.post(
        "/api/v1/requests",
        json={"permission_set": "s3-read", "duration": "10m", "reason": "after revoke"},
        headers=headers,
    )
    assert made.status == 401
    [refused] = await token_refusals(leash)
    assert refused.outcome == "failure"
    assert refused.detail["reason"] == "revoked"
    assert refused.resource is not None
    assert refused.resource.endswith(":role/support-triage-agent")
    assert refused.actor_kind == "agent"
    async with leash.context.sessions() as session:  # nothing was asked for
        assert (await session.exec(select(AccessRequest))).all() == []

    # A token Leash never issued names nobody: refused, nothing written.
    unknown = await client.get("/api/v1/me", headers={"Authorization": "Bearer lsh_nope"})
    assert unknown.status == 401
    assert len(await token_refusals(leash)) == 1


async def test_openapi_document_describes_the_routes(
    client: TestClient[Request, Application],
) -> None:
    response = await client.get("/api/v1/openapi.json")
    document = await response.json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/requests",
        "/requests/{request_id}",
        "/grants/{grant_id}/release",
        "/grants/{grant_id}/extend",
        "/me",
    }


async def test_healthz(client: TestClient[Request, Application]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["status"] == "ok"
