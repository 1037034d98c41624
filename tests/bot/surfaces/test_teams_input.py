"""Teams input: the request form, commands in a channel, and activities that are not right."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import func, select

from bot.app import Leash
from bot.store.tables import AccessRequest, ChatContact
from tests.bot.surfaces.teams_world import (
    DEV,
    OWNER,
    TeamsClient,
    card_text,
    install,
    post,
    say,
)
from tests.bot.surfaces.test_teams import card_of
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.teams_activities import (
    BOT_ID,
    TeamsChannel,
    card_action,
    conversation_update,
    message,
)

SUPPORT = TeamsChannel.named("Support Bots", "Agents")


async def _requests(leash: Leash) -> int:
    async with leash.context.sessions() as session:
        return (await session.exec(select(func.count()).select_from(AccessRequest))).one()


def _submit(connector: FakeBotConnector, **fields: str) -> dict[str, Any]:
    return card_action(
        "request",
        {"form": "request", **fields},
        user=DEV,
        service_url=connector.service_url,
        conversation_id=DEV.personal_conversation_id,
    )


async def test_request_alone_answers_with_a_form_and_submitting_it_files_the_request(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    await install(teams_client, connector, OWNER, DEV)
    form = card_of(await say(teams_client, connector, DEV, "request"))
    inputs = {e["id"]: e for e in form["body"] if e["type"].startswith("Input.")}
    assert list(inputs) == [
        "identity",
        "permission_set",
        "actions",
        "resources",
        "duration",
        "reason",
    ]
    choices = {c["value"]: c["title"] for c in inputs["identity"]["choices"]}
    triage = next(v for v in choices if v.endswith(":role/support-triage-agent"))
    assert choices[triage] == f"support-triage-agent ({triage.split(':')[4]})"
    assert "s3-read" in [c["value"] for c in inputs["permission_set"]["choices"]]

    refused = await post(
        teams_client,
        _submit(
            connector,
            identity="support-triage-agent",
            permission_set="s3-read",
            actions="s3:PutObject",
            duration="10m",
            reason="triage",
        ),
    )
    redrawn = (await refused.json())["value"]
    assert "Choose a permission set or type actions, not both." in str(redrawn)
    typed = {e["id"]: e.get("value") for e in redrawn["body"] if e["type"].startswith("Input.")}
    assert typed["actions"] == "s3:PutObject"  # what the user typed is kept
    assert await _requests(teams_leash) == 0

    filed = await post(
        teams_client,
        _submit(
            connector,
            identity="support-triage-agent",
            permission_set="s3-read",
            duration="10m",
            reason="triage",
        ),
    )
    filed_card = str((await filed.json())["value"])
    assert "is waiting for approval (1 of: alice@example.com, " in filed_card
    assert await _requests(teams_leash) == 1
    await connector.wait_for(
        "send",
        where=lambda c: (
            c.conversation_id == OWNER.personal_conversation_id
            and "asks to elevate support-triage-agent" in card_text(c)
        ),
    )


async def test_installed_in_a_team_it_answers_mentions_in_the_thread(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    added = await post(
        teams_client,
        conversation_update(
            members_added=[BOT_ID],
            service_url=connector.service_url,
            conversation_id=SUPPORT.channel_id,
            channel=SUPPORT,
            user=OWNER,
        ),
    )
    assert added.status == 201
    welcome = await connector.wait_for("send")
    assert welcome[0].conversation_id == SUPPORT.channel_id
    async with teams_leash.context.sessions() as session:
        keys = set((await session.exec(select(ChatContact.key))).all())
    assert {SUPPORT.channel_id.lower(), "support bots/agents"} <= keys

    asked = message(
        "whoami", user=OWNER, service_url=connector.service_url, channel=SUPPORT, mention_bot=True
    )
    response = await post(teams_client, asked)
    assert response.status == 201
    (reply,) = await connector.wait_for("reply")
    assert reply.conversation_id == asked["conversation"]["id"]  # in the thread it came from
    assert reply.activity_id == asked["id"]
    assert "alice@example.com" in card_text(reply)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        pytest.param(b"{not json", "application/json", 400, id="not JSON"),
        pytest.param(b"\xff\xfe\x00", "application/json", 400, id="not UTF-8"),
        pytest.param(b"[1, 2]", "application/json", 400, id="not an object"),
        pytest.param(b'{"text": "help"}', "application/json", 400, id="no type"),
        pytest.param(b'{"type": "message"}', "application/json", 400, id="no serviceUrl"),
        pytest.param(b"type=message", "application/x-www-form-urlencoded", 415, id="a form"),
    ],
)
async def test_malformed_activities_get_a_clear_error(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    body: bytes,
    content_type: str,
    status: int,
) -> None:
    response = await teams_client.post(
        "/api/messages", data=body, headers={"Content-Type": content_type}
    )
    assert response.status == status
    assert (await response.json())["message"]
    assert connector.activities() == []


async def test_unknown_buttons_and_stale_cards_get_a_clear_answer_and_change_nothing(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    def invoke(verb: str, data: dict[str, Any], kind: str = "Action.Execute") -> dict[str, Any]:
        activity = card_action(
            verb,
            data,
            user=OWNER,
            service_url=connector.service_url,
            conversation_id=OWNER.personal_conversation_id,
        )
        activity["value"]["action"]["type"] = kind
        return activity

    mismatched = await post(teams_client, invoke("approve", {"command": "revoke g-12345678"}))
    assert (await mismatched.json())["value"].startswith("That button is not one Leash knows")
    submit = await post(teams_client, invoke("approve", {"command": "approve x"}, "Action.Submit"))
    assert (await submit.json())["statusCode"] == 400
    gone = await post(teams_client, invoke("refresh", {"request": "r-00000000"}))
    assert (await gone.json())["value"] == "You cannot see this request."
    unknown = await post(
        teams_client,
        invoke("approve", {"command": "approve r-00000000", "request": "r-00000000"}),
    )
    assert "r-00000000" in str((await unknown.json())["value"])
    assert await _requests(teams_leash) == 0
