"""The `mcp` SDK's client over stdio against `leash mcp` (a child process, as an agent runtime
launches it), which speaks to a Leash serving the agent API on loopback."""

from __future__ import annotations

import asyncio

import pytest

from bot.app import Leash
from bot.store import audit
from cloud.sandbox import Sandbox
from tests.e2e.helpers import inline_policy
from tests.e2e.mcp_world import ORIGIN, OWNER, TOOLS, base_url, data, events, over_stdio, text
from tests.e2e.mcp_world import token as issue

AGENT = "support-triage-agent"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_agent_asks_waits_uses_and_releases_over_stdio(
    leash: Leash, base_url: str, fresh_sandbox: Sandbox
) -> None:
    async with over_stdio(base_url, await issue(leash, AGENT)) as mcp:
        assert {tool.name for tool in (await mcp.list_tools()).tools} == TOOLS
        asked = data(
            await mcp.call_tool(
                "request_access",
                {"actions": ["s3:GetObject"], "duration": "15m", "reason": "read ticket 7"},
            )
        )
        assert asked["state"] == "pending"
        waiting = asyncio.create_task(
            mcp.call_tool("wait_for_decision", {"request_id": asked["id"], "wait_seconds": 60})
        )
        await asyncio.sleep(1)
        assert not waiting.done()
        await leash.lifecycle.approve(asked["id"], actor=OWNER)
        result = await asyncio.wait_for(waiting, timeout=30)  # well before its 60 s limit
        grant = data(result)["grant"]
        assert grant["state"] == "active"
        assert "retry" in text(result)
        artefact = f"leash-grant-{grant['id']}"
        assert inline_policy(fresh_sandbox, AGENT, artefact) is not None

        more = {"grant_id": grant["id"], "duration": "5m", "reason": "ticket 7 has more files"}
        extension = data(await mcp.call_tool("extend_access", more))
        assert (extension["state"], extension["extends_grant_id"]) == ("pending", grant["id"])
        await leash.lifecycle.requests.deny(extension["id"], actor=OWNER, reason="enough")
        denied = await mcp.call_tool(
            "wait_for_decision", {"request_id": extension["id"], "wait_seconds": 10}
        )
        assert "was denied by owner-a: enough" in text(denied)
        mine = data(await mcp.call_tool("list_my_access", {}))
        assert [g["id"] for g in mine["grants"]] == [grant["id"]]
        assert mine["identity"]["owner"] == "owner-a"
        assert data(await mcp.call_tool("release_access", {"grant_id": grant["id"]}))["state"] == (
            "revoked"
        )
        assert inline_policy(fresh_sandbox, AGENT, artefact) is None

    # The agent API recorded what `leash mcp` told it: the MCP surface and the client.
    created = await events(leash, event_type="request.created", request_id=asked["id"])
    assert [event.origin for event in created] == [ORIGIN]
    revoked = await events(leash, event_type="grant.revoked", grant_id=grant["id"])
    assert [event.origin for event in revoked] == [ORIGIN]
    async with leash.context.sessions() as session:
        assert (await audit.verify(session=session)).ok


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_unreachable_leash_is_a_tool_error(leash: Leash) -> None:
    async with over_stdio("http://127.0.0.1:9", await issue(leash, AGENT)) as mcp:
        result = await mcp.call_tool("list_my_access", {})
    assert result.is_error
    assert "Leash did not answer at http://127.0.0.1:9" in text(result)


__all__ = ["base_url"]  # the fixture, imported
