"""The `mcp` SDK's client over streamable HTTP against Leash's /mcp (served on loopback by the
same aiohttp app `leash serve` runs): ask, the owner approves, wait, use, release."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp.test_utils import TestServer

from bot.app import Leash
from bot.domain.messages import NoticeKind
from bot.http.server import build_web_app
from bot.store import audit
from cloud.sandbox import Sandbox
from tests.e2e.helpers import inline_policy
from tests.e2e.mcp_world import (
    ORIGIN,
    OWNER,
    TOOLS,
    ask,
    base_url,
    data,
    events,
    over_http,
    read_json,
    text,
)
from tests.e2e.mcp_world import token as issue
from tests.fakes.notifier import RecordingNotifier

AGENT = "support-triage-agent"


async def test_agent_asks_waits_uses_and_releases_over_http(
    leash: Leash, base_url: str, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    async with over_http(base_url, await issue(leash, AGENT)) as mcp:
        listed = await mcp.list_tools()
        assert {tool.name for tool in listed.tools} == TOOLS
        assert all(tool.input_schema.get("type") == "object" for tool in listed.tools)

        asked = await ask(mcp, "summarise ticket 42")
        assert asked["state"] == "pending"
        assert asked["approvers"][0] == "owner-a"
        assert asked["tier"]
        assert asked["decide_by"]

        # The owner's card says the agent asked over MCP, and with which client.
        card = notifier.of_kind(NoticeKind.APPROVAL_NEEDED)[-1]
        assert any(f"via {ORIGIN}" in line for line in card.reply.lines), card.reply.lines
        created = await events(leash, event_type="request.created", request_id=asked["id"])
        assert [event.origin for event in created] == [ORIGIN]

        waiting = asyncio.create_task(
            mcp.call_tool("wait_for_decision", {"request_id": asked["id"], "wait_seconds": 60})
        )
        await asyncio.sleep(1)
        assert not waiting.done()  # it waits for the owner
        await leash.lifecycle.approve(asked["id"], actor=OWNER)
        result = await asyncio.wait_for(waiting, timeout=30)  # well before its 60 s limit
        decided = data(result)
        assert decided["state"] == "approved"
        grant = decided["grant"]
        assert grant["state"] == "active"
        assert decided["retry_access_denied_for_seconds"] == 10
        assert "AccessDenied" in text(result)
        assert "~10 s" in text(result)
        artefact = f"leash-grant-{grant['id']}"
        assert inline_policy(fresh_sandbox, AGENT, artefact) is not None

        identity = await read_json(mcp, "leash://me/identity")
        assert (identity["name"], identity["cloud"], identity["owner"]) == (AGENT, "aws", "owner-a")
        live = await read_json(mcp, "leash://me/grants")
        assert [g["id"] for g in live["grants"]] == [grant["id"]]

        released = data(await mcp.call_tool("release_access", {"grant_id": grant["id"]}))
        assert released["state"] == "revoked"
        assert inline_policy(fresh_sandbox, AGENT, artefact) is None
        assert data(await mcp.call_tool("list_my_access", {}))["grants"] == []

    revoked = await events(leash, event_type="grant.revoked", grant_id=grant["id"])
    assert [event.origin for event in revoked] == [ORIGIN]
    async with leash.context.sessions() as session:
        assert (await audit.verify(session=session)).ok


async def test_wait_gives_up_at_its_limit_holding_nothing(leash: Leash, base_url: str) -> None:
    async with over_http(base_url, await issue(leash, AGENT)) as mcp:
        asked = await ask(mcp, "nightly report")
        started = asyncio.get_running_loop().time()
        waited = await mcp.call_tool(
            "wait_for_decision", {"request_id": asked["id"], "wait_seconds": 2}
        )
        assert asyncio.get_running_loop().time() - started >= 2
        assert data(waited)["state"] == "pending"
        assert "call wait_for_decision again" in text(waited)
        # Nothing was held: the owner decides at once, and the next wait sees it.
        await leash.lifecycle.approve(asked["id"], actor=OWNER)
        again = data(
            await mcp.call_tool("wait_for_decision", {"request_id": asked["id"], "wait_seconds": 0})
        )
        assert again["state"] == "approved"


async def test_extension_is_a_request_approved_like_any_other(leash: Leash, base_url: str) -> None:
    async with over_http(base_url, await issue(leash, AGENT)) as mcp:
        asked = await ask(mcp, "long export")
        await leash.lifecycle.approve(asked["id"], actor=OWNER)
        waited = {"request_id": asked["id"], "wait_seconds": 30}
        grant = data(await mcp.call_tool("wait_for_decision", waited))["grant"]
        before = grant["expires_at"]
        extension = data(
            await mcp.call_tool(
                "extend_access",
                {"grant_id": grant["id"], "duration": "10m", "reason": "the export is slower"},
            )
        )
        assert extension["state"] == "pending"
        assert extension["extends_grant_id"] == grant["id"]
        await leash.lifecycle.approve(extension["id"], actor=OWNER)
        extended = data(
            await mcp.call_tool(
                "wait_for_decision", {"request_id": extension["id"], "wait_seconds": 30}
            )
        )
        assert extended["state"] == "approved"
        mine = data(await mcp.call_tool("list_my_access", {}))
        assert [g["expires_at"] > before for g in mine["grants"]] == [True]


__all__ = ["base_url"]  # the fixture, imported


async def test_stopping_leash_ends_open_mcp_sessions(leash: Leash) -> None:
    """An agent's open session (and its stream) does not hold up a shutdown: aiohttp would wait
    for it up to its shutdown timeout; the session manager is stopped before that wait."""
    server = TestServer(build_web_app(leash.lifecycle, max_body_bytes=64 * 1024))
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    stopped = False
    with contextlib.suppress(Exception):  # the client sees its server go away
        async with over_http(url, await issue(leash, AGENT)) as mcp:
            assert not (await mcp.call_tool("list_my_access", {})).is_error
            await asyncio.wait_for(server.close(), timeout=30)
            stopped = True
    assert stopped
