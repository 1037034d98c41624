"""Teams notices: reminders and escalation, nightly owner cards, the team digest, people Leash
cannot reach, and a throttled Bot Connector."""

from __future__ import annotations

import asyncio

import pytest

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.inventory import registry
from bot.inventory.ownership import OwnerChange
from cloud.sandbox import Sandbox
from tests.bot.surfaces.teams_world import (
    ADMIN,
    BACKUP,
    DEV,
    OWNER,
    TeamsClient,
    actions_of,
    card_text,
    install,
    post,
    say,
)
from tests.bot.surfaces.test_teams import card_of, press, request_card
from tests.e2e.helpers import REQUEST_ID
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.teams_activities import (
    BOT_ID,
    TeamsChannel,
    conversation_update,
    installation_update,
)

ML = TeamsChannel.named("ML Platform")


@pytest.mark.parametrize(
    "teams_rules",
    [{"requests": {"remind_after": "1s", "escalate_after": "1s"}}],
    indirect=True,
    ids=["fast nudges"],
)
async def test_reminder_then_escalation_and_every_card_is_replaced_on_decision(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    await install(teams_client, connector, OWNER, BACKUP, DEV)
    request_id, _ = await request_card(teams_client, connector)
    deadlines = teams_leash.lifecycle.deadlines
    await asyncio.sleep(1.1)
    assert await deadlines.nudge_due() == 1
    await asyncio.sleep(1.1)
    assert await deadlines.nudge_due() == 1
    cards = await connector.wait_for(
        "send",
        count=3,
        where=lambda c: request_id in card_text(c) and bool(actions_of(card_of(c))),
    )
    assert [c.conversation_id for c in cards] == [
        OWNER.personal_conversation_id,
        OWNER.personal_conversation_id,
        BACKUP.personal_conversation_id,
    ]
    assert "Reminder: request" in card_text(cards[1])
    assert "Escalated to you" in card_text(cards[2])

    await press(teams_client, connector, card_of(cards[2]), "Approve", user=BACKUP)
    updates = await connector.wait_for("update", count=3)
    assert {u.activity_id for u in updates} == {c.answered_id for c in cards}
    assert all("approved by bob@example.com" in card_text(u) for u in updates)
    assert all(actions_of(card_of(u)) == [] for u in updates)


async def test_a_card_still_on_its_way_when_the_request_is_decided_is_replaced_too(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    await install(teams_client, connector, OWNER, DEV)
    # The channel is slow to take the owner's card; she decides by typing before it is posted.
    gate = connector.hold_next("send", OWNER.personal_conversation_id)
    said = await say(
        teams_client, connector, DEV, "request support-triage-agent s3-read for 10m because triage"
    )
    found = REQUEST_ID.search(card_text(said))
    assert found, card_text(said)
    request_id = found.group(1)
    denied = await say(teams_client, connector, OWNER, f"deny {request_id} because not today")
    assert f"Denied {request_id}" in card_text(denied)
    await connector.wait_for(
        "send",
        where=lambda c: (
            c.conversation_id == DEV.personal_conversation_id and "not today" in card_text(c)
        ),
    )
    assert not connector.calls_to("update")  # no card was recorded yet to replace

    gate.set()
    card = await connector.wait_for(
        "send",
        where=lambda c: (
            c.conversation_id == OWNER.personal_conversation_id and request_id in card_text(c)
        ),
    )
    updates = await connector.wait_for(
        "update", where=lambda c: c.activity_id == card[0].answered_id
    )
    assert "denied by alice@example.com: not today" in card_text(updates[0])
    assert actions_of(card_of(updates[0])) == []


async def test_an_owner_without_the_app_is_not_lost_the_admins_get_the_card_and_a_report(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    await install(teams_client, connector, ADMIN, DEV)  # the owner never installed Leash
    _, card = await request_card(teams_client, connector, to=ADMIN)
    assert [a["title"] for a in actions_of(card_of(card))] == ["Approve", "Deny"]
    await press(teams_client, connector, card_of(card), "Approve", user=ADMIN)
    # The owner cannot be told about the grant either: the admins hear who missed what.
    report = await connector.wait_for(
        "send",
        where=lambda c: (
            c.conversation_id == ADMIN.personal_conversation_id
            and "could not reach" in card_text(c)
        ),
    )
    assert "Leash could not reach alice@example.com on Teams" in card_text(report[0])
    assert "support-triage-agent" in card_text(report[0])


async def test_nightly_findings_reach_the_owner_as_one_card_with_a_section_per_agent(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    await install(teams_client, connector, OWNER)
    for agent in ("code-review-agent", "data-pipeline-agent"):
        await teams_leash.lifecycle.owners.set(
            agent, OwnerChange(OWNER.email), actor=Actor(ADMIN.email, ActorKind.USER, "test")
        )
    await teams_leash.lifecycle.least_privilege.nightly()
    assert teams_leash.teams is not None
    await teams_leash.teams.drain()
    (found,) = [c for c in connector.calls_to("send") if "Nightly scan" in card_text(c)]
    assert found.conversation_id == OWNER.personal_conversation_id
    card = card_of(found)
    sections = [e for e in card["body"] if e["type"] == "Container"]
    titles = [s["items"][0]["text"] for s in sections]
    assert titles == ["**code-review-agent**", "**data-pipeline-agent**"]
    verbs = [a["verb"] for a in actions_of(card)]
    assert verbs.count("restrict") == 2
    assert verbs.count("keep") == 2


@pytest.mark.parametrize(
    "teams_rules",
    [{"teams": {"ml-platform": {"channel": "ML Platform", "platform": "teams"}}}],
    indirect=True,
    ids=["digest on Teams"],
)
async def test_the_weekly_digest_goes_to_the_teams_channel_with_its_chart(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    response = await post(
        teams_client,
        conversation_update(
            members_added=[BOT_ID],
            service_url=connector.service_url,
            conversation_id=ML.channel_id,
            channel=ML,
            user=OWNER,
        ),
    )
    assert response.status == 201
    await teams_leash.lifecycle.least_privilege.nightly()  # a team with no scans has no chart
    await teams_leash.lifecycle.least_privilege.digests.send("ml-platform")
    assert teams_leash.teams is not None
    await teams_leash.teams.drain()
    (digest,) = [c for c in connector.calls_to("send") if "Weekly Leash digest" in card_text(c)]
    assert digest.conversation_id == ML.channel_id
    assert '"title": "Unowned", "value": "forecast-agent"' in card_text(digest)
    (chart,) = [
        c
        for c in connector.calls_to("send")
        if any(a.get("contentType") == "image/png" for a in c.body.get("attachments") or [])
    ]
    assert chart.conversation_id == ML.channel_id
    assert chart.body["attachments"][0]["contentUrl"].startswith("data:image/png;base64,iVBOR")


async def test_a_throttled_connector_is_retried_and_the_card_arrives_once(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    await install(teams_client, connector, OWNER, DEV)
    connector.fail_next(2, 429, kind="send", retry_after=0)
    request_id, _ = await request_card(teams_client, connector)
    assert connector.fault_count == 2
    delivered = [c for c in connector.calls_to("send") if c.ok and request_id in card_text(c)]
    assert len(delivered) == 1


SECURITY = TeamsChannel.named("Security", "Alerts")
TRUST = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",'
    ' "Principal": {"Service": "bedrock.amazonaws.com"}}]}'
)


@pytest.mark.parametrize(
    "teams_rules",
    [{"ownership": {"security_channel": "Security/Alerts"}}],
    indirect=True,
    ids=["security channel on Teams"],
)
async def test_unowned_agents_are_alerted_in_the_security_channel_and_assigned_from_the_card(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
) -> None:
    added = await post(
        teams_client,
        conversation_update(
            members_added=[BOT_ID],
            service_url=connector.service_url,
            conversation_id=SECURITY.channel_id,
            channel=SECURITY,
            user=ADMIN,
        ),
    )
    assert added.status == 201
    # A new agent nobody owns appears (start-up alerts went out before Leash joined the team).
    iam = fresh_sandbox.session().client("iam", endpoint_url=fresh_sandbox.endpoint_url)
    iam.create_role(RoleName="triage-helper-agent", AssumeRolePolicyDocument=TRUST)
    await teams_leash.discover()
    assert teams_leash.teams is not None
    await teams_leash.teams.drain()
    alerts = [
        c
        for c in connector.calls_to("send")
        if c.conversation_id == SECURITY.channel_id and "triage-helper-agent" in card_text(c)
    ]
    assert len(alerts) == 1
    alert = card_of(alerts[0])
    assert [a["title"] for a in actions_of(alert)] == ["Claim", "Assign to…"]
    assign = next(a for a in actions_of(alert) if a["title"] == "Assign to…")
    assert [i["id"] for i in assign["card"]["body"]] == ["owner", "backup", "team"]

    answered = await press(
        teams_client,
        connector,
        alert,
        "Assign to…",
        user=ADMIN,
        inputs={"owner": OWNER.email, "backup": "", "team": "ml platform"},
    )
    assert "triage-helper-agent" in str(answered["value"])
    async with teams_leash.context.sessions() as session:
        owned = [i.name for i, _ in await registry.owned_by(OWNER.email, session=session)]
    assert "triage-helper-agent" in owned


async def test_installing_the_app_personally_lets_leash_message_that_person(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    installed = await post(
        teams_client,
        installation_update(
            user=OWNER,
            service_url=connector.service_url,
            conversation_id=OWNER.personal_conversation_id,
        ),
    )
    assert installed.status == 201
    await install(teams_client, connector, DEV)
    await request_card(teams_client, connector)  # the owner's approval card reaches her
