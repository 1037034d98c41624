"""Every bad input gets one clear message, changes nothing, and is audited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind, Outcome
from bot.http.server import build_web_app
from bot.store.tables import AccessRequest, Approval, AuditEvent, Grant
from cloud.sandbox import Sandbox
from tests.e2e.helpers import REQUEST_ID, inline_policy_names


def user(name: str) -> Actor:
    return Actor(name, ActorKind.USER, "console")


@dataclass(frozen=True)
class Snapshot:
    requests: list[tuple[str, str]]
    approvals: int
    grants: list[tuple[str, str]]
    artefacts: list[str]
    refusals: int


async def snapshot(leash: Leash, sandbox: Sandbox) -> Snapshot:
    async with leash.context.sessions() as session:
        requests = [(r.id, r.state) for r in (await session.exec(select(AccessRequest))).all()]
        approvals = len((await session.exec(select(Approval))).all())
        grants = [(g.id, g.state) for g in (await session.exec(select(Grant))).all()]
        refusals = len(
            (
                await session.exec(
                    select(AuditEvent).where(col(AuditEvent.outcome) == Outcome.FAILURE)
                )
            ).all()
        )
    artefacts = sorted(
        name
        for role in ("support-triage-agent", "ticket-router-agent")
        for name in inline_policy_names(sandbox, role)
        if name.startswith("leash-grant-")
    )
    return Snapshot(sorted(requests), approvals, sorted(grants), artefacts, refusals)


async def say(leash: Leash, who: str, text: str) -> tuple[bool, str]:
    reply = await leash.handler.handle_text(text, actor=user(who))
    return reply.ok, reply.text


async def pending_request(leash: Leash) -> str:
    ok, text = await say(
        leash, "dev", "request support-triage-agent s3-read for 10m because tickets"
    )
    assert ok, text
    found = REQUEST_ID.search(text)
    assert found
    return found.group(1)


async def assert_refused_and_unchanged(
    leash: Leash, sandbox: Sandbox, who: str, command: str, expected: str
) -> None:
    before = await snapshot(leash, sandbox)
    ok, text = await say(leash, who, command)
    after = await snapshot(leash, sandbox)
    assert not ok
    assert expected in text, text
    assert (after.requests, after.approvals, after.grants, after.artefacts) == (
        before.requests,
        before.approvals,
        before.grants,
        before.artefacts,
    )
    assert after.refusals == before.refusals + 1, "the refusal was not audited"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("request no-such-agent s3-read for 10m because x", "No identity called 'no-such-agent'"),
        (
            "request arn:aws:iam::999999999999:role/support-triage-agent s3-read for 10m because x",
            "No identity called 'arn:aws:iam::999999999999:role/support-triage-agent'",
        ),
        (
            "request support-triage-agent no-such-set for 10m because x",
            "There is no permission set 'no-such-set'",
        ),
        ("request support-triage-agent s3-read for 9h because x", "longer than the 8h allowed"),
        (
            "request support-triage-agent iam:PassRole for 2h because x",
            "longer than the 1h allowed",
        ),
        ("request support-triage-agent s3-read for 10m because    ", "Say why you need it"),
        ("request support-triage-agent s3:Get;Object for 10m because x", "Not an action"),
        (
            "request support-triage-agent s3-read on not-an-arn for 10m because x",
            "Not a resource ARN",
        ),
    ],
    ids=[
        "unknown identity",
        "other account ARN",
        "unknown permission set",
        "over tier max",
        "over escalation max",
        "empty reason",
        "malformed action",
        "malformed resource",
    ],
)
async def test_bad_requests_are_refused(
    leash: Leash, fresh_sandbox: Sandbox, command: str, expected: str
) -> None:
    await assert_refused_and_unchanged(leash, fresh_sandbox, "dev", command, expected)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("request support-triage-agent s3-read for ten because x", "'ten' is not a duration"),
        ("request support-triage-agent s3-read for 0m because x", "longer than zero"),
        ("request support-triage-agent s3-read because x", "Say for how long"),
    ],
    ids=["malformed duration", "zero duration", "missing duration"],
)
async def test_malformed_commands_are_refused(
    leash: Leash, fresh_sandbox: Sandbox, command: str, expected: str
) -> None:
    await assert_refused_and_unchanged(leash, fresh_sandbox, "dev", command, expected)


async def test_non_owner_cannot_approve(leash: Leash, fresh_sandbox: Sandbox) -> None:
    request_id = await pending_request(leash)
    await assert_refused_and_unchanged(
        leash,
        fresh_sandbox,
        "owner-b",
        f"approve {request_id}",
        "You are not an approver of this request",
    )


async def test_requester_cannot_approve_own_request(leash: Leash, fresh_sandbox: Sandbox) -> None:
    ok, text = await say(
        leash, "owner-a", "request support-triage-agent s3-read for 10m because mine"
    )
    assert ok, text
    found = REQUEST_ID.search(text)
    assert found
    await assert_refused_and_unchanged(
        leash,
        fresh_sandbox,
        "owner-a",
        f"approve {found.group(1)}",
        "You cannot approve or deny your own request",
    )


async def test_second_approval_of_decided_request(leash: Leash, fresh_sandbox: Sandbox) -> None:
    request_id = await pending_request(leash)
    ok, text = await say(leash, "owner-a", f"approve {request_id}")
    assert ok, text
    await assert_refused_and_unchanged(
        leash,
        fresh_sandbox,
        "secops",
        f"approve {request_id}",
        f"Request {request_id} was already approved by owner-a",
    )


async def test_denied_request_cannot_be_approved(leash: Leash, fresh_sandbox: Sandbox) -> None:
    request_id = await pending_request(leash)
    ok, text = await say(leash, "owner-a", f"deny {request_id} because not today")
    assert ok, text
    await assert_refused_and_unchanged(
        leash, fresh_sandbox, "secops", f"approve {request_id}", "was already denied by owner-a"
    )


@pytest.mark.parametrize(
    "rules", [{"requests": {"decide_within": "1s"}}], indirect=True, ids=["1s TTL"]
)
async def test_approval_after_expiry_is_refused(leash: Leash, fresh_sandbox: Sandbox) -> None:
    request_id = await pending_request(leash)
    await asyncio.sleep(1.2)
    await assert_refused_and_unchanged(
        leash, fresh_sandbox, "owner-a", f"approve {request_id}", "expired before anyone decided"
    )


async def test_unknown_request_is_refused(leash: Leash, fresh_sandbox: Sandbox) -> None:
    await assert_refused_and_unchanged(
        leash, fresh_sandbox, "owner-a", "approve r-zzzzzzzz", "There is no request 'r-zzzzzzzz'"
    )


@pytest.fixture
async def client(leash: Leash) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_web_app(leash.lifecycle, max_body_bytes=16 * 1024)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def agent_headers(leash: Leash, identity: str) -> dict[str, str]:
    issued = await leash.lifecycle.tokens.issue(identity, actor=user("owner-a"))
    return {"Authorization": f"Bearer {issued.token}"}


async def test_agent_token_cannot_ask_for_another_identity(
    leash: Leash, fresh_sandbox: Sandbox, client: TestClient[Any, Any]
) -> None:
    headers = await agent_headers(leash, "support-triage-agent")
    before = await snapshot(leash, fresh_sandbox)
    response = await client.post(
        "/api/v1/requests",
        headers=headers,
        json={
            "identity": "knowledge-base-agent",
            "permission_set": "s3-read",
            "duration": "10m",
            "reason": "x",
        },
    )
    assert response.status == 403
    assert (await response.json())["error"] == "not_allowed"
    after = await snapshot(leash, fresh_sandbox)
    assert after.requests == before.requests
    assert after.refusals == before.refusals + 1


async def test_agent_cannot_approve_anything(leash: Leash, fresh_sandbox: Sandbox) -> None:
    request_id = await pending_request(leash)
    async with leash.context.sessions() as session:
        identity_id = (await session.get(AccessRequest, request_id)).identity_id  # type: ignore[union-attr]
    agent = Actor(identity_id, ActorKind.AGENT, "api")
    before = await snapshot(leash, fresh_sandbox)
    reply = await leash.handler.handle_text(f"approve {request_id}", actor=agent)
    assert not reply.ok
    assert "Agents and bots never approve" in reply.text
    after = await snapshot(leash, fresh_sandbox)
    assert after.requests == before.requests
    assert after.refusals == before.refusals + 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "invalid_input"),
        (b'{"permission_set": "s3-read", "duration": "10m"}', 400, "invalid_input"),
        (
            b'{"permission_set": "s3-read", "duration": "forever", "reason": "x"}',
            400,
            "invalid_duration",
        ),
        (
            b'{"permission_set": "s3-read", "actions": ["s3:GetObject"], '
            b'"duration": "1m", "reason": "x"}',
            400,
            "invalid_input",
        ),
        (
            b'{"permission_set": "s3-read", "duration": "9h", "reason": "x"}',
            400,
            "duration_too_long",
        ),
        (
            b'{"permission_set": "nope", "duration": "10m", "reason": "x"}',
            400,
            "unknown_permission_set",
        ),
        (b"\xff\xfe\x00garbage", 400, "invalid_input"),
        (b'{"a": "' + b"x" * 20000 + b'"}', 413, "request_entity_too_large"),
    ],
    ids=[
        "not json",
        "missing reason",
        "bad duration",
        "set and actions",
        "too long",
        "unknown set",
        "not utf-8",
        "oversized body",
    ],
)
async def test_api_bad_bodies_get_4xx_json(
    leash: Leash,
    fresh_sandbox: Sandbox,
    client: TestClient[Any, Any],
    body: bytes,
    status: int,
    error: str,
) -> None:
    headers = await agent_headers(leash, "support-triage-agent") | {
        "Content-Type": "application/json"
    }
    before = await snapshot(leash, fresh_sandbox)
    response = await client.post("/api/v1/requests", headers=headers, data=body)
    assert response.status == status, await response.text()
    assert (await response.json())["error"] == error
    after = await snapshot(leash, fresh_sandbox)
    assert after.requests == before.requests


@pytest.mark.parametrize(
    "header",
    ["", "Bearer ", "Bearer lsh_forged", "Basic abc"],
    ids=["none", "empty", "forged", "basic"],
)
async def test_api_without_a_valid_token_is_401(client: TestClient[Any, Any], header: str) -> None:
    response = await client.post(
        "/api/v1/requests",
        headers={"Authorization": header} if header else {},
        json={"permission_set": "s3-read", "duration": "10m", "reason": "x"},
    )
    assert response.status == 401
    assert (await response.json())["error"] == "unauthorized"
