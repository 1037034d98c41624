"""Two replicas on one database: the same click (or a Teams retry) landing on both makes one grant.

Nothing per-process decides who wins: the database's compare-and-set does, so it holds for any
number of replicas behind a load balancer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, func, select

from bot.app import Leash, build
from bot.domain.rules import Rules
from bot.http.server import build_web_app
from bot.store.tables import AuditEvent, Grant
from cloud.sandbox import Sandbox
from tests.bot.surfaces.conftest import BACKUP as SLACK_BACKUP
from tests.bot.surfaces.conftest import OWNER as SLACK_OWNER
from tests.bot.surfaces.conftest import SlackClient, post
from tests.bot.surfaces.teams_world import BACKUP, DEV, OWNER, TeamsClient, install
from tests.bot.surfaces.teams_world import post as post_activity
from tests.bot.surfaces.test_slack import click, request_card
from tests.bot.surfaces.test_teams import button, card_of
from tests.bot.surfaces.test_teams import request_card as teams_request_card
from tests.e2e.helpers import eventually
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.teams_activities import card_action


async def _replica(first: Leash, rules: Rules, sandbox: Sandbox) -> Leash:
    """Another replica: same settings, same database, its own process state."""
    replica = build(first.settings, sandbox=sandbox, rules=rules)
    await replica.start(scheduler=False, discover=False)
    return replica


@pytest.fixture
async def slack_replica(
    slack_leash: Leash, slack_rules: Rules, fresh_sandbox: Sandbox
) -> AsyncIterator[SlackClient]:
    replica = await _replica(slack_leash, slack_rules, fresh_sandbox)
    app = build_web_app(replica.lifecycle, max_body_bytes=1024 * 1024, slack=replica.slack)
    try:
        async with TestClient(TestServer(app)) as client:
            yield client
    finally:
        await replica.close()


@pytest.fixture
async def teams_replica(
    teams_leash: Leash, teams_rules: Rules, fresh_sandbox: Sandbox
) -> AsyncIterator[TeamsClient]:
    replica = await _replica(teams_leash, teams_rules, fresh_sandbox)
    app = build_web_app(replica.lifecycle, max_body_bytes=1024 * 1024, teams=replica.teams)
    try:
        async with TestClient(TestServer(app)) as client:
            yield client
    finally:
        await replica.close()


async def _counts(leash: Leash) -> dict[str, int]:
    async with leash.context.sessions() as session:
        return {
            kind: (
                await session.exec(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(col(AuditEvent.event_type) == kind)
                )
            ).one()
            for kind in ("request.approve_refused", "grant.applied")
        }


def _leash_policies(sandbox: Sandbox) -> list[str]:
    iam = sandbox.session().client("iam", endpoint_url=sandbox.endpoint_url)
    names = iam.list_role_policies(RoleName="support-triage-agent")["PolicyNames"]
    return [name for name in names if name.startswith("leash-grant-")]


async def test_one_slack_click_on_two_replicas_makes_one_grant(
    slack_leash: Leash,
    client: SlackClient,
    slack_replica: SlackClient,
    slack_api: FakeSlackApi,
    fresh_sandbox: Sandbox,
) -> None:
    _, card = await request_card(client, slack_api)
    same_click = click(card, "Approve", user=SLACK_OWNER, fake=slack_api)
    responses = await asyncio.gather(
        *(post(replica, same_click) for replica in (client, slack_replica) * 4),
        post(slack_replica, click(card, "Approve", user=SLACK_BACKUP, fake=slack_api)),
    )
    assert [r.status for r in responses] == [200] * 9

    async def settled() -> bool:
        return await _counts(slack_leash) == {"request.approve_refused": 8, "grant.applied": 1}

    assert await eventually(settled, within=10)
    async with slack_leash.context.sessions() as session:
        grants = (await session.exec(select(Grant))).all()
    assert len(grants) == 1
    assert _leash_policies(fresh_sandbox) == [f"leash-grant-{grants[0].id}"]


async def test_a_teams_retry_on_another_replica_makes_one_grant(
    teams_leash: Leash,
    teams_client: TeamsClient,
    teams_replica: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
) -> None:
    await install(teams_client, connector, OWNER, BACKUP, DEV)
    _, posted = await teams_request_card(teams_client, connector)
    action = button(card_of(posted), "Approve")
    invoke = card_action(
        action["verb"],
        action["data"],
        user=OWNER,
        service_url=connector.service_url,
        conversation_id=OWNER.personal_conversation_id,
    )
    # Teams retries an invoke it got no answer to; the load balancer sends it elsewhere.
    responses = await asyncio.gather(
        post_activity(teams_client, invoke),
        post_activity(teams_replica, invoke),
        post_activity(teams_replica, invoke),
    )
    assert [r.status for r in responses] == [200] * 3
    bodies = [await r.json() for r in responses]
    assert all("was approved by" in str(body["value"]) for body in bodies)

    # The grant is applied in the background once the click is answered (card_work.py).
    async def settled() -> bool:
        return await _counts(teams_leash) == {"request.approve_refused": 2, "grant.applied": 1}

    assert await eventually(settled, within=10)
    async with teams_leash.context.sessions() as session:
        grants = (await session.exec(select(Grant))).all()
    assert len(grants) == 1
    assert _leash_policies(fresh_sandbox) == [f"leash-grant-{grants[0].id}"]
