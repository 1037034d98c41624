"""Control and direction characters typed into the Slack and Teams request forms: refused."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Leash
from cloud.sandbox import Sandbox
from tests.bot.surfaces.conftest import DEV, SlackClient, post
from tests.bot.surfaces.teams_world import DEV as TEAMS_DEV
from tests.bot.surfaces.teams_world import OWNER as TEAMS_OWNER
from tests.bot.surfaces.teams_world import TeamsClient, install
from tests.bot.surfaces.teams_world import post as teams_post
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_signing import view_submission
from tests.fakes.teams_activities import card_action
from tests.hostile.world import audit_chain_ok, cloud_writes, rows

FORM = {
    "identity": "support-triage-agent",
    "permission_set": "s3-read",
    "actions": "",
    "resources": "",
    "duration": "10m",
    "reason": "tickets",
}
CASES = [
    ("reason", "tickets \u202etxt.exe", "U+202E"),
    ("reason", "\x1b[2J cleared", "U+001B"),
    ("resources", "arn:aws:s3:::tickets\x00", "U+0000"),
    ("identity", "support-triage-agent\x07", "U+0007"),
]
IDS = ["RTL override in reason", "ANSI in reason", "NUL in resources", "bell in identity"]


def slack_values(fields: dict[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
    """The `view.state.values` Slack sends for the request form."""
    selects = {
        "identity": "identity_select",
        "permission_set": "permission_set",
        "duration": "duration",
    }
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for block, value in fields.items():
        if block in selects:
            out[block] = {
                selects[block]: {"type": "static_select", "selected_option": {"value": value}}
            }
        else:
            out[block] = {block: {"type": "plain_text_input", "value": value}}
    return out


@pytest.mark.parametrize(("field", "value", "shown"), CASES, ids=IDS)
async def test_the_slack_form_refuses_them_on_the_field(
    slack_leash: Leash,
    client: SlackClient,
    fresh_sandbox: Sandbox,
    field: str,
    value: str,
    shown: str,
) -> None:
    before = await rows(slack_leash)
    response = await post(
        client,
        view_submission(
            user_id=DEV, callback_id="leash_request", values=slack_values(FORM | {field: value})
        ),
    )
    answer = await response.json()
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == [field]
    assert f"control or text-direction character ({shown})" in answer["errors"][field]
    after = await rows(slack_leash)
    assert after.changes == before.changes
    assert after.refusals == before.refusals + 1, "the refusal was not audited"
    assert cloud_writes(fresh_sandbox) == []
    assert await audit_chain_ok(slack_leash)


@pytest.mark.parametrize(("field", "value", "shown"), CASES, ids=IDS)
async def test_the_teams_form_refuses_them_and_keeps_what_was_typed(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
    field: str,
    value: str,
    shown: str,
) -> None:
    await install(teams_client, connector, TEAMS_OWNER, TEAMS_DEV)
    before = await rows(teams_leash)
    response = await teams_post(
        teams_client,
        card_action(
            "request",
            {"form": "request", **(FORM | {field: value})},
            user=TEAMS_DEV,
            service_url=connector.service_url,
            conversation_id=TEAMS_DEV.personal_conversation_id,
        ),
    )
    redrawn = (await response.json())["value"]
    assert f"control or text-direction character ({shown})" in str(redrawn)
    typed = {e["id"]: e.get("value") for e in redrawn["body"] if e["type"].startswith("Input.")}
    assert typed["duration"] == "10m"  # the form comes back as the user filled it
    after = await rows(teams_leash)
    assert after.changes == before.changes
    assert after.refusals == before.refusals + 1, "the refusal was not audited"
    assert cloud_writes(fresh_sandbox) == []
    assert await audit_chain_ok(teams_leash)
