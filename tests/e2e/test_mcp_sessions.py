"""How many MCP sessions an identity may hold on /mcp, what happens at its cap, that a session
ends with its token, and that a header the bridge cannot read as Latin-1 is not a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import Leash
from bot.http.agent_api import authenticated
from bot.http.agent_desk import InProcessDesk
from bot.surfaces.mcp.remote import Desks, McpEndpoint
from tests.e2e.mcp_world import INITIALIZE, OWNER, ask, base_url, data, over_http
from tests.e2e.mcp_world import token as issue

AGENT = "support-triage-agent"
OTHER = "knowledge-base-agent"
ACCEPT = {"Accept": "application/json, text/event-stream"}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
__all__ = ["base_url"]  # the fixture, imported


@pytest.fixture
async def mcp_at(leash: Leash) -> AsyncIterator[Any]:
    """`await mcp_at(cap)`: the /mcp URL of an endpoint holding `cap` sessions per identity."""
    servers: list[TestServer] = []

    async def start(per_identity: int) -> str:
        async def authenticate(request: web.Request) -> tuple[str, Desks]:
            identity = await authenticated(leash.lifecycle, request)
            return identity.id, lambda origin: InProcessDesk(
                leash.lifecycle, identity, origin=origin
            )

        endpoint = McpEndpoint(authenticate, per_identity=per_identity)
        app = web.Application()
        app.router.add_route("*", "/mcp", endpoint.handle)
        app.on_shutdown.append(endpoint.close)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/mcp"))

    yield start
    for server in servers:
        await server.close()


async def open_session(http: httpx2.AsyncClient, url: str, bearer: str) -> httpx2.Response:
    return await http.post(
        url, json=INITIALIZE, headers={**ACCEPT, "Authorization": f"Bearer {bearer}"}
    )


async def ping(http: httpx2.AsyncClient, url: str, bearer: str, session: str) -> int:
    """The HTTP status of a ping on `session`: 200 while it is open, 404 once it has ended."""
    headers = {**ACCEPT, "Authorization": f"Bearer {bearer}", "Mcp-Session-Id": session}
    return (await http.post(url, json=PING, headers=headers)).status_code


async def test_an_identity_at_its_cap_has_its_least_recently_used_session_ended(
    leash: Leash, mcp_at: Any
) -> None:
    url = await mcp_at(3)
    mine, theirs = await issue(leash, AGENT), await issue(leash, OTHER)
    async with httpx2.AsyncClient(timeout=30) as http:
        sessions = []
        for _ in range(4):
            opened = await open_session(http, url, mine)
            assert opened.status_code == 200, opened.text
            sessions.append(opened.headers["mcp-session-id"])
        # The fourth took the place of the first (idle, least recently used): 3 stay open.
        assert [await ping(http, url, mine, s) for s in sessions] == [404, 200, 200, 200]
        # A loop of initialize churns only its own sessions: another identity still gets in.
        other = await open_session(http, url, theirs)
        assert other.status_code == 200, other.text
        assert await ping(http, url, theirs, other.headers["mcp-session-id"]) == 200


async def test_leash_serve_holds_eight_sessions_per_identity(leash: Leash, base_url: str) -> None:
    mine = await issue(leash, AGENT)
    async with httpx2.AsyncClient(timeout=30) as http:
        sessions = []
        for _ in range(9):
            opened = await open_session(http, f"{base_url}/mcp", mine)
            assert opened.status_code == 200, opened.text
            sessions.append(opened.headers["mcp-session-id"])
        alive = [await ping(http, f"{base_url}/mcp", mine, s) for s in sessions]
    assert alive == [404] + [200] * 8


async def test_an_identity_whose_sessions_are_all_busy_is_refused_with_429(
    leash: Leash, mcp_at: Any
) -> None:
    url = await mcp_at(1)
    mine = await issue(leash, AGENT)
    async with over_http(url.removesuffix("/mcp"), mine) as mcp:
        asked = await ask(mcp, "ticket 7")
        waiting = asyncio.create_task(
            mcp.call_tool("wait_for_decision", {"request_id": asked["id"], "wait_seconds": 60})
        )
        await asyncio.sleep(1)  # the session's one request is in flight: it is busy
        async with httpx2.AsyncClient(timeout=30) as http:
            refused = await open_session(http, url, mine)
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_sessions"
        assert "already has 1 MCP sessions open" in refused.json()["message"]
        await leash.lifecycle.approve(asked["id"], actor=OWNER)
        decided = data(await asyncio.wait_for(waiting, timeout=30))
        assert decided["state"] == "approved"  # the busy session was left alone


async def test_a_revoked_tokens_sessions_are_ended_not_only_refused(
    leash: Leash, mcp_at: Any
) -> None:
    url = await mcp_at(3)
    old = await issue(leash, AGENT)
    async with httpx2.AsyncClient(timeout=30) as http:
        first = (await open_session(http, url, old)).headers["mcp-session-id"]
        second = (await open_session(http, url, old)).headers["mcp-session-id"]
        await leash.lifecycle.tokens.revoke(AGENT, actor=OWNER)
        assert await ping(http, url, old, first) == 401
        # The same identity with a new token: the sessions the dead token opened are gone.
        new = await issue(leash, AGENT)
        assert await ping(http, url, new, second) == 404
        assert await ping(http, url, new, first) == 404
        opened = await open_session(http, url, new)
        assert opened.status_code == 200, opened.text
        assert await ping(http, url, new, opened.headers["mcp-session-id"]) == 200


@pytest.mark.parametrize("value", ["café ☕".encode(), "名前".encode()])
async def test_a_header_that_is_not_latin_1_is_no_crash(
    leash: Leash, base_url: str, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    mine = await issue(leash, AGENT)
    headers: dict[str, Any] = {**ACCEPT, "Authorization": f"Bearer {mine}", "X-Note": value}
    async with httpx2.AsyncClient(timeout=30) as http:
        opened = await http.post(f"{base_url}/mcp", json=INITIALIZE, headers=headers)
        assert opened.status_code == 200, opened.text
        session = opened.headers["mcp-session-id"]
        assert await ping(http, f"{base_url}/mcp", mine, session) == 200
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
