"""The nightly owner message and the weekly digest through the wire-level fake Slack API."""

from __future__ import annotations

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.inventory.ownership import OwnerChange
from tests.bot.surfaces.conftest import ADMIN, OWNER_EMAIL, block_text, buttons
from tests.fakes.slack_api import FakeSlackApi

PNG = b"\x89PNG\r\n\x1a\n"


async def _own(leash: Leash, *agents: str) -> None:
    for agent in agents:
        await leash.lifecycle.owners.set(
            agent, OwnerChange(OWNER_EMAIL), actor=Actor(ADMIN, ActorKind.USER, "test")
        )


async def test_one_grouped_message_per_owner_per_night_and_none_when_nothing_changed(
    slack_leash: Leash, slack_api: FakeSlackApi
) -> None:
    await _own(slack_leash, "code-review-agent", "data-pipeline-agent")
    assert slack_leash.slack is not None
    posts_before = len(slack_api.calls_to("chat.postMessage"))
    await slack_leash.lifecycle.least_privilege.nightly()
    await slack_leash.slack.drain()
    findings = [
        call
        for call in slack_api.calls_to("chat.postMessage")[posts_before:]
        if "Nightly scan" in str(call.args.get("text"))
    ]
    assert len(findings) == 1  # one message for both agents, not one per agent
    (message,) = findings
    text = block_text(message.args)
    assert "code-review-agent" in text
    assert "data-pipeline-agent" in text
    values = [button["value"] for button in buttons(message.args)]
    assert sum(value.startswith("restrict ") for value in values) == 2
    assert sum(value.startswith("keep ") for value in values) == 2
    assert len({button["action_id"] for button in buttons(message.args)}) == len(values)

    posts_after_first = len(slack_api.calls_to("chat.postMessage"))
    await slack_leash.lifecycle.least_privilege.nightly()
    await slack_leash.slack.drain()
    again = [
        call
        for call in slack_api.calls_to("chat.postMessage")[posts_after_first:]
        if "Nightly scan" in str(call.args.get("text"))
    ]
    assert again == []


async def test_the_weekly_digest_is_posted_to_the_team_channel_with_its_chart(
    slack_leash: Leash, slack_api: FakeSlackApi
) -> None:
    assert slack_leash.slack is not None
    await slack_leash.lifecycle.least_privilege.nightly()
    await slack_leash.lifecycle.least_privilege.digests.send("ml-platform")
    await slack_leash.slack.drain()
    (digest,) = [
        message for message in slack_api.messages if "Weekly Leash digest" in str(message["text"])
    ]
    assert digest["channel"] == "#ml-platform"
    text = block_text(digest)
    assert "Unused permissions:" in text
    assert "Unowned: forecast-agent" in text  # no owner; its team comes from its tag
    assert "Inactive agents:" in text
    (upload,) = slack_api.uploads
    assert upload.content.startswith(PNG)
    assert (upload.channel, upload.thread_ts) == (digest["channel"], digest["ts"])
    assert upload.filename.startswith("leash-ml-platform-")
