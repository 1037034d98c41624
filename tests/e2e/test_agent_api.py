"""Agents on the HTTP API: ask for themselves, wait for the owner, release when done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind, GrantState
from bot.http.server import build_web_app
from cloud.sandbox import Sandbox
from tests.e2e.helpers import audit_types, inline_policy

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
    leash: Leash, client: TestClient[Request, Application], fresh_sandbox: Sandbox
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
