"""One agent token cannot flood Leash: waits per identity are limited and stop when the client
hangs up; requests waiting per identity are capped, and asking twice gives the same request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from sqlmodel import col, select

from bot.access.drafting import RequestInput
from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.errors import LeashError, NotAllowedError
from bot.domain.messages import NoticeKind
from bot.domain.states import ActorKind
from bot.http.agent_desk import MAX_WAITS_PER_IDENTITY, InProcessDesk, waits_running
from bot.http.server import build_web_app
from bot.store.tables import AccessRequest, AuditEvent, Identity
from tests.e2e.helpers import eventually
from tests.fakes.notifier import RecordingNotifier

OWNER = Actor("owner-a", ActorKind.USER, "console")
AGENT = "support-triage-agent"
CAP = {"requests": {"max_pending_per_identity": 2}}


@pytest.fixture
async def client(leash: Leash) -> AsyncIterator[TestClient[Request, Application]]:
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _headers(leash: Leash, identity: str = AGENT) -> dict[str, str]:
    issued = await leash.lifecycle.tokens.issue(identity, actor=OWNER)
    return {"Authorization": f"Bearer {issued.token}"}


def _body(permission_set: str = "s3-read", duration: str = "10m") -> dict[str, str]:
    return {"permission_set": permission_set, "duration": duration, "reason": "ticket 42"}


async def _ask(
    client: TestClient[Request, Application], headers: dict[str, str], **body: str
) -> tuple[int, dict[str, Any]]:
    answer = await client.post("/api/v1/requests", json=_body(**body), headers=headers)
    return answer.status, await answer.json()


async def _pending(leash: Leash) -> list[AccessRequest]:
    async with leash.context.sessions() as session:
        query = select(AccessRequest).where(col(AccessRequest.state) == "pending")
        return list((await session.exec(query)).all())


async def test_waits_beyond_the_limit_are_answered_429_for_the_api_and_mcp(
    leash: Leash, client: TestClient[Request, Application]
) -> None:
    headers = await _headers(leash)
    _, asked = await _ask(client, headers)
    url = f"/api/v1/requests/{asked['id']}?wait=30"
    waits = [asyncio.create_task(client.get(url, headers=headers)) for _ in range(4)]
    assert MAX_WAITS_PER_IDENTITY == 4
    identity = await _identity(leash)
    assert await eventually(lambda: _running(leash, identity.id, 4), within=10)
    over_limit = await client.get(url, headers=headers)
    assert over_limit.status == 429
    body = await over_limit.json()
    assert body["error"] == "too_many_waits"
    assert f"{AGENT} already has 4 waits running" in body["message"]
    assert int(over_limit.headers["Retry-After"]) > 0
    desk = InProcessDesk(leash.lifecycle, identity, origin="mcp")
    with pytest.raises(LeashError) as over:  # the MCP tool's desk counts the same waits
        await desk.request(asked["id"], wait=5)
    assert over.value.status == 429
    # Reading without waiting, and other calls, still work.
    assert (await client.get(url.replace("30", "0"), headers=headers)).status == 200
    assert (await client.get("/api/v1/me", headers=headers)).status == 200

    await leash.lifecycle.approve(asked["id"], actor=OWNER)
    answers = await asyncio.wait_for(asyncio.gather(*waits), timeout=20)
    assert [(await a.json())["state"] for a in answers] == ["approved"] * 4
    assert (await desk.request(asked["id"], wait=1))["state"] == "approved"


async def test_a_wait_ends_when_its_client_hangs_up(
    leash: Leash, client: TestClient[Request, Application]
) -> None:
    headers = await _headers(leash)
    _, asked = await _ask(client, headers)
    path = f"/api/v1/requests/{asked['id']}"
    url = str(client.make_url(path))
    sessions = [ClientSession() for _ in range(MAX_WAITS_PER_IDENTITY)]
    identity = await _identity(leash)
    try:
        waits = [
            asyncio.create_task(s.get(url, params={"wait": "60"}, headers=headers))
            for s in sessions
        ]
        assert await eventually(lambda: _running(leash, identity.id, 4), within=10)
        assert (await client.get(f"{path}?wait=1", headers=headers)).status == 429
    finally:
        for wait in waits:  # the agents hang up
            wait.cancel()
        for session in sessions:
            await session.close()
    # Their waits end well before their 60 s, and free their places.
    assert await eventually(lambda: _running(leash, identity.id, 0), within=10)
    assert (await client.get(f"{path}?wait=0.2", headers=headers)).status == 200


async def _running(leash: Leash, identity_id: str, count: int) -> bool:
    return waits_running(leash.lifecycle, identity_id) == count


async def _identity(leash: Leash) -> Identity:
    identity, _ = await leash.lifecycle.queries.owners(AGENT)
    return identity


async def test_asking_again_for_the_same_access_gives_the_request_already_waiting(
    leash: Leash, client: TestClient[Request, Application], notifier: RecordingNotifier
) -> None:
    headers = await _headers(leash)
    first_status, first = await _ask(client, headers)
    again_status, again = await _ask(client, headers)
    assert (first_status, again_status) == (201, 200)
    assert again["id"] == first["id"]
    assert len(notifier.of_kind(NoticeKind.APPROVAL_NEEDED)) == 1
    # A different duration is a different request.
    other_status, other = await _ask(client, headers, duration="20m")
    assert other_status == 201
    assert other["id"] != first["id"]
    # In chat, a person asking twice hears which request is already waiting.
    text = f"request {AGENT} s3-read for 30m because ticket 7"
    made = await leash.handler.handle_text(text, actor=OWNER)
    repeated = await leash.handler.handle_text(text, actor=OWNER)
    made_id = made.text.split()[1]
    assert made_id.startswith("r-"), made.text
    assert f"Already waiting: {made_id}" in repeated.text
    assert repeated.ok
    assert len(await _pending(leash)) == 3


@pytest.mark.parametrize("rules", [CAP], indirect=True, ids=["cap 2"])
async def test_requests_over_the_cap_are_refused_for_agents_and_people_and_audited(
    leash: Leash, client: TestClient[Request, Application], notifier: RecordingNotifier
) -> None:
    headers = await _headers(leash)
    assert (await _ask(client, headers))[0] == 201
    assert (await _ask(client, headers, duration="20m"))[0] == 201
    status, refused = await _ask(client, headers, duration="30m")
    assert status == 403
    assert refused["message"] == (
        f"{AGENT} already has 2 requests waiting; wait for a decision or cancel one."
    )
    with pytest.raises(NotAllowedError, match="already has 2 requests waiting"):
        await leash.lifecycle.requests.submit(
            RequestInput(
                identity=AGENT,
                permission_set="s3-read",
                duration=timedelta(minutes=40),
                reason="a person asks",
            ),
            actor=OWNER,
        )
    assert len(await _pending(leash)) == 2
    assert len(notifier.of_kind(NoticeKind.APPROVAL_NEEDED)) == 2
    async with leash.context.sessions() as session:
        query = select(AuditEvent).where(col(AuditEvent.event_type) == "request.refused")
        audited = list((await session.exec(query)).all())
    assert len(audited) == 2
    assert all(event.outcome == "failure" for event in audited)
    # The same request as one waiting is still answered with it, even at the cap.
    assert (await _ask(client, headers))[0] == 200
    # Once one is decided there is room again.
    [oldest, _] = sorted(await _pending(leash), key=lambda r: r.created_at)
    await leash.lifecycle.requests.deny(oldest.id, actor=OWNER, reason="not now")
    assert (await _ask(client, headers, duration="30m"))[0] == 201
