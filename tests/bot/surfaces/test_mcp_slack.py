"""An agent asks over MCP (/mcp, the SDK's client); its owner sees on their Slack card that it
came over MCP and from which client, presses Approve (a signed Slack click), and the agent's
wait returns the grant, which it uses and releases."""

from __future__ import annotations

import asyncio

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.store import audit
from cloud.sandbox import Sandbox
from tests.bot.surfaces import conftest as slack_world
from tests.bot.surfaces.chat_drivers import Role, SlackChat
from tests.bot.surfaces.conftest import SlackClient, client, slack_api, slack_leash, slack_rules
from tests.e2e.helpers import inline_policy
from tests.e2e.mcp_world import ORIGIN, ask, data, events, over_http
from tests.e2e.mcp_world import token as issue
from tests.fakes.slack_api import FakeSlackApi

AGENT = "support-triage-agent"
__all__ = ["client", "slack_api", "slack_leash", "slack_rules"]


async def test_owner_approves_an_mcp_request_in_slack(
    slack_leash: Leash, client: SlackClient, slack_api: FakeSlackApi, fresh_sandbox: Sandbox
) -> None:
    slack = SlackChat(slack_leash, fresh_sandbox, client, slack_api)
    admin = Actor(slack_world.ADMIN, ActorKind.USER, "test")
    base_url = str(client.make_url("")).rstrip("/")
    async with over_http(base_url, await issue(slack_leash, AGENT, owner=admin)) as mcp:
        asked = await ask(mcp, "triage ticket 77")
        card = await slack.card(Role.OWNER, on=asked["id"], showing=f"via {ORIGIN}")
        assert "Approve" in card.buttons
        # The owner sees the agent by its name, not the identity id its token recorded.
        assert f"{AGENT} (the agent itself) asks to elevate {AGENT}" in card.text
        waiting = asyncio.create_task(
            mcp.call_tool("wait_for_decision", {"request_id": asked["id"], "wait_seconds": 60})
        )
        await slack.press(Role.OWNER, "Approve", on=asked["id"])
        decided = data(await asyncio.wait_for(waiting, timeout=30))
        assert decided["state"] == "approved"
        grant = decided["grant"]
        artefact = f"leash-grant-{grant['id']}"
        assert inline_policy(fresh_sandbox, AGENT, artefact) is not None
        released = data(await mcp.call_tool("release_access", {"grant_id": grant["id"]}))
        assert released["state"] == "revoked"
        assert inline_policy(fresh_sandbox, AGENT, artefact) is None
    approved = await events(slack_leash, event_type="request.approved", request_id=asked["id"])
    assert [event.origin for event in approved] == ["slack"]
    created = await events(slack_leash, event_type="request.created", request_id=asked["id"])
    assert [event.origin for event in created] == [ORIGIN]
    async with slack_leash.context.sessions() as session:
        assert (await audit.verify(session=session)).ok
